"""Scoring `POST /read` answers as `python -m bench.read_accuracy` reports them: a number is read exactly or
not; digits are matched by position, or by the best alignment when the lengths differ; an error is a
wrong read nobody was warned about; groups pool by kind; each target says ✔ or ✘."""

from __future__ import annotations

import json

import pytest

from testkit.read_tally import (
    ReadAnswer,
    check_targets,
    format_table,
    format_target,
    matched_digit_count,
    parse_answer,
    tally_groups,
)

pytestmark = pytest.mark.unit


def read(text: str, is_unsure: bool = False) -> tuple[int, bytes]:
    digits = [{"digit": int(character), "confidence": 0.9, "unsure": is_unsure} for character in text]
    body = {"text": text, "digits": digits, "unsure": is_unsure, "model_version": "7"}
    return 200, json.dumps(body).encode()


def error(status_code: int, code: str) -> tuple[int, bytes]:
    return status_code, json.dumps({"detail": "...", "code": code}).encode()


def test_an_answer_is_a_read_or_an_error_with_its_status_and_code() -> None:
    assert parse_answer(*read("04021")) == ReadAnswer("04021", is_unsure=False)
    assert parse_answer(*read("7", is_unsure=True)) == ReadAnswer("7", is_unsure=True)
    assert parse_answer(*error(422, "too_many_digits")) == ReadAnswer(None, error="422 too_many_digits")
    assert parse_answer(None, b"") == ReadAnswer(None, error="no answer")
    assert parse_answer(500, b"Internal Server Error").error == "500 without a JSON object"


@pytest.mark.parametrize(
    "body",
    [
        {"text": 42, "unsure": False},
        {"text": "4a", "unsure": False},
        {"text": "42"},
        {"text": "", "unsure": False},
    ],
    ids=["text not a string", "not digits", "no unsure flag", "empty text"],
)
def test_a_200_without_a_text_of_digits_and_an_unsure_flag_is_an_error(body: dict) -> None:
    answer = parse_answer(200, json.dumps(body).encode())

    assert answer.text is None and answer.error.startswith("200 with")


@pytest.mark.parametrize(
    ("truth", "answered", "matched"),
    [
        ("04021", "04021", 5),
        ("04021", "04071", 4),
        ("04021", "40210", 0),  # same length: by position, a shifted read matches nothing
        ("04021", "0421", 4),  # a digit dropped costs that digit only
        ("04021", "040721", 5),  # an extra digit costs nothing of the truth
        ("04021", "", 0),
        ("111", "11111", 3),
        ("123", "321", 1),
    ],
)
def test_digits_read_are_matched_by_position_or_else_by_the_best_alignment(truth, answered, matched) -> None:
    assert matched_digit_count(truth, answered) == matched


def test_tallies_count_exact_reads_digits_unsure_flags_and_errors_per_group() -> None:
    groups = ["separated/mnist", "separated/mnist", "separated/cvl", "separated/cvl", "touching/cvl"]
    truths = ["123", "4567", "89", "012", "3456"]
    answers = [
        ReadAnswer("123"),
        ReadAnswer("4561", is_unsure=True),
        ReadAnswer("89", is_unsure=True),
        ReadAnswer(None, error="422 no_digit_found"),
        ReadAnswer("346"),
    ]

    tallies = tally_groups(groups, truths, answers)

    rows = {tally.name: tally.to_row() for tally in tallies}
    assert list(rows) == ["separated/mnist", "separated/cvl", "touching/cvl", "separated", "all"]
    assert rows["separated/mnist"]["exact_percent"] == 50.0
    assert rows["separated/mnist"]["digit_percent"] == round(100 * 6 / 7, 2)
    assert rows["separated/cvl"]["wrong_unsure_percent"] == 0.0  # the error warned nobody
    assert rows["separated/cvl"]["right_unsure_percent"] == 100.0
    assert rows["separated/cvl"]["errors_by_code"] == {"422 no_digit_found": 1}
    assert rows["touching/cvl"]["wrong_unsure_percent"] == 0.0
    assert rows["separated"]["numbers"] == 4 and rows["separated"]["exact_percent"] == 50.0
    assert rows["all"]["numbers"] == 5 and rows["all"]["wrong"] == 3
    assert rows["all"]["wrong_unsure_percent"] == round(100 / 3, 2)


def test_a_group_without_wrong_reads_has_no_unsure_share_and_meets_that_target() -> None:
    tallies = tally_groups(["separated/usps"], ["42"], [ReadAnswer("42")])

    results = check_targets(tallies, numbers_per_second=None)

    assert tallies[-1].to_row()["wrong_unsure_percent"] is None
    assert [result["group"] for result in results] == ["all"]
    assert results[0]["is_met"]


def test_targets_are_met_or_not_against_their_thresholds() -> None:
    truths = ["12345"] * 100
    groups = ["separated/mnist"] * 50 + ["separated/usps"] * 50
    answers = [ReadAnswer("12345")] * 97 + [ReadAnswer("1234", is_unsure=True)] * 2 + [ReadAnswer("12349")]

    results = {
        result["group"]: result for result in check_targets(tally_groups(groups, truths, answers), 149.9)
    }

    assert results["separated"]["value"] == 97.0 and results["separated"]["is_met"]
    assert results["all"]["value"] == round(200 / 3, 2) and not results["all"]["is_met"]
    assert not results["throughput"]["is_met"]
    assert "touching" not in results


def test_the_table_has_one_row_per_tally_and_a_dash_for_a_share_of_nothing() -> None:
    tallies = tally_groups(
        ["touching/cvl", "touching/cvl"], ["12", "34"], [ReadAnswer("12"), ReadAnswer("34")]
    )

    lines = format_table(tallies).splitlines()

    assert lines[0].startswith("| group | numbers | exact % |")
    assert lines[2:] == [
        "| touching/cvl | 2 | 100.00 | 100.00 | - | 0.00 | 0 |",
        "| all | 2 | 100.00 | 100.00 | - | 0.00 | 0 |",
    ]


def test_a_target_line_starts_with_a_check_mark_or_a_cross() -> None:
    met = {"group": "touching", "target": "exact >= 90 %", "value": 91.5, "unit": "%", "is_met": True}
    failed = {**met, "value": 80.0, "is_met": False}

    assert format_target(met) == "✔ touching: exact >= 90 %: 91.50 %"
    assert format_target(failed) == "✘ touching: exact >= 90 %: 80.00 %"
