"""This service beside the ones a user would deploy instead, in one table: the shared bench-peers harness,
run several times, and the median of its ratios.

`../shared/bench-peers/run_peers.sh` starts each service in turn on this machine (the tutorial FastAPI
deployment `naive`, BentoML 1.4 with adaptive batching `bentoml-1svc-slo1s`, and this service by its
production command `python -m app`), loads it with `hey` at each concurrency with a 28x28 PNG and a
300x300 photo JPEG, and writes one JSON line per load run. The machine's speed drifts, and the ratios
with it, so the harness runs `--runs` times (all services back to back each time) and the figure that
counts is the median ratio at concurrency 32.

Server CPU per request: the harness sums the CPU of the live processes of the server's tree, so the
decode workers this service replaces (every `DecodeBudget.tasks_per_worker` uploads) take their CPU
with them (its column can even go negative). `--cpu-requests N` (default 4096) measures it apart:
this service alone, the same images and `hey` at concurrency 32, counting the CPU of the workers that
ended too (their parent's `cutime`).

    python -m bench.peers [--runs 3] [--json-out peers.json]   # after ../shared/bench-peers/setup_peers.sh
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from testkit.http_load import build_multipart_body
from testkit.output_paths import output_file
from testkit.process_cpu import tree_cpu_seconds
from testkit.server import RunningServer, free_port, running_service
from testkit.shared_data import REPO_ROOT

PEERS_DIR = REPO_ROOT.parent / "shared" / "bench-peers"
OURS = "digitserve"
PEERS = ("naive", "bentoml-1svc-slo1s")
IMAGES = {"png28": "digit28.png", "jpeg300": "digit300.jpg"}
TARGET_CONCURRENCY = 32
# The targets at concurrency 32: at least these ratios of requests/s, at most this p99.
MIN_RATIOS = {"naive": 4.0, "bentoml-1svc-slo1s": 2.0}
MAX_P99_MS = {"png28": 100.0, "jpeg300": 150.0}
MAX_CPU_MS = {"png28": 1.0, "jpeg300": 2.0}
WARM_UP_REQUESTS = 512
CpuReading = TypeVar("CpuReading")


def run_harness(args: argparse.Namespace, output_dir: Path) -> list[dict]:
    """One run of run_peers.sh (every peer, then this service) -> its JSON lines."""
    start = f"cd '{REPO_ROOT}' && exec '{sys.executable}' -m app --host 127.0.0.1 --port \"$BENCH_PORT\""
    environment = {
        **os.environ,
        "BENCH_PYTHON": sys.executable,
        "BENCH_OUT": str(output_dir),
        "BENCH_CONCURRENCY": args.concurrency,
    }
    command = [str(args.peers_dir / "run_peers.sh"), "--only", ",".join(PEERS)]
    command += ["--extra", f"{OURS}|{start}|{args.port}|file|/predict"]
    if args.processes:
        several = (
            f"cd '{REPO_ROOT}' && exec '{sys.executable}' -m bench.service_processes "
            f'--processes {args.processes} --host 127.0.0.1 --port "$BENCH_PORT"'
        )
        command += [
            "--extra",
            f"{several_processes_name(args.processes)}|{several}|{args.port + 1}|file|/predict",
        ]
    before = set(output_dir.glob("results-*.jsonl"))
    subprocess.run(command, env=environment, check=True, stdout=subprocess.DEVNULL)
    [results] = set(output_dir.glob("results-*.jsonl")) - before
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def several_processes_name(processes: int) -> str:
    """The harness's name for this service run as `processes` processes (`bench.service_processes`)."""
    return f"{OURS}-{processes}-processes"


