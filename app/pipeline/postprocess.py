"""Model output (10,) float32 probabilities -> `Prediction` (digit, confidence, probabilities).

The last stage of the request path. It checks the row instead of trusting it: a NaN or a row of the
wrong length means a broken model, which must surface as a 500, not as a confident wrong digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits.contract import NUM_CLASSES
from digits.errors import ModelError


@dataclass(frozen=True)
class Prediction:
    """What the model read.

    Attributes:
        digit: the most probable class, 0-9.
        confidence: its probability, in [0, 1].
        probabilities: the 10 class probabilities, index = digit.
    """

    digit: int
    confidence: float
    probabilities: tuple[float, ...]


def postprocess_probabilities(probabilities: np.ndarray) -> Prediction:
    """Turns one row of model output into a `Prediction`.

    Args:
        probabilities: (10,) float probabilities (softmax output), index = digit.

    Returns:
        The prediction; ties go to the smaller digit.

    Raises:
        ModelError: the row is not 10 finite values.
    """
    row = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if row.shape != (NUM_CLASSES,) or not np.all(np.isfinite(row)):
        raise ModelError(f"the model returned an invalid probability row: {row.tolist()}")
    digit = int(np.argmax(row))
    return Prediction(digit=digit, confidence=float(row[digit]), probabilities=tuple(row.tolist()))
