"""Model probabilities (N, 10) -> calibrated probabilities, by the temperature in the model card.

A network trained to low loss is over-confident on inputs unlike its training data: a wrong digit at
0.99. Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", 2017) divides the
logits by one scalar T fitted on validation data (`training.calibrate`), so that a confidence of 0.9
is right about 90 % of the time. It keeps the order of the classes, so the digit never changes.

The SavedModel returns softmax probabilities, not logits; log-probabilities are the logits up to a
per-row constant, which the softmax cancels, so scaling them is the same transformation. The one
rule of how the card's calibration changes probabilities: the service answers with it and
`training.evaluate` reports with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from digits.errors import ModelLoadError

CALIBRATION_CARD_KEY = "calibration"
# float32 probabilities underflow to 0 for classes the model rules out; their log must stay finite.
SMALLEST_PROBABILITY = 1e-30


@dataclass(frozen=True)
class Calibration:
    """How a model's probabilities are calibrated, and the confidence below which an answer is unsure.

    Attributes:
        temperature: T > 0; 1.0 leaves the probabilities as they are (an uncalibrated model).
        min_confidence: the threshold chosen on validation data with this calibration, or None where
            the card has none (the service then falls back to its own default).
    """

    temperature: float = 1.0
    min_confidence: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"a calibration temperature must be a positive number, got {self.temperature}")
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"a minimum confidence must lie in [0, 1], got {self.min_confidence}")

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> Calibration:
        """The card's `calibration` section -> Calibration; no section: none (temperature 1).

        Raises:
            ModelLoadError: the section is there but malformed (a hand edit gone wrong), so the model
                would answer with probabilities nobody fitted.
        """
        section = card.get(CALIBRATION_CARD_KEY)
        if section is None:
            return cls()
        try:
            return cls(float(section["temperature"]), _optional_float(section.get("min_confidence")))
        except (TypeError, KeyError, ValueError) as error:
            raise ModelLoadError(f"the model card's calibration section is malformed: {error}") from error

    def to_card(self) -> dict[str, Any]:
        """The card section: the method, its temperature and the threshold chosen with it."""
        return {
            "method": "temperature",
            "temperature": self.temperature,
            "min_confidence": self.min_confidence,
        }

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """(N, 10) or (10,) probabilities -> calibrated float64 probabilities of the same shape.

        The same digit stays the most probable; each row sums to 1.
        """
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if self.temperature == 1.0:
            return probabilities
        scaled = np.log(np.maximum(probabilities, SMALLEST_PROBABILITY)) / self.temperature
        scaled -= scaled.max(axis=-1, keepdims=True)
        exponentials = np.exp(scaled)
        return exponentials / exponentials.sum(axis=-1, keepdims=True)


def is_sure(confidence: Any, min_confidence: float) -> Any:
    """The one rule of "sure": a (calibrated) confidence at or above the threshold. Element-wise on arrays.

    The service answers by it, the threshold is chosen by it (`training.calibrate`) and reported by it
    (`training.evaluate`).
    """
    return confidence >= min_confidence


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
