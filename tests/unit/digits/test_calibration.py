"""The card's calibration rescales probabilities by one temperature: the digit never changes, each row
still sums to 1, T = 1 changes nothing, and a malformed card section is refused at load."""

from __future__ import annotations

import numpy as np
import pytest

from digits.calibration import Calibration
from digits.errors import ModelLoadError

pytestmark = pytest.mark.unit


def _rows(seed: int = 0, count: int = 50) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(scale=4.0, size=(count, 10))
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exponentials / exponentials.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("temperature", [0.5, 1.7, 4.0])
def test_a_temperature_keeps_the_digit_and_sums_to_one(temperature):
    rows = _rows()
    calibrated = Calibration(temperature).apply(rows)

    assert calibrated.shape == rows.shape
    assert np.array_equal(calibrated.argmax(axis=1), rows.argmax(axis=1))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-12)


def test_a_temperature_above_one_softens_and_below_one_sharpens_the_top_probability():
    rows = _rows()
    top = rows.max(axis=1)
    assert np.all(Calibration(2.0).apply(rows).max(axis=1) <= top + 1e-7)
    assert np.all(Calibration(0.5).apply(rows).max(axis=1) >= top - 1e-7)


def test_it_equals_a_softmax_of_the_logits_divided_by_the_temperature():
    logits = np.array([2.0, -1.0, 0.5, 0, 0, 0, 0, 0, 0, 3.0])
    probabilities = np.exp(logits) / np.exp(logits).sum()
    expected = np.exp(logits / 2.5) / np.exp(logits / 2.5).sum()
    np.testing.assert_allclose(Calibration(2.5).apply(probabilities), expected, rtol=1e-9)


def test_temperature_one_leaves_the_probabilities_as_they_are_and_zeros_stay_finite():
    rows = _rows()
    assert np.array_equal(Calibration().apply(rows), rows.astype(np.float64))
    one_hot = np.eye(10, dtype=np.float32)[3]
    calibrated = Calibration(3.0).apply(one_hot)
    assert np.all(np.isfinite(calibrated)) and calibrated.argmax() == 3


def test_the_card_section_round_trips_and_no_section_means_no_calibration():
    calibration = Calibration(1.83, 0.91)
    assert Calibration.from_card({"calibration": calibration.to_card()}) == calibration
    assert Calibration.from_card({}) == Calibration(1.0, None)


@pytest.mark.parametrize(
    "section",
    [
        {},
        {"temperature": "warm"},
        {"temperature": -1},
        {"temperature": 0},
        {"temperature": 1.2, "min_confidence": 2},
    ],
)
def test_a_malformed_card_section_is_a_load_error(section):
    with pytest.raises(ModelLoadError, match="calibration section is malformed"):
        Calibration.from_card({"calibration": section})
