"""Hostile input through both first stages at once: only the documented errors ever come out.

Complements `test_preprocess_properties.py` (arbitrary bytes, damaged images, arbitrary arrays, each
stage on its own) with what it does not draw: bytes that open with a real image signature (or a
foreign one: PDF, ZIP, SVG, JPEG 2000) and continue with garbage; damaged images of the odd modes
real uploads have (16-bit PNG, palette PNG with a transparent index, CMYK JPEG, RGBA PNG, animated
GIF, multi-page TIFF, WebP), whose decoded pixels then go through preprocess, as in the service;
and arrays that are not (H, W) uint8. The contract: decode returns a (H, W) uint8 C-contiguous image
or raises one of its domain errors (400, 413, 415, 422), whose detail names the problem in plain words
(no object address, class name or library message); preprocess returns a (28, 28) uint8 digit or
raises `NoDigitFoundError` (422), or `ValueError` for a non-image array (a programming error);
anything else (an `OSError` from a codec, an OpenCV assertion) would be a 500 in the service.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from app.pipeline.decode import decode_image
from app.pipeline.preprocess import preprocess_image
from digits.errors import (
    DigitServeError,
    EmptyUploadError,
    ImageTooComplexError,
    ImageTooElongatedError,
    ImageTooLargeError,
    NoDigitFoundError,
    UndecodableImageError,
    UnsupportedImageTypeError,
)
from testkit.byte_mutations import mutated_files
from testkit.images import encode_with_pillow

# Pillow warns about the damage it skips over (corrupt EXIF, oversized tags): expected here.
pytestmark = [
    pytest.mark.unit,
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin"),
]

DECODE_ERRORS = (
    EmptyUploadError,
    UndecodableImageError,
    UnsupportedImageTypeError,
    ImageTooLargeError,
    ImageTooElongatedError,
    ImageTooComplexError,
)
# What a library's message leaks: object addresses and reprs, exception class names, Pillow itself.
LIBRARY_INTERNALS = re.compile(r"\b0x[0-9a-fA-F]{6,}|<.*object at|Error\b|PIL|Pillow|BytesIO|Traceback")
# Small enough that a header claiming a huge image is refused before a byte of it is decoded.
MAX_IMAGE_PIXELS = 4_000_000
SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"GIF87a", b"II*\x00", b"MM\x00*", b"BM"]
SIGNATURES += [b"RIFF\x00\x00\x00\x00WEBP", b"%PDF", b"PK\x03\x04", b"<svg", b"\x00\x00\x00\x0cjP  "]
HOSTILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def seed_images() -> list[bytes]:
    """A small digit-like image in every format decode reads, plus the odd modes of each."""
    pixels = np.full((24, 20), 255, dtype=np.uint8)
    pixels[4:20, 9:12] = 0
    gray = Image.fromarray(pixels)
    return [
        encode_with_pillow(gray, "PNG"),
        encode_with_pillow(gray.convert("RGBA"), "PNG"),
        encode_with_pillow(gray.convert("P"), "PNG", transparency=0),
        encode_with_pillow(Image.fromarray(pixels.astype(np.uint16) * 257), "PNG"),
        encode_with_pillow(gray.convert("RGB"), "JPEG", quality=80),
        encode_with_pillow(gray.convert("RGB"), "JPEG", quality=80, progressive=True),
        encode_with_pillow(gray.convert("CMYK"), "JPEG"),
        encode_with_pillow(gray.convert("P"), "GIF", save_all=True, append_images=[gray.convert("P")]),
        encode_with_pillow(gray, "TIFF", save_all=True, append_images=[gray]),
        encode_with_pillow(gray, "BMP"),
        encode_with_pillow(gray.convert("RGB"), "WEBP"),
    ]


SEEDS = seed_images()


def assert_plain_detail(error: DigitServeError) -> None:
    assert not LIBRARY_INTERNALS.search(error.detail), error.detail
    assert len(error.detail) > 10 and error.detail.isprintable()


def assert_pipeline_contract(data: bytes) -> None:
    """Decode, and preprocess what decodes: each returns its documented output or raises its errors."""
    try:
        gray = decode_image(data, max_image_pixels=MAX_IMAGE_PIXELS)
    except DECODE_ERRORS as error:
        assert_plain_detail(error)
        return
    assert gray.ndim == 2 and gray.dtype == np.uint8 and gray.flags.c_contiguous
    assert 0 < gray.size <= MAX_IMAGE_PIXELS
    try:
        assert preprocess_image(gray).canonical.shape == (28, 28)
    except NoDigitFoundError:
        pass


@HOSTILE
@given(signature=st.sampled_from(SIGNATURES), tail=st.binary(max_size=2048))
def test_a_real_signature_followed_by_garbage_gets_only_documented_errors(signature, tail):
    assert_pipeline_contract(signature + tail)


@HOSTILE
# Up to 8 pieces of damage, runs up to 64 bytes: deeper damage than test_preprocess_properties draws.
@given(data=mutated_files(SEEDS, max_mutations=8, max_run_bytes=64))
def test_damaged_images_of_odd_modes_get_only_documented_errors_from_both_stages(data):
    assert_pipeline_contract(data)


def test_every_seed_image_decodes():
    for data in SEEDS:
        assert decode_image(data).shape == (24, 20)


@given(
    array=hnp.arrays(
        st.sampled_from([np.float32, np.int16, np.bool_, np.uint16]),
        hnp.array_shapes(min_dims=0, max_dims=4, max_side=8),
    )
)
@settings(max_examples=50, deadline=None)
def test_preprocess_refuses_arrays_that_are_not_2d_uint8_with_value_error(array):
    with pytest.raises(ValueError, match="2-D uint8"):
        preprocess_image(array)


@HOSTILE
@given(data=st.one_of(st.binary(max_size=2048), mutated_files(SEEDS, max_mutations=3, max_run_bytes=32)))
def test_every_refusal_names_the_problem_without_library_internals(data):
    try:
        decode_image(data, max_image_pixels=MAX_IMAGE_PIXELS)
    except DigitServeError as error:
        assert_plain_detail(error)
