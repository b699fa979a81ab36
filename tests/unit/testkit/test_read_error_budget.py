"""How `bench.read_error_budget` puts a wrong number down to a cause (`testkit.read_error_budget`), and
pools its figures."""

from __future__ import annotations

import pytest

from testkit.read_error_budget import NumberOutcome, summarize

pytestmark = pytest.mark.unit


def outcome(
    truth: str, read: str, right_alone: tuple[bool, ...], group: str = "separated/cvl"
) -> NumberOutcome:
    return NumberOutcome(group, truth, read, right_alone)


def test_a_right_number_has_no_cause() -> None:
    assert outcome("4021", "4021", (True, True, True, True)).cause is None


def test_a_number_read_with_a_digit_too_few_or_too_many_is_the_segmentations() -> None:
    assert outcome("4021", "421", (True,) * 4).cause == "count"
    assert outcome("4021", "40211", (True,) * 4).cause == "count"
    assert outcome("4021", "", (True,) * 4).cause == "count"  # the service would answer an error


def test_a_digit_misread_only_in_the_number_is_the_cut_outs() -> None:
    assert outcome("4021", "4071", (True, True, True, True)).cause == "in the number"


def test_digits_misread_alone_as_well_are_the_models() -> None:
    assert outcome("4021", "4071", (True, True, False, True)).cause == "alone too"


def test_one_wrong_digit_right_alone_is_enough_to_blame_the_number() -> None:
    # Two wrong digits: one the model misreads alone anyway, one only in the number.
    assert outcome("4021", "9071", (False, True, True, True)).cause == "in the number"


def test_the_summary_counts_each_group_and_pools_separated_touching_and_all() -> None:
    outcomes = [
        outcome("12", "12", (True, True), "separated/mnist"),
        outcome("12", "1", (True, True), "separated/mnist"),
        outcome("34", "39", (True, False), "touching/usps"),
    ]

    rows = {row["group"]: row for row in summarize(outcomes)}

    assert rows["separated/mnist"]["exact_percent"] == 50.0
    assert rows["separated/mnist"]["wrong"] == {"count": 1, "in the number": 0, "alone too": 0}
    assert rows["touching/usps"]["every_digit_right_alone_percent"] == 0.0
    assert rows["touching/usps"]["digits_right_alone_percent"] == 50.0
    assert rows["all"]["numbers"] == 3
    assert rows["all"]["wrong"] == {"count": 1, "in the number": 0, "alone too": 1}
    assert "separated/cvl" not in rows  # no numbers, no row
