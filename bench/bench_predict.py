"""Throughput and latency of `POST /predict`, with dynamic batching on versus off, in the same run.

Starts the real service twice (uvicorn, one worker each, 127.0.0.1): batching on (the default
settings: up to 32 images per model call, 5 ms wait) and batching off (DIGITSERVE_BATCH_MAX_SIZE=1).
For two payloads (a 28x28 MNIST PNG and a ~300x300 photo-like JPEG of the same digits) and for
concurrency 1, 32 and 64, it loads one server at a time while the other idles, alternating on and off
for several rounds so that a background load drifting during the run hits both alike. It reports
req/s (median over rounds), p50/p95/p99 latency (all rounds pooled), the service's CPU time per
request, and the on/off throughput ratios. The client runs on the same machine and competes with the
service for the CPU.

It also measures what bounds that ratio: the model alone at batch 1 and 32 (`bench.model_batching`),
and a request's fixed cost without the model (`POST /preprocess` on the "on" service: HTTP, upload,
decode, pre-processing, response), and prints the highest ratio these allow.

    python -m bench.bench_predict [--model-dir models/digits] [--requests 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from bench.machine import load_average, machine_description
from bench.model_batching import print_report as print_model_alone
from testkit.http_load import build_multipart_request, run_load
from testkit.model_timing import BATCH_ON_MAX_SIZE, NO_MODEL_MODE, batching_ceilings
from testkit.output_paths import output_file, output_folder
from testkit.payloads import build_payloads
from testkit.server import RunningServer, free_port, running_service
from testkit.shared_data import REPO_ROOT

WARM_UP_REQUESTS = 128
WARM_UP_CONCURRENCY = 8
MODES = {"on": {}, "off": {"DIGITSERVE_BATCH_MAX_SIZE": "1"}}


async def measure_level(server: RunningServer, requests: list[bytes], concurrency: int, args) -> dict:
    cpu_before_seconds = server.cpu_seconds()
    result = await run_load(server.port, requests, concurrency, args.time_cap_seconds)
    completed = len(result.latencies_seconds)
    return {
        "requests_per_second": result.requests_per_second,
        "latencies_seconds": result.latencies_seconds,
        "server_cpu_ms_per_request": (server.cpu_seconds() - cpu_before_seconds) * 1000 / max(completed, 1),
        "statuses": result.status_counts,
    }


async def measure(servers: dict[str, RunningServer], payloads: dict[str, list[bytes]], args) -> list[dict]:
    """Loads each server in turn: for every payload and concurrency, `args.rounds` rounds of on, off
    and, above concurrency 1, the no-model level (`POST /preprocess` on the "on" service)."""
    rows = []
    targets = {**{mode: (server, "/predict") for mode, server in servers.items()},
               NO_MODEL_MODE: (servers["on"], "/preprocess")}  # fmt: skip
    for payload_name, uploads in payloads.items():
        pools = {
            mode: [
                build_multipart_request(server.base_url.removeprefix("http://"), path, "file", "digit", d)
                for d in uploads
            ]
            for mode, (server, path) in targets.items()
        }
        for mode, (server, _) in targets.items():
            warm_up = [pools[mode][i % len(uploads)] for i in range(WARM_UP_REQUESTS)]
            await measure_level(server, warm_up, WARM_UP_CONCURRENCY, args)
        for concurrency in args.concurrency:
            modes = [mode for mode in targets if concurrency > 1 or mode != NO_MODEL_MODE]
            rounds: dict[str, list[dict]] = {mode: [] for mode in modes}
            for _ in range(args.rounds):
                for mode in modes:
                    requests = [pools[mode][i % len(uploads)] for i in range(args.requests)]
                    rounds[mode].append(await measure_level(targets[mode][0], requests, concurrency, args))
            rows += [
                summarize(payload_name, concurrency, mode, measured) for mode, measured in rounds.items()
            ]
    return rows


def median_of(rounds: list[dict], key: str) -> float:
    return round(statistics.median(measured[key] for measured in rounds), 2)


def summarize(payload: str, concurrency: int, mode: str, rounds: list[dict]) -> dict:
    latencies_ms = np.array([value for measured in rounds for value in measured["latencies_seconds"]]) * 1000
    statuses: dict[int, int] = {}
    for measured in rounds:
        for status, count in measured["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "payload": payload, "concurrency": concurrency, "mode": mode, "requests": len(latencies_ms),
        "requests_per_second": median_of(rounds, "requests_per_second"),
        "requests_per_second_rounds": [round(m["requests_per_second"], 1) for m in rounds],
        **{f"p{p}_ms": round(float(np.percentile(latencies_ms, p)), 2) for p in (50, 95, 99)},
        "server_cpu_ms_per_request": median_of(rounds, "server_cpu_ms_per_request"),
        "statuses": statuses,
    }  # fmt: skip


def measure_model_alone(model_dir: Path) -> dict:
    """Runs `bench.model_batching` in a process of its own (fresh TensorFlow thread pools)."""
    with tempfile.TemporaryDirectory() as scratch:
        json_path = Path(scratch) / "model_batching.json"
        command = [sys.executable, "-m", "bench.model_batching", "--model-dir", str(model_dir),
                   "--batch-sizes", "1", str(BATCH_ON_MAX_SIZE), "--json-out", str(json_path)]  # fmt: skip
        subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, text=True)
        return json.loads(json_path.read_text())


def print_report(rows: list[dict], args, load_before: str, model_alone: dict) -> dict:
    print(
        f"\nmachine: {machine_description()}; 1-min load average {load_before} before, {load_average()} after"
    )
    print(f"per level: {args.rounds} rounds x {args.requests} requests, on/off alternating; time cap "
          f"{args.time_cap_seconds:g} s per round\n")  # fmt: skip
    header = (
        f"{'payload':8} {'conc':>4} {'batching':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    )
    print(f"{header} {'cpu ms/req':>10}  rounds req/s / statuses")
    for row in rows:
        print(
            f"{row['payload']:8} {row['concurrency']:>4} {row['mode']:>8} {row['requests_per_second']:>8.1f} "
            f"{row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['server_cpu_ms_per_request']:>10.2f}  {row['requests_per_second_rounds']} "
            f"{row['statuses']}"
        )
    by_key = {(row["payload"], row["concurrency"], row["mode"]): row for row in rows}
    ratios = {
        f"{payload}@c{concurrency}": round(
            by_key[payload, concurrency, "on"]["requests_per_second"]
            / by_key[payload, concurrency, "off"]["requests_per_second"],
            2,
        )
        for payload, concurrency, mode in by_key
        if mode == "on"
    }
    print(
        "\nthroughput ratio batching on / off: "
        + ", ".join(f"{key} {value}x" for key, value in ratios.items())
    )
    print()
    print_model_alone(model_alone)
    ceilings = batching_ceilings(model_alone, rows)
    print(
        f"\nceiling of the on/off ratio: batching on serves at most {os.cpu_count()} cores / (the no-model "
        f"level's CPU per request + the model's CPU per image at batch {BATCH_ON_MAX_SIZE}) requests/s"
    )
    for key, ceiling in ceilings.items():
        print(
            f"  {key}: fixed {ceiling['fixed_cpu_ms_per_request']:.2f} ms + model "
            f"{model_alone['rows'][-1]['cpu_ms_per_image']:.2f} ms -> at most "
            f"{ceiling['highest_on_requests_per_second']:.0f} req/s against "
            f"{ceiling['measured_off_requests_per_second']:.0f} off: ratio <= {ceiling['ratio_ceiling']}x; "
            f"measured without the model: {ceiling['no_model_requests_per_second']:.0f} req/s, ratio <= "
            f"{ceiling['ratio_ceiling_no_model']}x"
        )
    return {"machine": machine_description(), "load_average_before_after": [load_before, load_average()],
            "arguments": vars(args) | {"model_dir": str(args.model_dir)},
            "rows": rows, "ratios": ratios, "model_alone": model_alone,
            "ratio_ceilings": ceilings}  # fmt: skip


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument("--requests", type=int, default=400, help="requests per round of each level")
    parser.add_argument("--rounds", type=int, default=3, help="on/off alternations per level")
    parser.add_argument("--time-cap-seconds", type=float, default=30.0, help="time cap of one round")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32, 64])
    parser.add_argument("--json-out", type=output_file, help="also write the figures as JSON here")
    parser.add_argument(
        "--log-dir", type=output_folder, default=Path("/tmp"), help="the services' logs go here"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    payloads = build_payloads()
    load_before = load_average()
    model_alone = measure_model_alone(args.model_dir.resolve())
    with ExitStack() as stack:
        servers = {}
        for mode, environment in MODES.items():
            environment = {**environment, "DIGITSERVE_MODEL_DIR": str(args.model_dir.resolve())}
            log_path = args.log_dir / f"digitserve-bench-{mode}.log"
            servers[mode] = stack.enter_context(running_service(free_port(), environment, log_path))
        print(f"services ready: {', '.join(f'batching {m} at {s.base_url}' for m, s in servers.items())}")
        rows = asyncio.run(measure(servers, payloads, args))
    report = print_report(rows, args, load_before, model_alone)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
