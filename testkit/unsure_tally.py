"""`POST /predict` answers to held-out images (status, JSON body) -> counts per kind: unsure answers by
reason, digits claimed, refusals, errors; and whether each set meets its target.

One image's answer is one of:
- unsure: 200 with `"unsure": true` and a reason of UNSURE_REASONS;
- sure: 200 with `"unsure": false`, a digit claimed;
- refused: 422 with code "no_digit_found": no digit seen at all. Not an unsure answer, but no wrong
  digit either: it counts towards the non-digit target, not towards the two-digit one (two digits
  are plainly there);
- error: anything else (another status or code, a 200 without the unsure fields, no answer at all).
  A benchmark run with errors is not a measurement.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from testkit.unsure_sets import NON_DIGIT_SET, TWO_DIGIT_SET, set_of_kind

UNSURE_REASONS = ("low_confidence", "not_a_digit", "several_digits")
NO_DIGIT_CODE = "no_digit_found"
ANSWERED, REFUSED_STATUS = 200, 422


@dataclass(frozen=True)
class Target:
    """A set's target: at least `min_percent` of its images answered in an accepted way."""

    set_name: str
    min_percent: float
    accepted_reasons: tuple[str, ...]
    is_refusal_accepted: bool

    def describe(self) -> str:
        refusal = " or refused (422 no_digit_found)" if self.is_refusal_accepted else ""
        return f"unsure ({', '.join(self.accepted_reasons)}){refusal} >= {self.min_percent:g} %"


TARGETS = (
    Target(NON_DIGIT_SET, 95.0, UNSURE_REASONS, is_refusal_accepted=True),
    Target(TWO_DIGIT_SET, 95.0, ("several_digits", "not_a_digit"), is_refusal_accepted=False),
)


def classify_answer(status_code: int | None, body: bytes) -> tuple[str, str]:
    """One answer -> (outcome, detail): ("unsure", reason), ("sure", digit), ("refused", code) or
    ("error", what was wrong). `status_code` None: the request got no answer."""
    if status_code is None:
        return "error", "no answer"
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return "error", f"{status_code} without a JSON object"
    if status_code == REFUSED_STATUS and payload.get("code") == NO_DIGIT_CODE:
        return "refused", NO_DIGIT_CODE
    if status_code != ANSWERED:
        return "error", f"{status_code} {payload.get('code', 'without a code')}"
    is_unsure, reason, digit = payload.get("unsure"), payload.get("reason"), payload.get("digit")
    if is_unsure is True and reason in UNSURE_REASONS:
        return "unsure", reason
    if is_unsure is False and isinstance(digit, int) and 0 <= digit <= 9:
        return "sure", str(digit)
    return "error", f"200 with unsure={is_unsure!r} reason={reason!r} digit={digit!r}"


@dataclass
class Tally:
    """The answers to one kind, one set, or all images."""

    name: str
    images: int = 0
    reasons: Counter = field(default_factory=Counter)  # unsure answers by reason
    digits_claimed: Counter = field(default_factory=Counter)  # sure answers by digit
    refused: int = 0
    errors: Counter = field(default_factory=Counter)  # by what was wrong

    @property
    def unsure(self) -> int:
        return sum(self.reasons.values())

    @property
    def sure(self) -> int:
        return sum(self.digits_claimed.values())

    def add(self, outcome: str, detail: str) -> None:
        self.images += 1
        if outcome == "unsure":
            self.reasons[detail] += 1
        elif outcome == "sure":
            self.digits_claimed[detail] += 1
        elif outcome == "refused":
            self.refused += 1
        else:
            self.errors[detail] += 1

    def percent(self, count: int) -> float:
        return round(100.0 * count / self.images, 2) if self.images else 0.0

    def to_row(self) -> dict:
        """The figures as plain JSON types, percentages of this tally's images."""
        return {
            "name": self.name,
            "images": self.images,
            "unsure": self.unsure,
            "unsure_percent": self.percent(self.unsure),
            "reasons": {reason: self.reasons[reason] for reason in UNSURE_REASONS},
            "sure": self.sure,
            "digits_claimed": dict(sorted(self.digits_claimed.items())),
            "refused_no_digit_found": self.refused,
            "errors": dict(self.errors),
        }


def merge_tallies(name: str, tallies: Iterable[Tally]) -> Tally:
    """One tally holding all the answers of `tallies`."""
    merged = Tally(name)
    for tally in tallies:
        merged.images += tally.images
        merged.reasons.update(tally.reasons)
        merged.digits_claimed.update(tally.digits_claimed)
        merged.refused += tally.refused
        merged.errors.update(tally.errors)
    return merged


def tally_answers(kinds: Sequence[str], answers: Sequence[tuple[int | None, bytes]]) -> list[Tally]:
    """Each image's kind and answer -> one tally per kind (in order of first appearance), one per set
    present ("non_digit", "two_digits") and one of all images ("total"), in that order."""
    if len(kinds) != len(answers):
        raise ValueError(f"{len(kinds)} kinds for {len(answers)} answers")
    per_kind: dict[str, Tally] = {}
    for kind, (status_code, body) in zip(kinds, answers, strict=True):
        per_kind.setdefault(kind, Tally(kind)).add(*classify_answer(status_code, body))
    per_set = [
        merge_tallies(set_name, [tally for tally in per_kind.values() if set_of_kind(tally.name) == set_name])
        for set_name in (NON_DIGIT_SET, TWO_DIGIT_SET)
    ]
    sets_present = [tally for tally in per_set if tally.images]
    return [*per_kind.values(), *sets_present, merge_tallies("total", per_kind.values())]


def check_targets(tallies: Sequence[Tally]) -> list[dict]:
    """Each target whose set has a tally: the percentage it counts, and whether it is met."""
    by_name = {tally.name: tally for tally in tallies}
    results = []
    for target in TARGETS:
        tally = by_name.get(target.set_name)
        if tally is None or not tally.images:
            continue
        accepted = sum(tally.reasons[reason] for reason in target.accepted_reasons)
        accepted += tally.refused if target.is_refusal_accepted else 0
        results.append(
            {
                "set": target.set_name,
                "target": target.describe(),
                "percent": tally.percent(accepted),
                "is_met": 100.0 * accepted >= target.min_percent * tally.images,
            }
        )
    return results
