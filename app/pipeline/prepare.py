"""Upload bytes -> the canonical digit: the decode and preprocess stages as one task of a decode worker.

Module-level functions, so that a worker process can import them by name (`app.pipeline.decode_pool`).
"""

from __future__ import annotations

from app.pipeline.decode import decode_image, decode_image_for_a_first_look
from app.pipeline.image_header import DecodeLimits
from app.pipeline.preprocess import (
    FIRST_LOOK_SIDE_PIXELS,
    PreprocessedDigit,
    encode_png,
    preprocess_at_first_look,
    preprocess_image,
)
from app.pipeline.segment import SegmentedNumber, segment_number


def prepare_digit(data: bytes, limits: DecodeLimits) -> PreprocessedDigit:
    """Upload bytes -> the canonical (28, 28) uint8 digit and whether it was inverted.

    An upload of twice FIRST_LOOK_SIDE_PIXELS or more gets a first look (`preprocess_at_first_look`),
    a one-pass JPEG decoded that small by its DCT scaling; when the first look finds no digit, or one
    too small or faint, the upload is read at the full working size, the JPEG decoded again for it
    when the first decode was reduced.

    Raises:
        DigitServeError: the 400, 413, 415 or 422 of the decode and preprocess stages.
    """
    gray, is_reduced = decode_image_for_a_first_look(data, limits, FIRST_LOOK_SIDE_PIXELS)
    if not is_reduced and max(gray.shape) < 2 * FIRST_LOOK_SIDE_PIXELS:
        return preprocess_image(gray)  # a first look would see the upload itself
    digit = preprocess_at_first_look(gray)
    if digit is not None:
        return digit
    return preprocess_image(decode_image(data, limits) if is_reduced else gray)


def render_model_view(data: bytes, limits: DecodeLimits) -> tuple[bytes, bool]:
    """Upload bytes -> the PNG of the digit the model would see, and whether it was inverted."""
    digit = prepare_digit(data, limits)
    return encode_png(digit.canonical), digit.is_inverted


def prepare_number(data: bytes, limits: DecodeLimits, max_digits: int) -> SegmentedNumber:
    """Upload bytes -> the candidate cut-outs of the number it shows (`segment`).

    Raises:
        DigitServeError: the 400, 413, 415 or 422 of the decode and segmentation stages
            (`too_many_digits` among them).
    """
    return segment_number(decode_image(data, limits), max_digits)
