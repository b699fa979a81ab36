"""Model output (10,) float32 probabilities -> `Prediction`: the digit, its calibrated confidence, the
runners-up, and whether the answer is sure enough to act on.

The last stage of the request path. It checks the row instead of trusting it: a NaN or a row of the
wrong length means a broken model, which must surface as a 500, not as a confident wrong digit. Then
the model card's calibration (`digits.calibration`) turns the model's probabilities into ones that
mean what they say, and `AnswerPolicy` decides "unsure", and why:
- `several_digits`: the preprocessing found two or more digit-sized parts side by side (one image of
  "42"); the model saw only one of them.
- `not_a_digit`: the model spreads its belief over three or more digits; a model trained with outlier
  exposure answers a letter, a scribble or noise with a (nearly) uniform distribution.
- `low_confidence`: the digit is below the minimum confidence, typically between two readings
  (a 4 or a 9).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from digits.calibration import Calibration, is_sure
from digits.contract import NUM_CLASSES
from digits.errors import ModelError

ALTERNATIVES_SHOWN = 3
# For a model card without a threshold chosen on validation data (an uncalibrated model): a wrong
# answer of a well-trained digit model is rarely this sure.
FALLBACK_MIN_CONFIDENCE = 0.9
# Below this, the two likeliest digits together hold too little belief for "one of these two":
# the model sees no digit it knows. Two readings of one written digit (a 4 or a 9, a 1 or a 7) keep
# nearly all the probability between them.
NOT_A_DIGIT_MAX_TOP_TWO_PROBABILITY = 0.75


class UnsureReason(StrEnum):
    """Why an answer should go to a person."""

    LOW_CONFIDENCE = "low_confidence"
    NOT_A_DIGIT = "not_a_digit"
    SEVERAL_DIGITS = "several_digits"


@dataclass(frozen=True)
class Alternative:
    """One of the likeliest digits and its (calibrated) probability."""

    digit: int
    probability: float


@dataclass(frozen=True)
class Prediction:
    """What the model read.

    Attributes:
        digit: the most probable class, 0-9.
        confidence: its calibrated probability, in [0, 1].
        probabilities: the 10 calibrated class probabilities, index = digit.
        unsure: whether a person should check the answer.
        reason: why it is unsure; None when it is not.
        alternatives: the `ALTERNATIVES_SHOWN` likeliest digits, most probable first.
    """

    digit: int
    confidence: float
    probabilities: tuple[float, ...]
    unsure: bool = False
    reason: UnsureReason | None = None
    alternatives: tuple[Alternative, ...] = ()


@dataclass(frozen=True)
class AnswerPolicy:
    """How the served model's probabilities become answers: its calibration and the minimum confidence.

    Attributes:
        calibration: the model card's (temperature 1 for an uncalibrated model).
        min_confidence: below it an answer is unsure; in [0, 1].
    """

    calibration: Calibration = Calibration()
    min_confidence: float = FALLBACK_MIN_CONFIDENCE

    @classmethod
    def for_model(cls, calibration: Calibration, min_confidence: float | None) -> AnswerPolicy:
        """The policy of a served model: the setting's threshold if given, else the one the card chose
        on validation data with its calibration, else `FALLBACK_MIN_CONFIDENCE`."""
        if min_confidence is None:
            min_confidence = calibration.min_confidence
        if min_confidence is None:
            min_confidence = FALLBACK_MIN_CONFIDENCE
        return cls(calibration, min_confidence)

    def judge(self, probabilities: np.ndarray, digit_parts: int = 1) -> Prediction:
        """One row of model output (and how many digit-sized parts the image held) -> `Prediction`.

        Raises:
            ModelError: the row is not 10 finite values.
        """
        row = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if row.shape != (NUM_CLASSES,) or not np.all(np.isfinite(row)):
            raise ModelError(f"the model returned an invalid probability row: {row.tolist()}")
        row = self.calibration.apply(row)
        # Most probable first; a stable sort gives ties to the smaller digit.
        ranked = np.argsort(-row, kind="stable")[:ALTERNATIVES_SHOWN]
        digit, confidence = int(ranked[0]), float(row[ranked[0]])
        reason = None
        if digit_parts > 1:
            reason = UnsureReason.SEVERAL_DIGITS
        elif not is_sure(confidence, self.min_confidence):
            top_two = confidence + float(row[ranked[1]])
            is_spread = top_two < NOT_A_DIGIT_MAX_TOP_TWO_PROBABILITY
            reason = UnsureReason.NOT_A_DIGIT if is_spread else UnsureReason.LOW_CONFIDENCE
        return Prediction(
            digit=digit,
            confidence=confidence,
            probabilities=tuple(row.tolist()),
            unsure=reason is not None,
            reason=reason,
            alternatives=tuple(Alternative(int(index), float(row[index])) for index in ranked),
        )
