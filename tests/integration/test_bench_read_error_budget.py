"""`python -m bench.read_error_budget` end to end, on a number per group: the table and the JSON.

The figures are the benchmark's (the fixture model is trained one epoch); this pins what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

SCRIPT_TIMEOUT_SECONDS = 300
GROUP_ROWS = 7 + 3  # every group of bench.read_accuracy, then separated, touching and all


def test_the_budget_prints_a_row_per_group_and_writes_them_as_json(tmp_path: Path, models_dir: Path) -> None:
    json_path = tmp_path / "figures" / "budget.json"

    result = subprocess.run(
        [sys.executable, "-m", "bench.read_error_budget", "--model-dir", str(models_dir),
         "--numbers-per-group", "2", "--json-out", str(json_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_SECONDS,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert table[0].startswith("| group | numbers | /read exact %")
    rows = json.loads(json_path.read_text())
    assert [row["group"] for row in rows][-3:] == ["separated", "touching", "all"]
    assert len(rows) == len(table) - 1 == GROUP_ROWS
    assert rows[-1]["numbers"] == 14
    wrong = rows[-1]["wrong"]
    assert sum(wrong.values()) == round(14 * (100 - rows[-1]["exact_percent"]) / 100)


def test_a_count_below_one_is_an_argument_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.read_error_budget", "--numbers-per-group", "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_SECONDS,
    )  # fmt: skip

    assert result.returncode == 2
    assert "--numbers-per-group must be at least 1" in result.stderr
