"""The batching ceiling the benchmark reports: the model alone, timed per image, and the bound it sets.

The figures are measured by the benchmark, never asserted here; these tests pin what is measured
(`testkit.model_timing`), how the ceiling is computed from it, and what `python -m bench.model_batching`
(the script `bench.bench_predict` runs in a process of its own) writes and prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.model_timing import BATCH_ON_MAX_SIZE, NO_MODEL_MODE, batching_ceilings, measure
from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

SCRIPT_TIMEOUT_SECONDS = 300


def run_model_batching_script(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.model_batching", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_SECONDS,
    )


def test_the_model_alone_is_timed_per_batch_size_with_the_service_settings(models_dir: Path) -> None:
    report = measure(models_dir, [1, 4])

    assert report["model_version"] == "1"
    assert (report["tf_intra_op_threads"], report["tf_inter_op_threads"]) == (1, 1)
    assert [row["batch_size"] for row in report["rows"]] == [1, 4]
    for row in report["rows"]:
        assert row["calls"] >= 40
        assert row["wall_ms_per_image"] > 0 and row["cpu_ms_per_image"] > 0
        assert row["wall_ms_per_call"] == pytest.approx(
            row["wall_ms_per_image"] * row["batch_size"], rel=0.01
        )
    assert report["rows"][0]["cpu_saving_vs_first"] == 1.0


def test_the_benchmark_measures_the_model_alone_in_a_process_of_its_own(models_dir: Path, tmp_path) -> None:
    json_path = tmp_path / "model_batching.json"

    # The command line `bench.bench_predict` runs before loading the service.
    batch_sizes = ["--batch-sizes", "1", str(BATCH_ON_MAX_SIZE)]
    completed = run_model_batching_script(
        "--model-dir", str(models_dir), *batch_sizes, "--json-out", str(json_path)
    )

    assert completed.returncode == 0, completed.stderr
    report = json.loads(json_path.read_text())  # read back from JSON
    assert [row["batch_size"] for row in report["rows"]] == [1, BATCH_ON_MAX_SIZE]
    table_rows = completed.stdout.splitlines()[2:]
    assert [line.split()[0] for line in table_rows] == ["1", str(BATCH_ON_MAX_SIZE)]


def test_the_ceiling_is_every_core_spent_on_fixed_costs_and_full_model_batches(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    model_alone = {
        "rows": [{"batch_size": 1, "cpu_ms_per_image": 0.8}, {"batch_size": 32, "cpu_ms_per_image": 0.4}]
    }
    rows = [
        {"payload": "png28", "concurrency": 32, "mode": "on", "requests_per_second": 600.0},
        {"payload": "png28", "concurrency": 32, "mode": "off", "requests_per_second": 460.0},
        {
            "payload": "png28",
            "concurrency": 32,
            "mode": NO_MODEL_MODE,
            "server_cpu_ms_per_request": 1.5,
            "requests_per_second": 690.0,
        },
        {"payload": "png28", "concurrency": 1, "mode": "off", "requests_per_second": 300.0},
    ]

    ceilings = batching_ceilings(model_alone, rows)

    # 2 cores x 1000 ms / (1.5 ms fixed + 0.4 ms of model) = 1052.6 req/s at best, against 460 off.
    assert list(ceilings) == ["png28@c32"]
    assert ceilings["png28@c32"]["highest_on_requests_per_second"] == 1052.6
    assert ceilings["png28@c32"]["ratio_ceiling"] == 2.29
    # /predict cannot outrun /preprocess, a part of its work: 690 / 460.
    assert ceilings["png28@c32"]["ratio_ceiling_no_model"] == 1.5


def test_the_script_refuses_a_batch_size_below_one() -> None:
    completed = run_model_batching_script("--batch-sizes", "1", "0")

    assert completed.returncode != 0
    assert "--batch-sizes must all be at least 1" in completed.stderr
