"""Validation probabilities -> the temperature, and the threshold below which an answer is "unsure".

Fitted on the run's validation split (never on a test set): the temperature that minimizes the
negative log-likelihood (Guo et al. 2017), then the lowest confidence at which the answers kept are
still right often enough (`max_risk`, the share of wrong answers allowed among the accepted ones):
the service's default minimum confidence, below which an answer is "unsure". The measures here
(expected calibration error, NLL, risk-coverage) are also what `training.evaluate` reports per test set.

    python -m training.calibrate runs/<run> [--max-risk 0.002]

recalibrates a finished run from its card: the same datasets and seed draw the same validation split.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import minimize_scalar

from digits.calibration import CALIBRATION_CARD_KEY, SMALLEST_PROBABILITY, Calibration, is_sure
from digits.errors import ModelLoadError
from training.cli import FlagArgumentParser, bounded_value
from training.datasets import DigitSet

if TYPE_CHECKING:
    from training.evaluate import ServingFunction

CALIBRATION_BINS = 15  # equal-width confidence bins of the expected calibration error (Guo et al.)
# Wide enough for any sane network (T < 1 sharpens an under-confident one); fitted on log T.
TEMPERATURE_RANGE = (0.05, 20.0)
# The share of wrong answers allowed among those answered with confidence: one in 500.
DEFAULT_MAX_RISK = 0.002
CALIBRATION_PLOT_NAME = "calibration.png"


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true digit) of (N, 10) probabilities."""
    true = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(true, SMALLEST_PROBABILITY)).mean())


@dataclass(frozen=True)
class Reliability:
    """Per equal-width confidence bin: mean confidence, accuracy and count (empty bins: NaN, 0)."""

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def expected_calibration_error(self) -> float:
        """Sum over bins of |accuracy - confidence| weighted by the bin's share of the images."""
        filled = self.count > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float((gaps * self.count[filled]).sum() / max(1, self.count.sum()))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> Reliability:
    """Bins the answers by confidence (the top probability): (0, 1/bins], ..., ((bins-1)/bins, 1]."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidences = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    index = np.clip(np.ceil(confidences * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, confidences, minlength=bins) / count
        accuracy = np.bincount(index, correct.astype(np.float64), minlength=bins) / count
    return Reliability(confidence, accuracy, count)


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """ECE with `bins` equal-width bins, in [0, 1]."""
    return reliability(probabilities, labels, bins).expected_calibration_error


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimizes the NLL of `probabilities` against `labels` (a convex problem
    in 1/T, solved by a bounded scalar search on log T)."""

    def nll_at(log_temperature: float) -> float:
        calibration = Calibration(temperature=math.exp(log_temperature))
        return negative_log_likelihood(calibration.apply(probabilities), labels)

    bounds = (math.log(TEMPERATURE_RANGE[0]), math.log(TEMPERATURE_RANGE[1]))
    result = minimize_scalar(nll_at, bounds=bounds, method="bounded", options={"xatol": 1e-4})
    return round(math.exp(float(result.x)), 4)


