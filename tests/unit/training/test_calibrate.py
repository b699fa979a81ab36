"""Calibration fitted on validation data: the temperature lowers the NLL on data it was not fitted on,
the expected calibration error follows its definition, and the threshold of "unsure" keeps the accepted
answers' error at or below the risk asked for, at the widest coverage that allows."""

from __future__ import annotations

import numpy as np
import pytest

from digits.calibration import Calibration
from training.calibrate import (
    choose_min_confidence,
    expected_calibration_error,
    fit_calibration,
    fit_temperature,
    negative_log_likelihood,
    reliability,
    risk_coverage,
)

pytestmark = pytest.mark.unit


def overconfident_predictions(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(logits), so softmax(logits) is calibrated by construction; the model
    answers softmax(3 * logits): right as often, far more sure."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(count, 10))
    logits[:, 0] += 2.0
    calibrated = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(10, p=row) for row in calibrated])
    sharpened = np.exp(3 * (logits - logits.max(axis=1, keepdims=True)))
    return (sharpened / sharpened.sum(axis=1, keepdims=True)).astype(np.float32), labels


def test_the_fitted_temperature_lowers_nll_and_ece_on_another_part_of_the_data():
    probabilities, labels = overconfident_predictions(6000, seed=1)
    fit_part, check_part = slice(0, 3000), slice(3000, None)

    temperature = fit_temperature(probabilities[fit_part], labels[fit_part])
    calibrated = Calibration(temperature).apply(probabilities[check_part])

    assert 2.5 < temperature < 3.5  # the logits were made 3x too large
    raw_nll = negative_log_likelihood(probabilities[check_part], labels[check_part])
    assert negative_log_likelihood(calibrated, labels[check_part]) < 0.8 * raw_nll
    raw_ece = expected_calibration_error(probabilities[check_part], labels[check_part])
    assert expected_calibration_error(calibrated, labels[check_part]) < min(0.03, raw_ece / 3)


def test_ece_is_the_count_weighted_gap_between_accuracy_and_confidence_per_bin():
    # Two answers at 0.95 (one right), two at 0.55 (both right): bins (0.933, 1] and (0.533, 0.6].
    probabilities = np.full((4, 10), 0.0)
    probabilities[:2, 0], probabilities[:2, 1] = 0.95, 0.05
    probabilities[2:, 0], probabilities[2:, 1] = 0.55, 0.45
    labels = np.array([0, 1, 0, 0])

    diagram = reliability(probabilities, labels)
    assert diagram.count.sum() == 4 and np.count_nonzero(diagram.count) == 2
    expected = (2 * abs(0.5 - 0.95) + 2 * abs(1.0 - 0.55)) / 4
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected)


def test_risk_coverage_keeps_the_most_confident_answers_first():
    coverage, accuracy = risk_coverage(np.array([0.6, 0.99, 0.8, 0.7]), np.array([False, True, True, False]))
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(accuracy, [1.0, 1.0, 2 / 3, 0.5])


def test_the_threshold_is_the_lowest_whose_accepted_answers_stay_within_the_risk():
    confidences = np.array([0.99, 0.98, 0.97, 0.96, 0.90, 0.80, 0.70])
    correct = np.array([True, True, True, True, False, True, False])
    # Kept down to 0.80: 1 wrong of 6 (16.7 %); down to 0.96: none wrong.
    assert choose_min_confidence(confidences, correct, max_risk=0.0) == 0.96
    assert choose_min_confidence(confidences, correct, max_risk=0.2) == 0.80
    assert choose_min_confidence(confidences, correct, max_risk=0.5) == 0.70
    assert choose_min_confidence(np.array([0.9]), np.array([False]), max_risk=0.1) == 1.0


def test_equal_confidences_are_accepted_or_refused_together():
    confidences = np.array([0.99, 0.95, 0.95, 0.95])
    correct = np.array([True, True, True, False])
    # Cutting between the 0.95s is impossible: it is 0.99 (0 % wrong) or 0.95 (25 % wrong).
    assert choose_min_confidence(confidences, correct, max_risk=0.2) == 0.99


@pytest.mark.parametrize("seed", [2, 3])
def test_a_fit_reports_its_scores_and_meets_its_risk_on_the_data_it_was_chosen_on(seed):
    probabilities, labels = overconfident_predictions(4000, seed=seed)
    fit = fit_calibration(probabilities, labels, max_risk=0.01)

    assert fit.after["nll"] < fit.before["nll"] and fit.after["ece"] < fit.before["ece"]
    calibrated = fit.calibration.apply(probabilities)
    accepted = calibrated.max(axis=1) >= fit.calibration.min_confidence
    assert fit.after["coverage"] == pytest.approx(accepted.mean(), abs=1e-5)
    assert (calibrated.argmax(axis=1)[accepted] == labels[accepted]).mean() >= 0.99
    section = fit.to_card("combined/validation")
    assert section["method"] == "temperature" and section["fitted_on"] == "combined/validation (4000 images)"
