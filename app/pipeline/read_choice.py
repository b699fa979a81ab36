"""A segmented number and the model's rows for its candidates -> the digits read, and how sure.

The last stage of `/read`. Each ink group of the number has readings: its close parts grouped into
digits in every way, and each wide part also cut into touching digits (`segment`). The model reads
the pieces in two looks (`NumberLooks`): first every reading that cuts no ink, then the cuts of the
groups the first look leaves doubtful. Each group takes the reading, among those read, whose pieces
the model finds most probable (the sum of the log-probabilities of each piece's likeliest digit),
less a penalty per merge of two digit-sized parts and per cut. Then every chosen digit is judged by
the served model's `AnswerPolicy`, as a `/predict` answer is.

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
from digits.contract import NUM_CLASSES, to_model_input
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
            digit (the model reads two squeezed digits as one all too readily; but a 0, 4 or 7
            written in two strokes reads as two confident digits as readily: on numbers from train
            digits a penalty of 1 read 0.4-1.3 points fewer separated numbers right than 0.25).
        cut_penalty: log-probability lost per cut through touching ink (the sides of one digit cut in
            two often read as confident 1s: a cut must make its pieces more probable than the whole).
        max_whole_excess_width: a digit left whole though it could be cut, wider than the typical
            digit by more than this (in typical widths), makes the segmentation doubtful.
        second_look_below: a group whose best reading without cuts merges parts, or has a piece whose
            likeliest digit the model gives less than this probability, has its cuts read too. On
            numbers written from train digits no cut was chosen for a group above it, and the cuts
            are most of a number's cut-outs: each costs the model as much as a digit of `/predict`.
    """

    merge_penalty: float = 0.25
    cut_penalty: float = 0.25
    max_whole_excess_width: float = 0.5
    second_look_below: float = 0.9


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


def is_read(rows: np.ndarray, reading: Reading) -> bool:
    """Whether the model has read every piece of the reading (an unread row is NaN)."""
    return not np.isnan(rows[list(reading.pieces)]).any()


def most_probable(readings: list[Reading], rows: np.ndarray, rule: ReadingRule) -> Reading:
    """The reading with the best score; on a tie, the one with fewer pieces."""
    return max(readings, key=lambda reading: (reading_score(rows, reading, rule), -len(reading.pieces)))


def best_reading(readings: tuple[Reading, ...], rows: np.ndarray, rule: ReadingRule) -> tuple[Reading, bool]:
    """A group's readings -> the one chosen among those read, and whether it makes the segmentation
    doubtful (a cut it could have made counts, read or not).

    Raises:
        ModelError: none of the group's readings has been read.
    """
    read = [reading for reading in readings if is_read(rows, reading)]
    if not read:
        raise ModelError("no reading of an ink group was read by the model")
    best = most_probable(read, rows, rule)
    could_be_cut = any(reading.cuts for reading in readings)
    is_doubtful = (
        best.cuts > 0 or best.merges > 0 or (could_be_cut and best.excess_width > rule.max_whole_excess_width)
    )
    return best, is_doubtful


def needs_second_look(readings: tuple[Reading, ...], rows: np.ndarray, rule: ReadingRule) -> bool:
    """Whether a group's cuts should be read: it has some, and its best reading without cuts (all
    read) merges parts or has a piece the model is not sure of."""
    uncut = [reading for reading in readings if not reading.cuts]
    if len(uncut) == len(readings):
        return False
    best = most_probable(uncut, rows, rule)
    return best.merges > 0 or float(rows[list(best.pieces)].max(axis=1).min()) < rule.second_look_below


class NumberLooks:
    """The model's rows for the candidates of several numbers, read in two looks.

    The first look reads the pieces of every reading that cuts no ink; the second, the pieces of the
    cuts of the groups that need it (`needs_second_look`). Rows not read stay NaN, and
    `choose_reading` passes over the readings that use them. Use:

        looks = NumberLooks(numbers)
        while inputs := looks.next_inputs():
            looks.take(model(inputs))
        rows = looks.rows  # one (candidates, 10) array per number
    """

    LOOKS = 2

    def __init__(self, numbers: list[SegmentedNumber], rule: ReadingRule = ReadingRule()) -> None:
        self.numbers = numbers
        self.rule = rule
        self.rows = [np.full((len(number.candidates), NUM_CLASSES), np.nan) for number in numbers]
        self.looks_taken = 0
        self._wanted: list[list[int]] = []

    def next_inputs(self) -> list[np.ndarray]:
        """The model inputs of the candidates to read next, numbers in order; [] when all is read."""
        if self.looks_taken >= self.LOOKS:
            return []
        self._wanted = [
            self._pieces_to_read(number, rows) for number, rows in zip(self.numbers, self.rows, strict=True)
        ]
        return [
            to_model_input(number.candidates[piece].canonical)
            for number, pieces in zip(self.numbers, self._wanted, strict=True)
            for piece in pieces
        ]

    @property
    def wanted(self) -> list[list[int]]:
        """Per number, the candidate indices of the inputs the last `next_inputs` returned."""
        return self._wanted

    def take(self, model_rows: np.ndarray | list[np.ndarray]) -> None:
        """The model's rows for the inputs `next_inputs` returned, in their order.

        Raises:
            ModelError: not one row of 10 per input, or a value not finite (a NaN would read as a row
                not read, and the reading would be passed over instead of failing).
        """
        model_rows = np.asarray(model_rows, dtype=np.float64)
        expected = sum(len(pieces) for pieces in self._wanted)
        if model_rows.shape != (expected, NUM_CLASSES):
            raise ModelError(f"the model returned rows of shape {model_rows.shape} for {expected} candidates")
        if not np.isfinite(model_rows).all():
            raise ModelError("the model returned a probability that is not a finite number")
        start = 0
        for rows, pieces in zip(self.rows, self._wanted, strict=True):
            rows[pieces] = model_rows[start : start + len(pieces)]
            start += len(pieces)
        self.looks_taken += 1

    def _pieces_to_read(self, number: SegmentedNumber, rows: np.ndarray) -> list[int]:
        if self.looks_taken == 0:
            readings = [reading for group in number.groups for reading in group if not reading.cuts]
        else:
            readings = [
                reading
                for group in number.groups
                if needs_second_look(group, rows, self.rule)
                for reading in group
                if reading.cuts
            ]
        pieces = {piece for reading in readings for piece in reading.pieces}
        return sorted(piece for piece in pieces if np.isnan(rows[piece, 0]))


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
        rows: (len(number.candidates), 10) model probabilities, one row per candidate; NaN for one
            the model has not read (`NumberLooks`), whose readings are passed over.
        policy: the served model's calibration and minimum confidence.
        max_digits: the most digits a number may have.
        rule: the choice's penalties and the doubt threshold.

    Raises:
        ModelError: `rows` does not hold one row per candidate, or a group has no reading read.
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