def ratios_of(rows: list[dict], processes: int = 0) -> dict:
    """One run's rows -> per image at TARGET_CONCURRENCY: our req/s, p99, errors and ratio to each peer;
    with `processes`, the several-process service's req/s, p99 and ratio to the one process."""
    by_key = {(row["server"], row["image"], row["concurrency"]): row for row in rows}
    figures = {}
    for image in IMAGES:
        ours = by_key[(OURS, image, TARGET_CONCURRENCY)]
        several = by_key.get((several_processes_name(processes), image, TARGET_CONCURRENCY))
        figures[image] = {
            "requests_per_second": ours["rps"],
            "p99_ms": ours["p99_ms"],
            "errors": ours["errors"],
            "harness_server_cpu_ms": ours["server_cpu_ms_per_req"],
            "c1_p50_ms": by_key.get((OURS, image, 1), {}).get("p50_ms"),
            "ratios": {
                peer: round(ours["rps"] / by_key[(peer, image, TARGET_CONCURRENCY)]["rps"], 2)
                for peer in PEERS
            },
            "peers_requests_per_second": {
                peer: by_key[(peer, image, TARGET_CONCURRENCY)]["rps"] for peer in PEERS
            },
        }
        if processes and not several:
            figures[image]["several_processes"] = None  # asked for, and the harness has no row of it
        elif several:
            figures[image]["several_processes"] = {
                "processes": processes,
                "requests_per_second": several["rps"],
                "p99_ms": several["p99_ms"],
                "errors": several["errors"],
                "versus_one_process": round(several["rps"] / ours["rps"], 2),
            }
    return figures


def hey_upload(url: str, image_path: Path, requests: int) -> None:
    """`hey` at TARGET_CONCURRENCY, `requests` multipart uploads of the image in field `file`."""
    boundary = "digitservebenchboundary"
    body = build_multipart_body(boundary, "file", image_path.name, image_path.read_bytes())
    body_path = Path(f"/tmp/digitserve-peers-body-{os.getpid()}.bin")
    body_path.write_bytes(body)
    try:
        command = ["hey", "-n", str(requests), "-c", str(TARGET_CONCURRENCY), "-m", "POST"]
        command += ["-T", f"multipart/form-data; boundary={boundary}", "-D", str(body_path), url]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    finally:
        body_path.unlink()


def measure_each_image(
    assets_dir: Path,
    requests: int,
    model_dir: Path,
    log_path: Path,
    read_cpu: Callable[[RunningServer], CpuReading],
) -> dict[str, tuple[CpuReading, CpuReading, float]]:
    """This service alone on the machine, with its access log as the harness runs it: after a warm-up,
    `requests` uploads of each image with `hey` at TARGET_CONCURRENCY.

    Returns:
        By image: `read_cpu(server)` before and after the load, and the seconds the load took.
    """
    environment = {"DIGITSERVE_MODEL_DIR": str(model_dir.resolve())}
    readings = {}
    with running_service(free_port(), environment, log_path, ["--access-log"]) as server:
        url = f"{server.base_url}/predict"
        for image, file_name in IMAGES.items():
            image_path = assets_dir / file_name
            hey_upload(url, image_path, WARM_UP_REQUESTS)
            before, started_seconds = read_cpu(server), time.monotonic()
            hey_upload(url, image_path, requests)
            readings[image] = (before, read_cpu(server), time.monotonic() - started_seconds)
            time.sleep(1)
    return readings


def measure_cpu(args: argparse.Namespace) -> dict[str, float]:
    """This service's CPU per request on each image (its ended workers counted), alone on the machine."""
    readings = measure_each_image(
        args.assets_dir,
        args.cpu_requests,
        REPO_ROOT / "models" / "digits",
        Path("/tmp/digitserve-peers-cpu.log"),
        lambda server: tree_cpu_seconds(server.pid),
    )
    return {
        image: round((after - before) * 1000 / args.cpu_requests, 2)
        for image, (before, after, _) in readings.items()
    }


