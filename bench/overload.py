"""Overload: offered load far above capacity -> fast 503 + Retry-After, bounded latency, then recovery.

Starts the service (uvicorn, one worker, 127.0.0.1, the shipped model) with a small queue
(DIGITSERVE_QUEUE_MAX_SIZE=32) and runs three phases back to back, uploads alternating MNIST PNGs
and photo-like JPEGs:

1. baseline: low load (concurrency 4), the latency of a service with headroom;
2. overload: concurrency 256, each connection sending its next request as soon as it is answered,
   so that the 503s themselves come back as new requests: offered load many times the capacity;
3. recovery: low load again, right after.

Targets (exit status 1 when one fails; the scenario and its targets are `testkit.overload`'s): during
the overload only 200 and 503 answers, every 503 with `Retry-After`, 503s fast (p99 under 250 ms),
accepted requests' p99 bounded (under 2 s, a fifth of the 10 s request deadline); in the recovery
phase every request answered 200, with a p99 within 3x of the baseline's (plus 50 ms), and nothing
left in the queue.

    python -m bench.overload [--model-dir models/digits] [--overload-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

from bench.machine import load_average, machine_description
from testkit.output_paths import output_file, output_folder
from testkit.overload import SMALL_QUEUE_ENVIRONMENT, PhaseReport, failed_targets, run_overload
from testkit.server import free_port, running_service
from testkit.shared_data import REPO_ROOT


def print_report(reports: list[PhaseReport]) -> None:
    """Prints one Markdown table row per phase, as recorded in bench/RESULTS.md."""
    print(
        "| phase | concurrency | s | offered req/s | served req/s | statuses | accepted p50/p99 ms "
        "| 503 p50/p99 ms | 503 without Retry-After | dropped | CPU cores service / client |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for report in reports:
        print(
            f"| {report.name} | {report.concurrency} | {report.seconds} | {report.offered_per_second} | "
            f"{report.served_per_second} | {report.status_counts} | {report.accepted_p50_ms} / "
            f"{report.accepted_p99_ms} | {report.refused_p50_ms} / {report.refused_p99_ms} | "
            f"{report.refusals_without_retry_after} | {report.transport_errors} | "
            f"{report.server_cores} / {report.client_cores} |"
        )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    parser.add_argument("--overload-concurrency", type=int, default=256)
    parser.add_argument("--low-seconds", type=float, default=10.0, help="baseline and recovery phases")
    parser.add_argument("--json-out", type=output_file, help="also write the figures as JSON here")
    parser.add_argument(
        "--log-dir", type=output_folder, default=Path("/tmp"), help="the service's log goes here"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    environment = {**SMALL_QUEUE_ENVIRONMENT, "DIGITSERVE_MODEL_DIR": str(args.model_dir.resolve())}
    load_before = load_average()
    with running_service(free_port(), environment, args.log_dir / "digitserve-overload.log") as server:
        reports = asyncio.run(
            run_overload(server, args.overload_concurrency, args.overload_seconds, args.low_seconds)
        )
        depth_after = server.queue_depth()
    print(f"{machine_description()}; load average before {load_before}, after {load_average()}")
    print(f"settings: {SMALL_QUEUE_ENVIRONMENT}")
    print_report(reports)
    failures = failed_targets(reports, depth_after)
    if args.json_out:
        document = {"phases": [asdict(report) for report in reports], "failures": failures}
        args.json_out.write_text(json.dumps(document, indent=2))
    if failures:
        print("TARGETS FAILED: " + "; ".join(failures))
        sys.exit(1)
    print("targets met: fast 503 + Retry-After under overload, bounded accepted p99, full recovery")


if __name__ == "__main__":
    main()