def risk_coverage(confidences: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Answers kept from the most confident down -> (coverage, accuracy of the kept) after each one.

    Equal confidences are kept in data order (a threshold cannot split them; on real model outputs ties
    are rare below 1.0), so a point inside a run of ties is one no threshold gives exactly.
    """
    order = np.argsort(-np.asarray(confidences), kind="stable")
    kept = np.arange(1, len(order) + 1)
    return kept / len(order), np.cumsum(np.asarray(correct)[order]) / kept


def choose_min_confidence(confidences: np.ndarray, correct: np.ndarray, max_risk: float) -> float:
    """The lowest confidence threshold whose accepted answers (`is_sure`: confidence >= it) are wrong at
    most `max_risk` of the time; 1.0 when even the most confident answer is wrong too often (then only
    answers whose confidence rounds to 1.0 are accepted).

    Equal confidences are accepted or refused together, so the threshold is one of the confidences.
    """
    confidences = np.asarray(confidences, dtype=np.float64)
    order = np.argsort(-confidences, kind="stable")
    sorted_confidences = confidences[order]
    errors = np.cumsum(~np.asarray(correct, dtype=bool)[order])
    kept = np.arange(1, len(order) + 1)
    # Only the last answer of each run of equal confidences is a threshold one can draw.
    is_cut = np.append(sorted_confidences[1:] < sorted_confidences[:-1], True)
    allowed = is_cut & (errors <= max_risk * kept)
    if not allowed.any():
        return 1.0
    return float(sorted_confidences[np.flatnonzero(allowed)[-1]])


@dataclass(frozen=True)
class CalibrationFit:
    """The fitted calibration and how it measured on the data it was fitted on."""

    calibration: Calibration
    images: int
    max_risk: float
    before: dict[str, float]  # nll, ece of the raw probabilities
    after: dict[str, float]  # nll, ece, and the coverage and accuracy at the chosen threshold

    def to_card(self, fitted_on: str) -> dict[str, Any]:
        return {
            **self.calibration.to_card(),
            "fitted_on": f"{fitted_on} ({self.images} images)",
            "max_risk": self.max_risk,
            "before": self.before,
            "after": self.after,
        }


def fit_calibration(probabilities: np.ndarray, labels: np.ndarray, max_risk: float) -> CalibrationFit:
    """Validation probabilities (N, 10) and labels -> temperature, minimum confidence, and their scores."""
    temperature = fit_temperature(probabilities, labels)
    calibrated = Calibration(temperature).apply(probabilities)
    confidences = calibrated.max(axis=1)
    correct = calibrated.argmax(axis=1) == labels
    threshold = choose_min_confidence(confidences, correct, max_risk)
    accepted = is_sure(confidences, threshold)
    return CalibrationFit(
        calibration=Calibration(temperature, threshold),
        images=len(labels),
        max_risk=max_risk,
        before=calibration_scores(probabilities, labels),
        after={
            **calibration_scores(calibrated, labels),
            "coverage": round(float(accepted.mean()), 5),
            "accepted_accuracy": round(float(correct[accepted].mean()) if accepted.any() else 1.0, 5),
        },
    )


def calibration_scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """NLL and ECE of (N, 10) probabilities, rounded for a model card."""
    return {
        "nll": round(negative_log_likelihood(probabilities, labels), 5),
        "ece": round(expected_calibration_error(probabilities, labels), 5),
    }


def calibrate_model(
    model_dir: Path,
    validation: DigitSet,
    max_risk: float = DEFAULT_MAX_RISK,
    serve: ServingFunction | None = None,
) -> dict[str, Any]:
    """Fits an exported model's calibration on validation digits (scored by the service's loader, or by
    `serve`, the same model already loaded) and saves its reliability diagram beside the model as
    calibration.png; returns the card section.

    Raises:
        ModelLoadError: the model cannot be loaded.
    """
    from training.evaluate import load_serving_function, predict_probabilities

    serve = serve or load_serving_function(model_dir)
    probabilities = predict_probabilities(serve, validation.images)
    fit = fit_calibration(probabilities, validation.labels, max_risk)
    save_reliability_diagram(
        model_dir / CALIBRATION_PLOT_NAME,
        {
            f"{validation.name}, raw": reliability(probabilities, validation.labels),
            f"T = {fit.calibration.temperature:g}": reliability(
                fit.calibration.apply(probabilities), validation.labels
            ),
        },
    )
    return fit.to_card(validation.name)


def calibrate_run(run_dir: Path, max_risk: float = DEFAULT_MAX_RISK) -> dict[str, Any]:
    """Recalibrates a finished run on its validation split (redrawn from its card's config), and writes
    the section into the run's cards; returns it.

    Raises:
        PromotionError: the run holds no exported model.
        DatasetError: its datasets cannot be loaded.
        ModelLoadError: its model or card cannot be read.
    """
    from pydantic import ValidationError

    from digits.model_store import read_model_card, write_model_card
    from training.cli import describe_validation_error
    from training.config import TrainConfig
    from training.datasets.combine import split_train_validation
    from training.datasets.registry import load_configured_sources
    from training.promote import exported_model_dir

    model_dir = exported_model_dir(run_dir)
    card = read_model_card(model_dir)
    if "config" not in card:
        raise ModelLoadError(f"{model_dir}'s model card holds no training config to redraw its validation")
    try:
        config = TrainConfig.model_validate(card["config"])
    except ValidationError as error:
        raise ModelLoadError(
            f"{model_dir}'s model card holds a training config this version cannot read: "
            f"{describe_validation_error(error)}"
        ) from error
    split = split_train_validation(
        load_configured_sources(config),
        config.validation_fraction,
        config.seed,
        repeats=config.repeats_by_source,
    )
    section = calibrate_model(model_dir, split.validation, max_risk)
    for folder in {model_dir, run_dir}:
        folder_card = read_model_card(folder)
        if folder_card:
            write_model_card(folder, {**folder_card, CALIBRATION_CARD_KEY: section})
    return section


def save_reliability_diagram(path: Path, diagrams: dict[str, Reliability]) -> None:
    """One reliability diagram per entry: accuracy against confidence per bin, the diagonal perfect."""
    from training.plots import save_reliability_diagrams

    save_reliability_diagrams(
        path,
        {
            f"{name}: ECE {100 * diagram.expected_calibration_error:.2f} %": (
                diagram.confidence,
                diagram.accuracy,
                diagram.count,
            )
            for name, diagram in diagrams.items()
        },
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m training.calibrate RUN [--max-risk R]`; exit 2 with a message on bad input."""
    from training.datasets import DatasetError
    from training.promote import PromotionError

    parser = FlagArgumentParser(prog="python -m training.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished run's folder (runs/<run>)")
    parser.add_argument(
        "--max-risk",
        type=bounded_value(float, ge=0.0, lt=1.0),
        default=DEFAULT_MAX_RISK,
        help="share of wrong answers allowed among the confident validation answers; sets the "
        f"model's minimum confidence (default {DEFAULT_MAX_RISK})",
    )
    args = parser.parse_args(argv)
    try:
        section = calibrate_run(args.run_dir, args.max_risk)
    except (PromotionError, DatasetError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"temperature {section['temperature']}, minimum confidence {section['min_confidence']} "
        f"(coverage {100 * section['after']['coverage']:.2f} %, accepted right "
        f"{100 * section['after']['accepted_accuracy']:.3f} % on {section['fitted_on']}); "
        f"NLL {section['before']['nll']} -> {section['after']['nll']}, "
        f"ECE {100 * section['before']['ece']:.2f} % -> {100 * section['after']['ece']:.2f} %"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
