"""`python -m bench.read_validation` end to end: numbers written from the recipe's validation digits,
read by each model given, one table row each (the figures are the fixture model's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

SCRIPT_TIMEOUT_SECONDS = 300


def run_script(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.read_validation", *arguments],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_SECONDS,
    )  # fmt: skip


def test_each_model_reads_the_same_numbers_and_gets_a_row(models_dir: Path) -> None:
    result = run_script(str(models_dir), str(models_dir), "--numbers-per-group", "3")

    assert result.returncode == 0, result.stderr
    assert "6 numbers written from the validation digits (seed 21)" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith(f"| {models_dir} |")]
    assert len(rows) == 2 and rows[0] == rows[1]  # the same numbers, the same model: the same figures
    separated, touching, _ = (cell.strip() for cell in rows[0].strip("|").split("|")[1:])
    assert 0.0 <= float(separated) <= 100.0 and 0.0 <= float(touching) <= 100.0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["models/digits", "--numbers-per-group", "0"], "--numbers-per-group must be at least 1"),
        (["no/such/model"], "no model folder at no/such/model"),
    ],
)
def test_bad_arguments_are_argument_errors(arguments: list[str], message: str) -> None:
    result = run_script(*arguments)

    assert result.returncode == 2
    assert message in result.stderr
