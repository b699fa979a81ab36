"""Upload bytes -> the canonical digit: the decode and preprocess stages as one task of a decode worker.

Module-level functions, so that a worker process can import them by name (`app.pipeline.decode_pool`).
"""

from __future__ import annotations

from app.pipeline.decode import decode_image
from app.pipeline.image_header import DecodeLimits
from app.pipeline.preprocess import PreprocessedDigit, encode_png, preprocess_image
from app.pipeline.segment import SegmentedNumber, segment_number


def prepare_digit(data: bytes, limits: DecodeLimits) -> PreprocessedDigit:
    """Upload bytes -> the canonical (28, 28) uint8 digit and whether it was inverted.

    Raises:
        DigitServeError: the 400, 413, 415 or 422 of the decode and preprocess stages.
    """
    return preprocess_image(decode_image(data, limits))


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
