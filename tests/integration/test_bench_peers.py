"""`python -m bench.peers`: the shared harness run N times, the ratios at concurrency 32 and their
medians against the targets. The harness itself (BentoML, `hey`) is not installed for the tests: a
stand-in `run_peers.sh` writes the JSON lines the real one writes, with the rates it is given, so that
what is pinned here is the script's arithmetic, its report and its exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

# A stand-in harness: one run's rows, req/s per server and image from FAKE_RATES (JSON), the run
# number taken from a counter file so that each run can differ.
FAKE_HARNESS = """#!/usr/bin/env bash
set -euo pipefail
count_file="$BENCH_OUT/count"
run=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
echo "$run" > "$count_file"
"$BENCH_PYTHON" - "$run" <<'PY' > "$BENCH_OUT/results-run$run.jsonl"
import json, os, sys
rates = json.loads(os.environ["FAKE_RATES"])[int(sys.argv[1]) - 1]
for server, images in rates.items():
    for image, rps in images.items():
        for concurrency in (1, 32):
            print(json.dumps({"server": server, "image": image, "concurrency": concurrency, "rps": rps,
                              "p50_ms": 3.0, "p99_ms": 80.0, "errors": 0, "server_cpu_ms_per_req": 1.5}))
PY
"""


def run_peers(tmp_path: Path, rates: list[dict], *options: str) -> subprocess.CompletedProcess:
    peers_dir = tmp_path / "bench-peers"
    peers_dir.mkdir()
    harness = peers_dir / "run_peers.sh"
    harness.write_text(FAKE_HARNESS)
    harness.chmod(0o755)
    arguments = ["--runs", str(len(rates)), "--peers-dir", str(peers_dir), "--cpu-requests", "0"]
    arguments += ["--output-dir", str(tmp_path / "out"), "--json-out", str(tmp_path / "peers.json")]
    arguments += options
    return subprocess.run(
        [sys.executable, "-m", "bench.peers", *arguments],
        cwd=REPO_ROOT,
        env={**os.environ, "FAKE_RATES": json.dumps(rates)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def rates(ours_png: float, ours_jpeg: float) -> dict:
    return {
        "naive": {"png28": 100.0, "jpeg300": 100.0},
        "bentoml-1svc-slo1s": {"png28": 300.0, "jpeg300": 250.0},
        "digitserve": {"png28": ours_png, "jpeg300": ours_jpeg},
    }


def test_the_median_of_the_runs_ratios_is_reported_against_the_targets(tmp_path):
    result = run_peers(tmp_path, [rates(500, 450), rates(700, 550), rates(650, 400)])
    assert result.returncode == 1, result.stderr  # PNG 650/300 = 2.17x BentoML; JPEG 450/250 = 1.8x
    report = json.loads((tmp_path / "peers.json").read_text())
    assert [run["png28"]["ratios"]["bentoml-1svc-slo1s"] for run in report["runs"]] == [1.67, 2.33, 2.17]
    assert "median x bentoml-1svc-slo1s: 2.17 (target >= 2) met" in result.stdout
    assert "median x bentoml-1svc-slo1s: 1.80 (target >= 2) NOT met" in result.stdout
    assert "median x naive: 6.50 (target >= 4) met" in result.stdout


def test_every_target_met_exits_zero(tmp_path):
    result = run_peers(tmp_path, [rates(700, 600)] * 3)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NOT met" not in result.stdout


def test_several_processes_are_reported_beside_the_one_process_of_the_same_run(tmp_path):
    runs = [
        rates(500, 400) | {"digitserve-2-processes": {"png28": rps, "jpeg300": 300.0}}
        for rps in (400, 450, 600)
    ]
    result = run_peers(tmp_path, runs, "--processes", "2")
    report = json.loads((tmp_path / "peers.json").read_text())
    assert [run["png28"]["several_processes"]["versus_one_process"] for run in report["runs"]] == [
        0.8,
        0.9,
        1.2,
    ]
    assert "median x one process, 2 processes: 0.90" in result.stdout
    assert "median x one process, 2 processes: 0.75" in result.stdout  # JPEG: 300/400 in every run


def test_a_run_without_the_several_processes_is_reported_missing_and_fails(tmp_path):
    with_them = rates(700, 600) | {"digitserve-2-processes": {"png28": 770.0, "jpeg300": 660.0}}
    result = run_peers(tmp_path, [with_them, rates(700, 600), with_them], "--processes", "2")
    assert result.returncode == 1  # every other target is met
    assert "run 2: several processes: missing" in result.stdout
    assert "run 3: 2 processes 770.0 req/s" in result.stdout
    assert "median x one process, 2 processes: 1.10" in result.stdout


@pytest.mark.parametrize("processes", ["1", "-2"])
def test_processes_other_than_off_or_several_are_a_usage_error(tmp_path, processes):
    (tmp_path / "run_peers.sh").write_text("#!/bin/sh\n")
    result = subprocess.run(
        [sys.executable, "-m", "bench.peers", "--peers-dir", str(tmp_path), "--processes", processes],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--processes must be 0 (off) or at least 2" in result.stderr


def test_a_missing_harness_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.peers", "--peers-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "no run_peers.sh" in result.stderr
