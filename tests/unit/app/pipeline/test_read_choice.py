"""`read_choice`: a segmented number and the model's rows -> the digits read; which cut-outs the model
reads, and when (`NumberLooks`).

The numbers are built by hand, each candidate a blank cut-out with a known box, and the model is a
table of rows per candidate, so every score is known.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.pipeline.postprocess import AnswerPolicy
from app.pipeline.read_choice import NumberLooks, ReadingRule, choose_reading, needs_second_look
from app.pipeline.segment import DigitCandidate, Reading, SegmentedNumber
from digits.contract import NUM_CLASSES
from digits.errors import ModelError

pytestmark = pytest.mark.unit

POLICY = AnswerPolicy()


def row(digit: int, probability: float) -> np.ndarray:
    """A model row giving `digit` this probability and sharing the rest evenly."""
    values = np.full(NUM_CLASSES, (1.0 - probability) / (NUM_CLASSES - 1))
    values[digit] = probability
    return values


def candidates(count: int) -> tuple[DigitCandidate, ...]:
    return tuple(
        DigitCandidate(np.full((28, 28), index, np.uint8), (10 * index, 0, 8, 20)) for index in range(count)
    )


def touching_pair_number() -> SegmentedNumber:
    """One group: the whole part (candidate 0) or it cut in two (candidates 1 and 2)."""
    group = (Reading((0,)), Reading((1, 2), cuts=1))
    return SegmentedNumber(candidates(3), (group,), is_inverted=True)


def two_digit_number() -> SegmentedNumber:
    """Two groups: a plain digit (candidate 0), and a wide part (1) or its cut (2, 3)."""
    plain = (Reading((0,)),)
    wide = (Reading((1,)), Reading((2, 3), cuts=1))
    return SegmentedNumber(candidates(4), (plain, wide), is_inverted=True)


def read_by(model_rows: dict[int, np.ndarray], numbers: list[SegmentedNumber]) -> tuple[NumberLooks, list]:
    """Reads `numbers` in looks with a model that answers `model_rows[index]` for candidate `index`
    (the numbers' candidates share the table); returns the looks and each look's candidate indices."""
    looks, asked = NumberLooks(numbers), []
    while inputs := looks.next_inputs():
        # Each blank cut-out is filled with its own index, so the model can tell them apart.
        indices = [int(model_input.reshape(-1)[0] * 255 + 0.5) for model_input in inputs]
        asked.append(indices)
        looks.take(np.stack([model_rows[index] for index in indices]))
    return looks, asked


def test_the_first_look_reads_only_the_readings_that_cut_no_ink():
    looks, asked = read_by({0: row(4, 0.99), 1: row(4, 0.99), 2: row(1, 0.99)}, [touching_pair_number()])
    assert asked == [[0]]
    assert np.isnan(looks.rows[0][1:]).all()


def test_a_digit_read_with_confidence_has_its_cuts_left_unread_and_stays_whole():
    looks, _ = read_by({0: row(4, 0.99), 1: row(4, 0.99), 2: row(1, 0.99)}, [touching_pair_number()])
    reading = choose_reading(touching_pair_number(), looks.rows[0], POLICY, max_digits=20)
    assert reading.text == "4"


def test_a_doubtful_digit_has_its_cuts_read_and_a_better_cut_wins():
    model_rows = {0: row(4, 0.6), 1: row(4, 0.99), 2: row(1, 0.99)}
    looks, asked = read_by(model_rows, [touching_pair_number()])
    assert asked == [[0], [1, 2]]
    reading = choose_reading(touching_pair_number(), looks.rows[0], POLICY, max_digits=20)
    assert reading.text == "41" and reading.is_segmentation_doubtful


def test_only_the_doubtful_groups_of_several_numbers_get_a_second_look():
    sure = {0: row(7, 0.99), 1: row(0, 0.99), 2: row(1, 0.9), 3: row(1, 0.9)}
    looks, asked = read_by(sure, [two_digit_number(), touching_pair_number()])
    # Number 1's candidates are 0-3, number 2's 0-2: the table answers by index within each number.
    assert asked == [[0, 1, 0]]
    doubtful = {0: row(7, 0.99), 1: row(0, 0.5), 2: row(1, 0.99), 3: row(1, 0.99)}
    looks, asked = read_by(doubtful, [two_digit_number(), touching_pair_number()])
    assert asked == [[0, 1, 0], [2, 3]]
    assert choose_reading(two_digit_number(), looks.rows[0], POLICY, max_digits=20).text == "711"


def test_a_group_read_as_merged_parts_gets_a_second_look():
    group = (Reading((0,), merges=1), Reading((1, 2), cuts=1))
    rows = np.full((3, NUM_CLASSES), np.nan)
    rows[0] = row(5, 0.999)
    assert needs_second_look(group, rows, ReadingRule())


def test_a_cut_must_make_its_pieces_more_probable_than_the_whole():
    """The sides of one digit cut in two often read as confident 1s: a cut pays `cut_penalty`."""
    rows = np.stack([row(0, 0.9), row(1, 0.98), row(1, 0.98)])
    assert choose_reading(touching_pair_number(), rows, POLICY, max_digits=20).text == "0"
    no_penalty = ReadingRule(cut_penalty=0.0)
    assert choose_reading(touching_pair_number(), rows, POLICY, max_digits=20, rule=no_penalty).text == "11"


def test_a_group_without_any_reading_read_is_a_model_error():
    rows = np.full((3, NUM_CLASSES), np.nan)
    with pytest.raises(ModelError, match="no reading"):
        choose_reading(touching_pair_number(), rows, POLICY, max_digits=20)


def test_rows_not_one_per_input_are_a_model_error():
    looks = NumberLooks([touching_pair_number()])
    looks.next_inputs()
    with pytest.raises(ModelError, match=r"shape \(2, 10\) for 1 candidates"):
        looks.take(np.stack([row(4, 0.9), row(4, 0.9)]))


def test_a_row_that_is_not_finite_is_a_model_error_not_a_row_unread():
    looks = NumberLooks([touching_pair_number()])
    looks.next_inputs()
    with pytest.raises(ModelError, match="not a finite number"):
        looks.take(np.full((1, NUM_CLASSES), np.nan))


def test_there_are_at_most_two_looks():
    looks, asked = read_by({0: row(4, 0.5), 1: row(4, 0.5), 2: row(1, 0.5)}, [touching_pair_number()])
    assert len(asked) == 2 and looks.looks_taken == 2
    assert looks.next_inputs() == []


def test_a_digit_written_in_two_strokes_is_read_whole_when_that_is_about_as_probable():
    # Two full-height parts: one confident digit merged (a 0 in two strokes), or two fair digits.
    group = (Reading((0,), merges=1), Reading((1, 2)))
    number = SegmentedNumber(candidates(3), (group,), is_inverted=True)
    rows = np.stack([row(0, 0.99), row(6, 0.9), row(6, 0.85)])

    assert choose_reading(number, rows, POLICY, max_digits=20).text == "0"
    # A merge that costs a whole unit of log-probability would read the two strokes as two digits.
    assert (
        choose_reading(number, rows, POLICY, max_digits=20, rule=ReadingRule(merge_penalty=1.0)).text == "66"
    )


def test_two_digits_written_close_stay_two_when_the_merge_is_no_more_probable():
    group = (Reading((0,), merges=1), Reading((1, 2)))
    number = SegmentedNumber(candidates(3), (group,), is_inverted=True)
    rows = np.stack([row(4, 0.95), row(1, 0.99), row(7, 0.99)])

    assert choose_reading(number, rows, POLICY, max_digits=20).text == "17"
