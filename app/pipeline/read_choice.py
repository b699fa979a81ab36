"""A segmented number and the model's rows for its candidates -> the digits read, and how sure.

The last stage of `/read`. Each ink group of the number has readings: its close parts grouped into
digits in every way, and each wide part also cut into touching digits (`segment`). The model has
read every piece of every reading in one batch; here each group takes the reading whose pieces the
model finds most probable (the sum of the log-probabilities of each piece's likeliest digit), less
a penalty per merge of two digit-sized parts. Then every chosen digit is judged by the served
model's `AnswerPolicy`, as a `/predict` answer is.

The number is unsure when one of its digits is, or when its segmentation is doubtful: a group read
through a cut in touching ink or a merge of parts, or a group that could have been cut but was read
as a digit much wider than the number's others. The model reads fragments and squeezed pairs with
confidence, so comparing the readings' scores tells little: on numbers written from training digits
(`bench.read_tuning`), flagging by score margins flagged most right numbers as well, while this rule
flags 4 of 5 wrong reads and about a quarter of the right separated ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from app.pipeline.postprocess import AnswerPolicy, Prediction
from app.pipeline.segment import DigitCandidate, Reading, SegmentedNumber
from digits.errors import ModelError, TooManyDigitsError

PROBABILITY_FLOOR = 1e-6  # a piece the model finds impossible still ranks its readings


class NumberUnsureReason(StrEnum):
    """Why a read number should go to a person: its cut first, then its digits."""

    DOUBTFUL_SEGMENTATION = "doubtful_segmentation"
    UNSURE_DIGIT = "unsure_digit"


@dataclass(frozen=True)
class ReadingRule:
    """How a group's reading is chosen and when the segmentation is doubtful (`bench.read_tuning`).

    Attributes:
        merge_penalty: log-probability a reading loses per merge of two digit-sized parts into one
            digit (digits seldom break into two parts of full height; the model reads two squeezed
            digits as one all too readily).
        cut_penalty: log-probability lost per cut through touching ink.
        max_whole_excess_width: a digit left whole though it could be cut, wider than the typical
            digit by more than this (in typical widths), makes the segmentation doubtful.
    """

    merge_penalty: float = 1.0
    cut_penalty: float = 0.0
    max_whole_excess_width: float = 0.5


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

    @property
    def reason(self) -> NumberUnsureReason | None:
        """Why the number is unsure; None when it is not."""
        if self.is_segmentation_doubtful:
            return NumberUnsureReason.DOUBTFUL_SEGMENTATION
        return NumberUnsureReason.UNSURE_DIGIT if self.unsure else None


def reading_score(rows: np.ndarray, reading: Reading, rule: ReadingRule) -> float:
    """The log-probability that every piece is the digit the model reads in it (pieces independent),
    less the rule's penalties: a reading with more pieces must earn each one."""
    likelihood = float(np.sum(np.log(np.maximum(rows[list(reading.pieces)].max(axis=1), PROBABILITY_FLOOR))))
    return likelihood - rule.merge_penalty * reading.merges - rule.cut_penalty * reading.cuts


def best_reading(readings: tuple[Reading, ...], rows: np.ndarray, rule: ReadingRule) -> tuple[Reading, bool]:
    """A group's readings -> the one chosen, and whether it makes the segmentation doubtful."""
    best = max(readings, key=lambda reading: (reading_score(rows, reading, rule), -len(reading.pieces)))
    could_be_cut = any(reading.cuts for reading in readings)
    is_doubtful = (
        best.cuts > 0 or best.merges > 0 or (could_be_cut and best.excess_width > rule.max_whole_excess_width)
    )
    return best, is_doubtful


def choose_reading(
    number: SegmentedNumber,
    rows: np.ndarray,
    policy: AnswerPolicy,
    max_digits: int,
    rule: ReadingRule = ReadingRule(),
) -> NumberReading:
    """Picks each group's reading and judges its digits.

    Args:
        number: the segmentation.
        rows: (len(number.candidates), 10) model probabilities, one row per candidate.
        policy: the served model's calibration and minimum confidence.
        max_digits: the most digits a number may have.
        rule: the choice's penalties and the doubt threshold.

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
        best, is_group_doubtful = best_reading(readings, rows, rule)
        is_doubtful |= is_group_doubtful
        digits += [ReadDigit(policy.judge(rows[piece]), number.candidates[piece]) for piece in best.pieces]
    if len(digits) > max_digits:
        raise TooManyDigitsError(f"{len(digits)} digits found; at most {max_digits} are read")
    return NumberReading(tuple(digits), is_doubtful)
