"""Wrong `/read` numbers put down to a cause, per group of `bench.read_accuracy` (the tally of
`bench.read_error_budget`):

- count: the segmentation found more or fewer digits than were written (an error answer too);
- in the number: the count is right and some wrong digit is read right alone (its cut-out differs);
- alone too: the count is right and every wrong digit is misread alone as well (the model).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

CAUSES = ("count", "in the number", "alone too")
POOLED_GROUPS = ("separated", "touching")  # group names start with these and a "/"


@dataclass(frozen=True)
class NumberOutcome:
    """One number: what was read, and the truth digit by digit, alone and in the number."""

    group: str
    truth: str
    read: str  # "" when the service would answer an error
    right_alone: tuple[bool, ...]  # each written digit, read alone

    @property
    def is_right(self) -> bool:
        return self.read == self.truth

    @property
    def cause(self) -> str | None:
        """Why it is wrong (one of CAUSES); None when it is right."""
        if self.is_right:
            return None
        if len(self.read) != len(self.truth):
            return "count"
        wrong = [index for index, (a, b) in enumerate(zip(self.read, self.truth, strict=True)) if a != b]
        return "alone too" if not any(self.right_alone[index] for index in wrong) else "in the number"


def summarize(outcomes: list[NumberOutcome]) -> list[dict]:
    """One row per group (in the order first met), then pooled separated, touching and all; groups
    without numbers get no row."""
    names = list(dict.fromkeys(o.group for o in outcomes))
    pools = {
        **{name: [o for o in outcomes if o.group == name] for name in names},
        **{pooled: [o for o in outcomes if o.group.startswith(f"{pooled}/")] for pooled in POOLED_GROUPS},
        "all": outcomes,
    }
    rows = []
    for name, mine in pools.items():
        if not mine:
            continue
        causes = Counter(o.cause for o in mine if not o.is_right)
        digits_alone = [right for o in mine for right in o.right_alone]
        rows.append(
            {
                "group": name,
                "numbers": len(mine),
                "exact_percent": round(100 * np.mean([o.is_right for o in mine]), 2),
                "every_digit_right_alone_percent": round(
                    100 * np.mean([all(o.right_alone) for o in mine]), 2
                ),
                "digits_right_alone_percent": round(100 * np.mean(digits_alone), 2),
                "wrong": {cause: causes.get(cause, 0) for cause in CAUSES},
            }
        )
    return rows
