"""A segmented number and the model's rows for its candidates -> the digits read, and how sure.

The last stage of `/read`. Each ink group of the number has readings: as one digit, and, when it is
wide, as 2..k touching digits cut at different columns (`segment`). The model has read every piece
of every reading in one batch; here each group takes the reading whose pieces the model finds most
probable (the mean log-probability of each piece's likeliest digit), less a penalty for a digit
count far from what the group's width suggests. Then every chosen digit is judged by the served
model's `AnswerPolicy`, as a `/predict` answer is.

The number is unsure when one of its digits is, or when the segmentation itself is doubtful: a group
whose runner-up reading, with another text, scores within `DOUBTFUL_SCORE_MARGIN` of the best.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.pipeline.postprocess import AnswerPolicy, Prediction
from app.pipeline.segment import DigitCandidate, Reading, SegmentedNumber
from digits.errors import ModelError, TooManyDigitsError

# Log-probability a reading loses per merge of two digit-sized parts into one digit (digits seldom
# break into two parts of full height; the model reads two squeezed digits as one all too readily),
# and per cut through touching ink. Chosen on numbers made of MNIST training digits.
MERGE_PENALTY = 1.0
CUT_PENALTY = 0.0
DOUBTFUL_SCORE_MARGIN = 0.5
PROBABILITY_FLOOR = 1e-6  # a piece the model finds impossible still ranks its readings


@dataclass(frozen=True)
class ReadDigit:
    """One digit of the number: the model's judged answer and where it is in the upload."""

    prediction: Prediction
    candidate: DigitCandidate  # the cut-out the model read, and its box in the upload


@dataclass(frozen=True)
class NumberReading:
    """The digits read left to right, and whether a person should check the number."""

    digits: tuple[ReadDigit, ...]
    is_segmentation_doubtful: bool

    @property
    def text(self) -> str:
        return "".join(str(digit.prediction.digit) for digit in self.digits)

    @property
    def unsure(self) -> bool:
        return self.is_segmentation_doubtful or any(digit.prediction.unsure for digit in self.digits)


def _reading_score(rows: np.ndarray, reading: Reading) -> float:
    """The log-probability that every piece is the digit the model reads in it (pieces independent),
    less the penalties of merging parts and cutting ink: a reading with more pieces must earn each."""
    likelihood = float(np.sum(np.log(np.maximum(rows.max(axis=1), PROBABILITY_FLOOR))))
    return likelihood - MERGE_PENALTY * reading.merges - CUT_PENALTY * reading.cuts


def choose_reading(
    number: SegmentedNumber, rows: np.ndarray, policy: AnswerPolicy, max_digits: int
) -> NumberReading:
    """Picks each group's reading and judges its digits.

    Args:
        number: the segmentation.
        rows: (len(number.candidates), 10) model probabilities, one row per candidate.
        policy: the served model's calibration and minimum confidence.
        max_digits: the most digits a number may have.

    Raises:
        ModelError: `rows` does not hold one row per candidate.
        TooManyDigitsError: the chosen readings hold more than `max_digits` digits.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or len(rows) != len(number.candidates):
        raise ModelError(f"the model returned {len(rows)} rows for {len(number.candidates)} candidates")
    digits: list[ReadDigit] = []
    is_doubtful = False
    for readings in number.groups:
        scored = sorted(
            ((_reading_score(rows[list(reading.pieces)], reading), reading) for reading in readings),
            key=lambda item: (-item[0], len(item[1].pieces)),  # ties: fewer digits
        )
        best_score, best = scored[0]
        best_text = _text(rows, best)
        is_doubtful |= any(
            best_score - score < DOUBTFUL_SCORE_MARGIN and _text(rows, reading) != best_text
            for score, reading in scored[1:]
        )
        digits += [ReadDigit(policy.judge(rows[piece]), number.candidates[piece]) for piece in best.pieces]
    if len(digits) > max_digits:
        raise TooManyDigitsError(f"{len(digits)} digits found; at most {max_digits} are read")
    return NumberReading(tuple(digits), is_doubtful)


def _text(rows: np.ndarray, reading: Reading) -> str:
    return "".join(str(int(rows[piece].argmax())) for piece in reading.pieces)