def print_report(runs: list[dict], cpu_ms: dict[str, float] | None) -> bool:
    """Prints each run's ratios and the medians against the targets; returns whether all are met."""
    is_met = True
    for image in IMAGES:
        print(f"\n{image}, concurrency {TARGET_CONCURRENCY}:")
        print(
            f"{'run':>4} {'req/s':>8} {'p99 ms':>8} {'errors':>7} "
            + " ".join(f"{'x ' + p:>22}" for p in PEERS)
        )
        for index, run in enumerate(runs, start=1):
            figures = run[image]
            ratios = " ".join(f"{figures['ratios'][peer]:>22.2f}" for peer in PEERS)
            print(f"{index:>4} {figures['requests_per_second']:>8.1f} {figures['p99_ms']:>8.1f} "
                  f"{figures['errors']:>7} {ratios}")  # fmt: skip
        for peer in PEERS:
            median = statistics.median(run[image]["ratios"][peer] for run in runs)
            is_ok = median >= MIN_RATIOS[peer]
            is_met &= is_ok
            verdict = "met" if is_ok else "NOT met"
            print(f"  median x {peer}: {median:.2f} (target >= {MIN_RATIOS[peer]:g}) {verdict}")
        is_met &= print_several_processes(runs, image)
        p99 = statistics.median(run[image]["p99_ms"] for run in runs)
        errors = sum(run[image]["errors"] for run in runs)
        is_met &= p99 <= MAX_P99_MS[image] and errors == 0
        print(f"  median p99: {p99:.1f} ms (target <= {MAX_P99_MS[image]:g}); errors in all runs: {errors}")
        if cpu_ms:
            is_ok = cpu_ms[image] <= MAX_CPU_MS[image]
            is_met &= is_ok
            print(f"  server CPU: {cpu_ms[image]:.2f} ms/request (target <= {MAX_CPU_MS[image]:g}) "
                  f"{'met' if is_ok else 'NOT met'}")  # fmt: skip
    return is_met


def print_several_processes(runs: list[dict], image: str) -> bool:
    """Prints, for `--processes N`, the N-process service beside the one process in each run; returns
    False when a run has no figures of it (the launcher failed)."""
    if not any("several_processes" in run[image] for run in runs):
        return True
    present = []
    for index, run in enumerate(runs, start=1):
        figures = run[image].get("several_processes")
        if figures is None:
            print(f"  run {index}: several processes: missing (see the harness's log of the launcher)")
            continue
        present.append(figures)
        print(
            f"  run {index}: {figures['processes']} processes {figures['requests_per_second']:.1f} req/s, "
            f"p99 {figures['p99_ms']:.1f} ms, errors {figures['errors']}: "
            f"x one process {figures['versus_one_process']:.2f}"
        )
    if present:
        median = statistics.median(figures["versus_one_process"] for figures in present)
        print(f"  median x one process, {present[0]['processes']} processes: {median:.2f}")
    return len(present) == len(runs)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peers-dir", type=Path, default=PEERS_DIR)
    parser.add_argument(
        "--assets-dir", type=Path, default=Path(os.environ.get("BENCH_ASSETS", "/tmp/bench-assets"))
    )
    parser.add_argument("--concurrency", default="1 32", help='the harness\'s concurrencies (default "1 32")')
    parser.add_argument("--port", type=int, default=8041, help="this service's port during the harness")
    parser.add_argument("--cpu-requests", type=int, default=4096, help="0 skips the CPU measurement")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="also run this service as N processes behind one port (bench.service_processes) in each "
        "harness run, on --port + 1; 0: not",
    )
    parser.add_argument("--output-dir", type=Path, default=Path("/tmp/bench-results"))
    parser.add_argument("--json-out", type=output_file)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.processes == 1 or args.processes < 0:
        parser.error("--processes must be 0 (off) or at least 2")
    if not (args.peers_dir / "run_peers.sh").is_file():
        parser.error(f"no run_peers.sh in {args.peers_dir}: pass --peers-dir")
    return args


def main() -> None:
    args = parse_arguments()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for index in range(args.runs):
        print(f"harness run {index + 1} of {args.runs}...", flush=True)
        runs.append(ratios_of(run_harness(args, args.output_dir), args.processes))
    cpu_ms = measure_cpu(args) if args.cpu_requests else None
    is_met = print_report(runs, cpu_ms)
    if args.json_out:
        args.json_out.write_text(json.dumps({"runs": runs, "server_cpu_ms": cpu_ms}, indent=2))
    sys.exit(0 if is_met else 1)


if __name__ == "__main__":
    main()
