"""Counting the service's answers to held-out images, as `python -m bench.unsure_rates` reports them:
unsure answers by reason, digits claimed, 422 no_digit_found refusals apart, anything else an error;
and the targets: refusals count for non-digits, only several_digits or not_a_digit for two digits."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from testkit.shared_data import REPO_ROOT
from testkit.unsure_tally import check_targets, classify_answer, tally_answers

pytestmark = pytest.mark.unit


def prediction(is_unsure: bool, reason: str | None = None, digit: int = 3) -> tuple[int, bytes]:
    body = {
        "digit": digit,
        "confidence": 0.5,
        "probabilities": [0.1] * 10,
        "unsure": is_unsure,
        "reason": reason,
        "alternatives": [{"digit": digit, "probability": 0.5}],
    }
    return 200, json.dumps(body).encode()


def error(status_code: int, code: str) -> tuple[int, bytes]:
    return status_code, json.dumps({"detail": "...", "code": code}).encode()


def test_each_answer_is_unsure_sure_refused_or_an_error() -> None:
    assert classify_answer(*prediction(True, "several_digits")) == ("unsure", "several_digits")
    assert classify_answer(*prediction(False, digit=7)) == ("sure", "7")
    assert classify_answer(*error(422, "no_digit_found")) == ("refused", "no_digit_found")
    assert classify_answer(*error(503, "queue_full")) == ("error", "503 queue_full")
    assert classify_answer(*error(422, "image_unreadable")) == ("error", "422 image_unreadable")
    assert classify_answer(None, b"") == ("error", "no answer")
    assert classify_answer(500, b"Internal Server Error")[0] == "error"


@pytest.mark.parametrize(
    "body",
    [
        {"digit": 3, "confidence": 0.9},  # the service before unsure answers
        {"digit": 3, "unsure": True, "reason": None},
        {"digit": 3, "unsure": True, "reason": "bored"},
        {"digit": 3, "unsure": "no", "reason": None},
        {"digit": None, "unsure": False, "reason": None},
        [3],
    ],
    ids=[
        "no unsure field",
        "unsure without reason",
        "unknown reason",
        "unsure not a bool",
        "no digit",
        "a list",
    ],
)
def test_a_200_without_well_formed_unsure_fields_is_an_error(body) -> None:
    assert classify_answer(200, json.dumps(body).encode())[0] == "error"


def test_answers_are_counted_per_kind_then_per_set_then_in_total() -> None:
    kinds = ["spiral", "spiral", "stix_letter", "two_digits_cvl", "two_digits_cvl", "spiral"]
    answers = [
        prediction(True, "not_a_digit"),
        error(422, "no_digit_found"),
        prediction(False, digit=0),
        prediction(True, "several_digits"),
        prediction(True, "low_confidence"),
        error(503, "queue_full"),
    ]

    tallies = tally_answers(kinds, answers)

    assert [tally.name for tally in tallies] == [
        "spiral",
        "stix_letter",
        "two_digits_cvl",
        "non_digit",
        "two_digits",
        "total",
    ]
    spiral, _, two_digits_cvl, non_digit, _, total = (tally.to_row() for tally in tallies)
    assert spiral["images"] == 3 and spiral["unsure"] == 1 and spiral["refused_no_digit_found"] == 1
    assert spiral["errors"] == {"503 queue_full": 1}
    assert spiral["unsure_percent"] == 33.33
    assert two_digits_cvl["reasons"] == {"low_confidence": 1, "not_a_digit": 0, "several_digits": 1}
    assert non_digit["images"] == 4 and non_digit["sure"] == 1 and non_digit["digits_claimed"] == {"0": 1}
    assert (total["images"], total["unsure"], total["sure"], total["refused_no_digit_found"]) == (6, 3, 1, 1)


def test_a_set_with_no_images_gets_no_row_and_no_target() -> None:
    tallies = tally_answers(["word"], [prediction(True, "not_a_digit")])

    assert [tally.name for tally in tallies] == ["word", "non_digit", "total"]
    assert [target["set"] for target in check_targets(tallies)] == ["non_digit"]


def test_kinds_and_answers_must_pair_up() -> None:
    with pytest.raises(ValueError, match="2 kinds for 1 answers"):
        tally_answers(["word", "word"], [prediction(True, "not_a_digit")])


def test_refusals_count_towards_the_non_digit_target_only() -> None:
    kinds = ["word"] * 20 + ["two_digits_mnist"] * 20
    answers = (
        [prediction(True, "low_confidence")] * 18
        + [error(422, "no_digit_found")]
        + [prediction(False)]
        + [prediction(True, "several_digits")] * 18
        + [error(422, "no_digit_found")]
        + [prediction(True, "not_a_digit")]
    )

    targets = {target["set"]: target for target in check_targets(tally_answers(kinds, answers))}

    assert (targets["non_digit"]["percent"], targets["non_digit"]["is_met"]) == (95.0, True)
    assert (targets["two_digits"]["percent"], targets["two_digits"]["is_met"]) == (95.0, True)


def test_a_low_confidence_answer_to_two_digits_misses_the_target() -> None:
    kinds = ["two_digits_mnist"] * 100
    answers = [prediction(True, "several_digits")] * 94 + [prediction(True, "low_confidence")] * 6

    (target,) = check_targets(tally_answers(kinds, answers))

    assert (target["set"], target["percent"], target["is_met"]) == ("two_digits", 94.0, False)
    assert "several_digits, not_a_digit" in target["target"] and ">= 95 %" in target["target"]


def test_the_benchmark_script_explains_itself() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.unsure_rates", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert "--count" in completed.stdout and "--port" in completed.stdout
    assert "no_digit_found" in completed.stdout
