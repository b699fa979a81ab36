"""Scored held-out sets + the model card's calibration -> how "unsure" answers do: calibration error and
NLL before and after, the unsure rate and the accepted answers' accuracy at the threshold, accuracy at
fixed coverages (risk-coverage), reliability diagrams. Reported by `training.evaluate` and every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits.calibration import Calibration, is_sure
from training.evaluate import DatasetScore


@dataclass(frozen=True)
class SelectiveScore:
    """How the calibrated answers and the "unsure" threshold of a model card do on one held-out set."""

    name: str
    before: dict[str, float]  # ece, nll of the model's own probabilities
    after: dict[str, float]  # ece, nll of the calibrated ones
    min_confidence: float
    unsure_rate: float  # answers below the threshold
    accepted_accuracy: float  # of the answers at or above it
    accuracy_at_coverage: dict[float, float]  # the most confident share kept -> its accuracy
    curve: tuple[np.ndarray, np.ndarray]  # risk-coverage: coverage, accuracy of the kept

    def to_card(self) -> dict[str, object]:
        return {
            "before": self.before,
            "after": self.after,
            "min_confidence": round(self.min_confidence, 6),
            "unsure_rate": round(self.unsure_rate, 5),
            "accepted_accuracy": round(self.accepted_accuracy, 5),
            "accuracy_at_coverage": {
                f"{coverage:g}": accuracy for coverage, accuracy in self.accuracy_at_coverage.items()
            },
        }


REPORTED_COVERAGES = (0.99, 0.98, 0.95, 0.9, 0.8)


def score_selective(score: DatasetScore, calibration: Calibration, min_confidence: float) -> SelectiveScore:
    """ECE and NLL before and after calibration, the unsure rate and accepted accuracy at the threshold,
    and the accuracy at fixed coverages (risk-coverage), of one scored set."""
    from training.calibrate import calibration_scores, risk_coverage

    calibrated = calibration.apply(score.probabilities)
    confidences = calibrated.max(axis=1)
    correct = calibrated.argmax(axis=1) == score.labels
    accepted = is_sure(confidences, min_confidence)
    coverage, accuracy = risk_coverage(confidences, correct)

    return SelectiveScore(
        name=score.name,
        before=calibration_scores(score.probabilities, score.labels),
        after=calibration_scores(calibrated, score.labels),
        min_confidence=min_confidence,
        unsure_rate=float(1.0 - accepted.mean()),
        accepted_accuracy=float(correct[accepted].mean()) if accepted.any() else 1.0,
        accuracy_at_coverage={
            target: round(float(accuracy[max(0, int(np.ceil(target * len(accuracy))) - 1)]), 5)
            for target in REPORTED_COVERAGES
        },
        curve=(coverage, accuracy),
    )


def format_selective_table(scores: Sequence[SelectiveScore]) -> str:
    """A Markdown table: calibration error and NLL before -> after, and the answers at the threshold."""
    threshold = scores[0].min_confidence if scores else float("nan")
    coverages = "".join(f" right @ {100 * coverage:g} % |" for coverage in REPORTED_COVERAGES)
    lines = [
        f"| test set | ECE raw → calibrated | NLL raw → calibrated | unsure (< {threshold:.4f}) "
        f"| accepted right |{coverages}",
        "|---|---:|---:|---:|---:|" + "---:|" * len(REPORTED_COVERAGES),
    ]
    for s in scores:
        at_coverage = "".join(f" {100 * s.accuracy_at_coverage[c]:.2f} % |" for c in REPORTED_COVERAGES)
        lines.append(
            f"| {s.name} | {100 * s.before['ece']:.2f} % → {100 * s.after['ece']:.2f} % "
            f"| {s.before['nll']:.4f} → {s.after['nll']:.4f} | {100 * s.unsure_rate:.2f} % "
            f"| {100 * s.accepted_accuracy:.3f} % |{at_coverage}"
        )
    return "\n".join(lines)


def save_selective_plots(
    output_dir: Path,
    scores: Sequence[SelectiveScore],
    dataset_scores: Sequence[DatasetScore],
    calibration: Calibration,
) -> list[Path]:
    """Writes reliability.png (each set before and after calibration) and risk_coverage.png."""
    from training.calibrate import reliability
    from training.plots import save_reliability_diagrams, save_risk_coverage_curves

    diagrams = {}
    for selective, score in zip(scores, dataset_scores, strict=True):
        for label, probabilities, ece in (
            ("raw", score.probabilities, selective.before["ece"]),
            (
                f"T = {calibration.temperature:g}",
                calibration.apply(score.probabilities),
                selective.after["ece"],
            ),
        ):
            diagram = reliability(probabilities, score.labels)
            diagrams[f"{score.name}, {label}: ECE {100 * ece:.2f} %"] = (
                diagram.confidence,
                diagram.accuracy,
                diagram.count,
            )
    save_reliability_diagrams(output_dir / "reliability.png", diagrams)
    save_risk_coverage_curves(output_dir / "risk_coverage.png", {s.name: s.curve for s in scores})
    return [output_dir / "reliability.png", output_dir / "risk_coverage.png"]
