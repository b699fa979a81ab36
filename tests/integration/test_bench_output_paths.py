"""Each benchmark refuses a path it cannot write when it parses its arguments: an argument error naming
the option, exit status 2, before minutes of measuring are lost (`testkit.output_paths`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

# Every benchmark with a path argument, and that argument (the folder ones take a folder's name).
BENCHMARK_OUTPUTS = [
    ("bench.accuracy_http", "--json-out"),
    ("bench.bench_predict", "--json-out"),
    ("bench.hostile", "--json-out"),
    ("bench.model_batching", "--json-out"),
    ("bench.overload", "--json-out"),
    ("bench.peers", "--json-out"),
    ("bench.photo_accuracy", "--json-out"),
    ("bench.read_accuracy", "--json-out"),
    ("bench.read_error_budget", "--json-out"),
    ("bench.shutdown", "--json-out"),
    ("bench.soak", "--json-out"),
    ("bench.unsure_rates", "--json-out"),
    ("bench.accuracy_http", "--log-dir"),
    ("bench.read_accuracy", "--samples-dir"),
    ("bench.unsure_rates", "--images-dir"),
]
PARSE_TIMEOUT_SECONDS = 120


@pytest.mark.parametrize(("module", "option"), BENCHMARK_OUTPUTS)
def test_each_benchmark_refuses_an_unwritable_output_before_it_starts(
    tmp_path: Path, module: str, option: str
) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    unwritable = tmp_path / "notes.txt" / "figures.json"

    result = subprocess.run(
        [sys.executable, "-m", module, option, str(unwritable)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=PARSE_TIMEOUT_SECONDS,
    )

    assert result.returncode == 2, result.stderr
    assert f"argument {option}" in result.stderr
    assert "is a file, not a folder" in result.stderr
    assert "Traceback" not in result.stderr
