"""A model row becomes the digit, its calibrated confidence, every probability and the three likeliest
digits; the answer is unsure below the minimum confidence (`not_a_digit` when no two digits hold the
belief, `low_confidence` otherwise) and whenever the image held several digits."""

from __future__ import annotations

import numpy as np
import pytest

from app.pipeline.postprocess import FALLBACK_MIN_CONFIDENCE, Alternative, AnswerPolicy, UnsureReason
from digits.calibration import Calibration
from digits.errors import ModelError

pytestmark = pytest.mark.unit

SURE_SEVEN = np.array([0.001, 0.002, 0.005, 0.002, 0.004, 0.0, 0.0, 0.97, 0.006, 0.01], dtype=np.float32)
FOUR_OR_NINE = np.array([0.0, 0.0, 0.0, 0.0, 0.52, 0.0, 0.0, 0.01, 0.0, 0.47], dtype=np.float32)
SPREAD = np.array([0.2, 0.05, 0.15, 0.1, 0.05, 0.1, 0.05, 0.1, 0.15, 0.05], dtype=np.float32)


def test_a_sure_answer_is_the_most_probable_digit_with_its_runners_up():
    prediction = AnswerPolicy().judge(SURE_SEVEN)

    assert (prediction.digit, prediction.unsure, prediction.reason) == (7, False, None)
    assert prediction.confidence == pytest.approx(0.97)
    assert len(prediction.probabilities) == 10 and prediction.probabilities[9] == pytest.approx(0.01)
    assert all(isinstance(value, float) for value in prediction.probabilities)
    assert [alternative.digit for alternative in prediction.alternatives] == [7, 9, 8]
    assert prediction.alternatives[0] == Alternative(7, prediction.confidence)


def test_ties_go_to_the_smaller_digit():
    prediction = AnswerPolicy().judge(np.full(10, 0.1))
    assert prediction.digit == 0 and [a.digit for a in prediction.alternatives] == [0, 1, 2]


def test_between_two_digits_below_the_threshold_is_low_confidence():
    prediction = AnswerPolicy().judge(FOUR_OR_NINE)
    assert (prediction.digit, prediction.unsure, prediction.reason) == (4, True, UnsureReason.LOW_CONFIDENCE)
    assert [alternative.digit for alternative in prediction.alternatives[:2]] == [4, 9]


def test_belief_spread_over_many_digits_is_not_a_digit():
    prediction = AnswerPolicy().judge(SPREAD)
    assert (prediction.unsure, prediction.reason) == (True, UnsureReason.NOT_A_DIGIT)


def test_several_digit_sized_parts_make_any_answer_unsure():
    prediction = AnswerPolicy().judge(SURE_SEVEN, digit_parts=2)
    assert (prediction.digit, prediction.unsure, prediction.reason) == (7, True, UnsureReason.SEVERAL_DIGITS)


def test_the_threshold_decides_and_an_answer_at_it_is_accepted():
    exactly = SURE_SEVEN.astype(np.float64)
    exactly[7] = 0.97  # not float32's 0.97000003, which would pass a "<=" as well
    assert AnswerPolicy(min_confidence=0.97).judge(exactly).unsure is False
    assert (
        AnswerPolicy(min_confidence=np.nextafter(0.97, 1)).judge(exactly).reason
        == UnsureReason.LOW_CONFIDENCE
    )
    assert AnswerPolicy(min_confidence=0.0).judge(SPREAD).unsure is False


def test_the_calibration_changes_the_probabilities_returned_but_never_the_digit():
    policy = AnswerPolicy(Calibration(temperature=2.0), min_confidence=0.5)
    prediction = policy.judge(SURE_SEVEN)

    assert prediction.digit == 7 and prediction.confidence < 0.97
    assert prediction.probabilities == tuple(Calibration(2.0).apply(SURE_SEVEN).tolist())
    assert sum(prediction.probabilities) == pytest.approx(1.0)


def test_the_threshold_comes_from_the_setting_then_the_card_then_the_fallback():
    card_calibration = Calibration(temperature=1.5, min_confidence=0.8)
    assert AnswerPolicy.for_model(card_calibration, 0.6).min_confidence == 0.6
    assert AnswerPolicy.for_model(card_calibration, None) == AnswerPolicy(card_calibration, 0.8)
    assert AnswerPolicy.for_model(Calibration(), None).min_confidence == FALLBACK_MIN_CONFIDENCE


@pytest.mark.parametrize("row", [np.full(9, 0.1), np.full(11, 0.1), np.array([np.nan] + [0.1] * 9)])
def test_invalid_rows_are_model_errors(row):
    with pytest.raises(ModelError):
        AnswerPolicy().judge(row)
