"""`python -m bench.read_tuning` end to end, on two numbers of each kind written from train digits.

The figures are the fixture model's; this pins what each grid prints, and that a second look never
reads more cut-outs than reading every cut does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

SCRIPT_TIMEOUT_SECONDS = 300
LOOK_THRESHOLDS = 5  # bench.read_tuning.sweep_looks's rows


def run_tuning(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.read_tuning", *arguments],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_SECONDS,
    )  # fmt: skip


def table_rows(stdout: str) -> list[list[str]]:
    lines = [line for line in stdout.splitlines() if line.startswith("| ") and "---" not in line]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_the_looks_grid_reads_fewer_cut_outs_the_lower_its_threshold(models_dir: Path) -> None:
    result = run_tuning("--grid", "looks", "--model-dir", str(models_dir), "--numbers-per-group", "2")

    assert result.returncode == 0, result.stderr
    header, *rows = table_rows(result.stdout)
    assert header[0] == "second look below" and header[-1] == "cut-outs read separated/touching"
    assert len(rows) == LOOK_THRESHOLDS
    cut_outs_read = [sum(float(part) for part in row[-1].split("/")) for row in rows]
    assert cut_outs_read == sorted(cut_outs_read, reverse=True), cut_outs_read


def test_a_count_below_one_is_an_argument_error() -> None:
    result = run_tuning("--numbers-per-group", "0")

    assert result.returncode == 2
    assert "--numbers-per-group must be at least 1" in result.stderr
