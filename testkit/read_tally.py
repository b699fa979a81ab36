"""`POST /read` answers (status, JSON body) to written numbers -> per group: numbers read exactly, digits
read, wrong reads flagged unsure, errors by code; the targets of `bench.read_accuracy` and whether
each is met.

One answer is either
- a read: 200 with "text" (a string of digits) and "unsure" (a bool) in a JSON object; or
- an error: any other status (counted by its "code", e.g. "422 no_digit_found"), a 200 without those
  fields, or no answer. An error is a wrong read that is not flagged unsure: the caller got no number
  and no warning about one.

Digits read: for a read as long as the truth, the digits equal at the same position; for one of
another length, the truth's digits in a longest common subsequence with the read, i.e. the most that
any alignment can match (a dropped or an extra digit costs that digit, not the rest of the number).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

ANSWERED = 200
ALL_GROUPS = "all"
MIN_NUMBERS_PER_SECOND = 150.0


@dataclass(frozen=True)
class ReadAnswer:
    """What one answer says: the text read (None: an error), whether flagged unsure, the error."""

    text: str | None
    is_unsure: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Target:
    """At least `min_percent` of the pooled group `group` for `figure` (a `GroupTally.to_row` key)."""

    group: str
    figure: str
    min_percent: float
    description: str


TARGETS = (
    Target("separated", "exact_percent", 97.0, "exact-string accuracy (separated, 3-7 digits)"),
    Target("touching", "exact_percent", 90.0, "exact-string accuracy (one touching pair, 3-7 digits)"),
    Target(ALL_GROUPS, "wrong_unsure_percent", 80.0, "wrong reads flagged unsure (all groups)"),
)


def parse_answer(status_code: int | None, body: bytes) -> ReadAnswer:
    """One answer -> `ReadAnswer`; `status_code` None: the request got no answer."""
    if status_code is None:
        return ReadAnswer(None, error="no answer")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return ReadAnswer(None, error=f"{status_code} without a JSON object")
    if status_code != ANSWERED:
        return ReadAnswer(None, error=f"{status_code} {payload.get('code', 'without a code')}")
    text, is_unsure = payload.get("text"), payload.get("unsure")
    if (
        not isinstance(text, str)
        or not text.isdecimal()
        or not text.isascii()
        or not isinstance(is_unsure, bool)
    ):
        return ReadAnswer(None, error=f"200 with text={text!r} unsure={is_unsure!r}")
    return ReadAnswer(text, is_unsure)


def matched_digit_count(truth: str, read: str) -> int:
    """How many digits of `truth` were read (see the module docstring for the alignment)."""
    if len(truth) == len(read):
        return sum(expected == found for expected, found in zip(truth, read, strict=True))
    previous_row = [0] * (len(read) + 1)  # longest common subsequence, one row of the table at a time
    for expected in truth:
        row = [0]
        for column, found in enumerate(read, start=1):
            row.append(
                previous_row[column - 1] + 1 if expected == found else max(row[-1], previous_row[column])
            )
        previous_row = row
    return previous_row[-1]


@dataclass
class GroupTally:
    """The answers to one group of numbers, or to several pooled."""

    name: str
    numbers: int = 0
    exact: int = 0
    digits: int = 0
    digits_read: int = 0
    wrong: int = 0
    wrong_unsure: int = 0
    right_unsure: int = 0
    errors: Counter = field(default_factory=Counter)  # by status and code

    def add(self, truth: str, answer: ReadAnswer) -> None:
        is_exact = answer.text == truth
        self.numbers += 1
        self.exact += is_exact
        self.digits += len(truth)
        self.digits_read += matched_digit_count(truth, answer.text or "")
        self.wrong += not is_exact
        self.wrong_unsure += answer.is_unsure and not is_exact
        self.right_unsure += answer.is_unsure and is_exact
        if answer.error is not None:
            self.errors[answer.error] += 1

    def merge(self, other: GroupTally) -> None:
        for name in ("numbers", "exact", "digits", "digits_read", "wrong", "wrong_unsure", "right_unsure"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.update(other.errors)

    def to_row(self) -> dict:
        """The figures as JSON types; a percentage of nothing (no wrong read to flag) is None."""
        return {
            "group": self.name,
            "numbers": self.numbers,
            "exact_percent": _percent(self.exact, self.numbers),
            "digit_percent": _percent(self.digits_read, self.digits),
            "wrong_unsure_percent": _percent(self.wrong_unsure, self.wrong),
            "right_unsure_percent": _percent(self.right_unsure, self.exact),
            "wrong": self.wrong,
            "errors": sum(self.errors.values()),
            "errors_by_code": dict(self.errors.most_common()),
        }


def _percent(count: int, total: int) -> float | None:
    return round(100.0 * count / total, 2) if total else None


def tally_groups(
    groups: Sequence[str], truths: Sequence[str], answers: Sequence[ReadAnswer]
) -> list[GroupTally]:
    """Each number's group ("<kind>/<source>"), text and answer -> one tally per group (in order of first
    appearance), one per kind pooled over its groups where it has several, and one of all numbers."""
    if not len(groups) == len(truths) == len(answers):
        raise ValueError(f"{len(groups)} groups, {len(truths)} truths and {len(answers)} answers")
    per_group: dict[str, GroupTally] = {}
    for group, truth, answer in zip(groups, truths, answers, strict=True):
        per_group.setdefault(group, GroupTally(group)).add(truth, answer)
    per_kind: dict[str, list[GroupTally]] = {}
    for tally in per_group.values():
        per_kind.setdefault(tally.name.split("/")[0], []).append(tally)
    pooled = [_pool(kind, tallies) for kind, tallies in per_kind.items() if len(tallies) > 1]
    return [*per_group.values(), *pooled, _pool(ALL_GROUPS, list(per_group.values()))]


def _pool(name: str, tallies: list[GroupTally]) -> GroupTally:
    pooled = GroupTally(name)
    for tally in tallies:
        pooled.merge(tally)
    return pooled


def check_targets(tallies: Sequence[GroupTally], numbers_per_second: float | None) -> list[dict]:
    """Each accuracy target whose group was measured, and the throughput one if it was: the figure, and
    whether it is met (a share of no wrong reads meets its target)."""
    rows = {tally.name: tally.to_row() for tally in tallies}
    results = [
        {
            "group": target.group,
            "target": f"{target.description} >= {target.min_percent:g} %",
            "value": rows[target.group][target.figure],
            "unit": "%",
            "is_met": rows[target.group][target.figure] is None
            or rows[target.group][target.figure] >= target.min_percent,
        }
        for target in TARGETS
        if target.group in rows
    ]
    if numbers_per_second is not None:
        results.append(
            {
                "group": "throughput",
                "target": f"one 5-digit photo, numbers/s >= {MIN_NUMBERS_PER_SECOND:g}",
                "value": round(numbers_per_second, 1),
                "unit": "numbers/s",
                "is_met": numbers_per_second >= MIN_NUMBERS_PER_SECOND,
            }
        )
    return results


TABLE_HEADER = (
    "| group | numbers | exact % | digits % | wrong flagged unsure % | right flagged unsure % | errors |\n"
    "|---|---:|---:|---:|---:|---:|---:|"
)


def format_table(tallies: Sequence[GroupTally]) -> str:
    """A Markdown table, one row per tally; a percentage of nothing shows as "-"."""
    lines = [TABLE_HEADER]
    for tally in tallies:
        row = tally.to_row()
        percents = " | ".join(
            "-" if row[key] is None else f"{row[key]:.2f}"
            for key in ("exact_percent", "digit_percent", "wrong_unsure_percent", "right_unsure_percent")
        )
        lines.append(f"| {tally.name} | {tally.numbers} | {percents} | {row['errors']} |")
    return "\n".join(lines)


def format_target(result: dict) -> str:
    """One target as a line: ✔ or ✘, what it asks, what was measured."""
    value = "-" if result["value"] is None else f"{result['value']:.2f} {result['unit']}"
    return f"{'✔' if result['is_met'] else '✘'} {result['group']}: {result['target']}: {value}"
