"""Each result is one CSV row; an image that could not be read is a row with its error code."""

from __future__ import annotations

import pytest

from digitserve.results import Alternative, Box, ImageError, Prediction, ReadDigit, Reading
from digitserve.rows import PREDICTION_COLUMNS, READING_COLUMNS, prediction_row, reading_row

pytestmark = pytest.mark.unit


def digit(value: int, confidence: float, reason: str | None = None) -> ReadDigit:
    return ReadDigit(
        value, confidence, reason is not None, reason, (Alternative(value, confidence),), Box(0, 0, 1, 1)
    )


def test_a_prediction_row_gives_file_digit_confidence_unsure_and_reason():
    prediction = Prediction("scans/a.png", 4, 0.55123, (0.1,) * 10, True, "low_confidence", (), True, "6")
    assert PREDICTION_COLUMNS == ("file", "digit", "confidence", "unsure", "reason")
    assert prediction_row(prediction) == ["scans/a.png", "4", "0.5512", "true", "low_confidence"]
    sure = Prediction("b.png", 7, 0.99996, (0.1,) * 10, False, None, (), False, "6")
    assert prediction_row(sure) == ["b.png", "7", "1.0000", "false", ""]


def test_a_reading_row_gives_the_text_and_each_digit_with_its_confidence():
    reading = Reading(
        "form.jpg",
        "42",
        (digit(4, 0.99812), digit(2, 0.61, "low_confidence")),
        True,
        "unsure_digit",
        True,
        "6",
    )
    assert READING_COLUMNS == ("file", "text", "unsure", "reason", "digits")
    assert reading_row(reading) == ["form.jpg", "42", "true", "unsure_digit", "4:0.9981 2:0.6100"]


def test_an_unreadable_image_is_an_unsure_row_with_its_error_code():
    error = ImageError("blank.png", 422, "no_digit_found", "no ink")
    assert prediction_row(error) == ["blank.png", "", "", "true", "no_digit_found"]
    assert reading_row(error) == ["blank.png", "", "true", "no_digit_found", ""]
