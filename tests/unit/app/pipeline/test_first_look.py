"""An upload of one digit is read at about 150 pixels first (`preprocess_at_first_look`, from a JPEG
decoded that small: `prepare_digit`), and at the full working size only when the digit is too small or
faint there, so that a photo costs a fraction of its full-size reading and reads the same."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from app.pipeline import prepare
from app.pipeline.decode import decode_image
from app.pipeline.image_header import DecodeLimits
from app.pipeline.preprocess import (
    FIRST_LOOK_SIDE_PIXELS,
    MIN_FIRST_LOOK_DIGIT_PIXELS,
    preprocess_at_first_look,
    preprocess_image,
)
from digits.errors import NoDigitFoundError, UndecodableImageError
from testkit.images import encode_jpeg, encode_png, encode_with_pillow
from testkit.photo_like import render_photo_like
from tests.unit.app.pipeline.test_preprocess import INK_LEVEL, PAPER_LEVEL, ink_mask_f1, write_on_paper

pytestmark = pytest.mark.unit

LIMITS = DecodeLimits()


@pytest.fixture(scope="module")
def digits(mnist_test_samples) -> np.ndarray:
    return mnist_test_samples[0][:40]


def test_a_digit_filling_a_photo_is_read_at_the_first_look_like_at_full_size(digits):
    scores = []
    for index, digit in enumerate(digits):
        photo = decode_image(encode_jpeg(render_photo_like(digit, np.random.default_rng(index))))
        first_look = preprocess_at_first_look(photo)
        assert first_look is not None  # a 140-224 pixel digit spans 70-112 pixels at the first look
        assert first_look.is_inverted
        scores.append(ink_mask_f1(first_look.canonical, preprocess_image(photo).canonical))
    assert np.mean(scores) >= 0.97 and min(scores) >= 0.85  # measured 0.985 and 0.91


def test_a_small_digit_in_a_large_photo_is_left_to_the_full_size(digits):
    page = np.full((1200, 1200), PAPER_LEVEL, dtype=np.uint8)
    page[500:800, 400:700] = write_on_paper(digits[0], scale=5)  # 140 pixels: 17 at the first look
    assert preprocess_at_first_look(page) is None
    assert preprocess_image(page).canonical.any()


def test_specks_alone_are_no_digit_at_the_first_look_either():
    rng = np.random.default_rng(3)
    page = np.full((300, 300), PAPER_LEVEL, dtype=np.uint8)
    for row, column in rng.integers(0, 297, size=(40, 2)):
        page[row : row + rng.integers(1, 4), column : column + rng.integers(1, 4)] = INK_LEVEL
    assert preprocess_at_first_look(page) is None
    with pytest.raises(NoDigitFoundError, match="specks"):
        prepare.prepare_digit(encode_png(page), LIMITS)


def test_an_upload_smaller_than_twice_the_first_look_is_read_once_as_it_is(digits):
    assert max(digits[0].shape) < 2 * FIRST_LOOK_SIDE_PIXELS
    np.testing.assert_array_equal(
        prepare.prepare_digit(encode_png(digits[0]), LIMITS).canonical, preprocess_image(digits[0]).canonical
    )
    with pytest.raises(NoDigitFoundError):
        prepare.prepare_digit(encode_png(np.zeros((28, 28), dtype=np.uint8)), LIMITS)


def test_a_large_jpeg_is_decoded_small_for_the_first_look_and_again_at_full_size_when_needed(digits):
    big_digit = encode_jpeg(np.stack([write_on_paper(digits[1], size_pixels=1600, scale=40)] * 3, axis=-1))
    assert max(decode_image(big_digit, LIMITS, min_longer_side_pixels=FIRST_LOOK_SIDE_PIXELS).shape) == 200
    assert prepare.prepare_digit(big_digit, LIMITS).canonical.any()  # 1120 pixels tall: 140 at 200
    page = np.full((1600, 1600), PAPER_LEVEL, dtype=np.uint8)
    page[600:900, 600:900] = write_on_paper(digits[1], scale=5)  # 17 pixels at 200
    small_digit = encode_jpeg(np.stack([page] * 3, axis=-1))
    assert 140 * 200 // 1600 < MIN_FIRST_LOOK_DIGIT_PIXELS
    expected = preprocess_image(decode_image(small_digit, LIMITS)).canonical
    np.testing.assert_array_equal(prepare.prepare_digit(small_digit, LIMITS).canonical, expected)


@pytest.mark.parametrize("kept_fraction", [0.5, 0.9])
def test_a_truncated_progressive_jpeg_is_refused_at_the_first_look_too(kept_fraction):
    # Read at 1/8 (DC coefficients only), the missing refinement scans would change nothing, and
    # the truncation would pass unseen: a multi-scan JPEG is never reduced below the working size.
    page = np.full((1200, 1200), PAPER_LEVEL, dtype=np.uint8)
    cv2.putText(page, "7", (250, 1000), cv2.FONT_HERSHEY_SIMPLEX, 30, INK_LEVEL, 60)
    progressive = encode_with_pillow(
        Image.fromarray(page).convert("RGB"), "JPEG", progressive=True, quality=90
    )
    truncated = progressive[: int(len(progressive) * kept_fraction)] + b"\xff\xd9"
    with pytest.raises(UndecodableImageError):
        prepare.prepare_digit(truncated, LIMITS)
    assert prepare.prepare_digit(progressive, LIMITS).canonical.any()
