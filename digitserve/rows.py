"""Results -> CSV rows: one row per image, an image the service could not read included.

`digitserve predict`: file, digit, confidence, unsure, reason. `digitserve read`: file, text, unsure,
reason, digits (each digit as `digit:confidence`, left to right). An image that could not be read has
no digit or text, `unsure` true, and its error code (`no_digit_found`, `undecodable_image`...) as the
reason: a person has to look at it, as at an unsure answer.
"""

from __future__ import annotations

from digitserve.results import ImageError, Prediction, Reading

PREDICTION_COLUMNS = ("file", "digit", "confidence", "unsure", "reason")
READING_COLUMNS = ("file", "text", "unsure", "reason", "digits")
# Four decimals: the README's precision, and enough to sort by.
CONFIDENCE_FORMAT = "{:.4f}"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def prediction_row(result: Prediction | ImageError) -> list[str]:
    """A digit's row, in `PREDICTION_COLUMNS` order."""
    if isinstance(result, ImageError):
        return [result.file or "", "", "", _flag(True), result.code]
    return [
        result.file or "",
        str(result.digit),
        CONFIDENCE_FORMAT.format(result.confidence),
        _flag(result.unsure),
        result.reason or "",
    ]


def reading_row(result: Reading | ImageError) -> list[str]:
    """A number's row, in `READING_COLUMNS` order."""
    if isinstance(result, ImageError):
        return [result.file or "", "", _flag(True), result.code, ""]
    digits = " ".join(
        f"{digit.digit}:{CONFIDENCE_FORMAT.format(digit.confidence)}" for digit in result.digits
    )
    return [result.file or "", result.text, _flag(result.unsure), result.reason or "", digits]
