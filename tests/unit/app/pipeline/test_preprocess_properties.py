"""Properties of the first two stages that must hold for every input, checked with hypothesis.

decode_image answers any bytes (arbitrary ones, or a real PNG/JPEG/GIF/TIFF/BMP/WebP with bytes
flipped, inserted or cut off) with an image or a `DigitServeError` subclass, never another exception
(which the service would turn into a 500). preprocess_image answers any 2-D uint8 array, from 1x1 to
1x5000, with a canonical digit or `NoDigitFoundError`. The histogram percentiles preprocess uses are
NumPy's, to the last bit.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from app.pipeline.decode import decode_image
from app.pipeline.ink import masked_percentiles
from app.pipeline.preprocess import PreprocessedDigit, preprocess_image
from digits.errors import DigitServeError, NoDigitFoundError
from testkit.byte_mutations import mutated_files
from testkit.images import encode_with_pillow

pytestmark = [
    pytest.mark.unit,
    # Pillow warns about damage it reads past (corrupt EXIF or TIFF tags): expected on mutated files.
    pytest.mark.filterwarnings("ignore::UserWarning:PIL"),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Headers may claim any size: a small limit keeps a damaged header from costing a large allocation.
MAX_IMAGE_PIXELS = 2_000_000


def valid_uploads() -> list[bytes]:
    """A 40x32 photo-like digit (a dark ring on grey paper) in each format decode reads."""
    page = np.full((40, 32), 215, dtype=np.uint8)
    cv2.ellipse(page, (16, 20), (9, 14), 0, 0, 360, 25, 3)
    gray = Image.fromarray(page)
    return [
        encode_with_pillow(gray, "PNG"),
        encode_with_pillow(gray.convert("RGBA"), "PNG"),
        encode_with_pillow(gray.convert("RGB"), "JPEG", quality=90),
        encode_with_pillow(gray.convert("RGB"), "JPEG", quality=90, progressive=True),
        encode_with_pillow(gray.convert("P"), "GIF", save_all=True, append_images=[gray.convert("P")]),
        encode_with_pillow(gray, "TIFF", compression="tiff_deflate"),
        encode_with_pillow(gray, "TIFF", save_all=True, append_images=[gray]),
        encode_with_pillow(gray, "BMP"),
        encode_with_pillow(gray.convert("RGB"), "WEBP", quality=90),
    ]


VALID_UPLOADS = valid_uploads()


def assert_decodes_or_raises_a_domain_error(data: bytes) -> str:
    """Checks the contract and names the outcome, for `event` (see --hypothesis-show-statistics)."""
    try:
        gray = decode_image(data, max_image_pixels=MAX_IMAGE_PIXELS)
    except DigitServeError as error:
        return f"refused: {error.code}"
    assert gray.ndim == 2 and gray.dtype == np.uint8 and gray.flags.c_contiguous
    assert 0 < gray.size <= MAX_IMAGE_PIXELS
    return "decoded"


@EXAMPLES
@given(data=st.binary(max_size=4096))
def test_decode_answers_arbitrary_bytes_with_an_image_or_a_domain_error(data):
    event(assert_decodes_or_raises_a_domain_error(data))


@EXAMPLES
@given(data=mutated_files(VALID_UPLOADS, max_mutations=3, max_run_bytes=32))
def test_decode_answers_damaged_real_images_with_an_image_or_a_domain_error(data):
    event(assert_decodes_or_raises_a_domain_error(data))


def test_every_valid_upload_decodes_to_its_size():
    for data in VALID_UPLOADS:
        assert decode_image(data).shape == (40, 32)


def assert_is_a_canonical_digit(result: PreprocessedDigit) -> None:
    canonical = result.canonical
    assert canonical.shape == (28, 28) and canonical.dtype == np.uint8
    assert isinstance(result.is_inverted, bool)
    rows, columns = np.flatnonzero(canonical.any(axis=1)), np.flatnonzero(canonical.any(axis=0))
    assert rows.size > 0, "a digit was returned with no ink"
    assert max(rows[-1] - rows[0], columns[-1] - columns[0]) + 1 <= 20  # MNIST's 20-pixel box


def assert_preprocesses_or_finds_no_digit(gray: np.ndarray) -> str:
    """Checks the contract and names the outcome, for `event` (see --hypothesis-show-statistics)."""
    try:
        result = preprocess_image(gray)
    except NoDigitFoundError:
        return "no digit found"
    assert_is_a_canonical_digit(result)
    return "digit"


@EXAMPLES
@given(gray=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=64)))
def test_preprocess_answers_any_small_image_with_a_digit_or_no_digit_found(gray):
    event(assert_preprocesses_or_finds_no_digit(gray))


@st.composite
def blocky_images(draw: st.DrawFn) -> np.ndarray:
    """Large or extremely elongated images (up to 1x5000) of a few flat blocks: structure, not noise."""
    height, width = draw(
        st.one_of(
            st.sampled_from([(1, 5000), (5000, 1), (2, 3000), (3000, 3), (7, 1200), (1500, 1500)]),
            st.tuples(st.integers(1, 1200), st.integers(1, 1200)),
        )
    )
    block_shape = (draw(st.integers(1, min(height, 8))), draw(st.integers(1, min(width, 8))))
    levels = draw(hnp.arrays(np.uint8, block_shape, elements=st.sampled_from([0, 30, 128, 225, 255])))
    return cv2.resize(levels, (width, height), interpolation=cv2.INTER_NEAREST)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gray=blocky_images())
def test_preprocess_answers_large_and_elongated_images_with_a_digit_or_no_digit_found(gray):
    event(assert_preprocesses_or_finds_no_digit(gray))


@pytest.mark.parametrize("shape", [(1, 5000), (5000, 1), (1, 1), (2, 2), (28, 1)])
def test_preprocess_answers_extreme_shapes_holding_a_bar_with_a_digit_or_no_digit_found(shape):
    gray = np.zeros(shape, dtype=np.uint8)
    gray[tuple(slice(length // 4, max(1, length // 2)) for length in shape)] = 255
    assert_preprocesses_or_finds_no_digit(gray)
    assert_preprocesses_or_finds_no_digit(255 - gray)


@EXAMPLES
@given(
    image=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40)),
    mask_seed=st.integers(0, 2**32 - 1),
    percentiles=st.lists(st.floats(0, 100), min_size=1, max_size=4),
)
def test_masked_percentiles_equal_numpy_percentiles_exactly(image, mask_seed, percentiles):
    mask = np.random.default_rng(mask_seed).random(image.shape) < 0.6
    mask.flat[0] = True  # never empty: preprocess only asks about non-empty masks
    expected = np.percentile(image[mask], percentiles + [25, 50, 75, 95])
    np.testing.assert_array_equal(masked_percentiles(image, mask, percentiles + [25, 50, 75, 95]), expected)
