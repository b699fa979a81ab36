"""Soak: `POST /predict` at concurrency 64 for 5 minutes, mixed valid images -> errors, p99 over time, RSS.

Starts the service (uvicorn, one worker, 127.0.0.1, the shipped model, default settings), warms it up
at the same concurrency, reads its resident memory (RSS, /proc/PID/status), then loads it in
consecutive windows of 30 s. The uploads alternate 28x28 MNIST PNGs and ~300x300 photo-like JPEGs
of the first 64 MNIST test digits. Each window reports requests served, statuses, p50/p99 latency
and RSS at its end.

Targets (exit status 1 when one fails): no error other than 503 (no 4xx, no 500, no dropped
connection), and RSS at the end within 10 % of RSS after the warm-up.

    python -m bench.soak [--model-dir models/digits] [--duration-seconds 300] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.machine import load_average, machine_description
from testkit.http_load import run_load
from testkit.output_paths import output_file, output_folder
from testkit.payloads import mixed_predict_requests
from testkit.server import RunningServer, free_port, running_service
from testkit.shared_data import REPO_ROOT

MEBIBYTE_BYTES = 1024 * 1024
RSS_GROWTH_LIMIT_FRACTION = 0.10
ACCEPTED_STATUSES = (200, 503)


@dataclass
class SoakWindow:
    """One window of the soak."""

    started_at_seconds: float
    requests: int
    status_counts: dict[int, int]
    transport_errors: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    rss_mebibytes: float


@dataclass
class SoakReport:
    """The whole soak: its windows, memory and totals."""

    concurrency: int
    rss_after_warm_up_mebibytes: float = 0.0
    windows: list[SoakWindow] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(window.requests for window in self.windows)

    @property
    def errors(self) -> int:
        """Answers other than 200 and 503, plus dropped connections."""
        unexpected = sum(
            count
            for window in self.windows
            for status, count in window.status_counts.items()
            if status not in ACCEPTED_STATUSES
        )
        return unexpected + sum(window.transport_errors for window in self.windows)

    @property
    def refusals(self) -> int:
        """503 answers (queue full): shed load, not errors."""
        return sum(window.status_counts.get(503, 0) for window in self.windows)

    @property
    def rss_growth_fraction(self) -> float:
        return self.windows[-1].rss_mebibytes / self.rss_after_warm_up_mebibytes - 1.0


async def run_soak(
    server: RunningServer, concurrency: int, duration_seconds: float, window_seconds: float
) -> SoakReport:
    """Loads `server` for `duration_seconds` in windows (after a warm-up of one window) and reports."""
    requests = mixed_predict_requests(server.port, repeats=400)
    await run_load(server.port, requests, concurrency, window_seconds)  # warm-up
    report = SoakReport(
        concurrency=concurrency, rss_after_warm_up_mebibytes=server.rss_bytes() / MEBIBYTE_BYTES
    )
    elapsed_seconds = 0.0
    while elapsed_seconds < duration_seconds:
        result = await run_load(server.port, requests, concurrency, window_seconds)
        window = SoakWindow(
            started_at_seconds=round(elapsed_seconds, 1),
            requests=len(result.latencies_seconds),
            status_counts=dict(sorted(result.status_counts.items())),
            transport_errors=result.transport_errors,
            requests_per_second=round(result.requests_per_second, 1),
            p50_ms=round(result.percentile_ms(50), 1),
            p99_ms=round(result.percentile_ms(99), 1),
            rss_mebibytes=round(server.rss_bytes() / MEBIBYTE_BYTES, 1),
        )
        report.windows.append(window)
        elapsed_seconds += result.elapsed_seconds
    return report


def print_report(report: SoakReport) -> None:
    print(
        "| window start s | requests | req/s | p50 ms | p99 ms | statuses | dropped connections | RSS MiB |"
    )
    print("|---:|---:|---:|---:|---:|---|---:|---:|")
    for window in report.windows:
        print(
            f"| {window.started_at_seconds:.0f} | {window.requests} | {window.requests_per_second} | "
            f"{window.p50_ms} | {window.p99_ms} | {window.status_counts} | {window.transport_errors} | "
            f"{window.rss_mebibytes} |"
        )
    print(
        f"\nrequests served: {report.requests}, errors (not 200/503): {report.errors}, "
        f"503 refusals: {report.refusals}, "
        f"RSS after warm-up {report.rss_after_warm_up_mebibytes:.1f} MiB -> end "
        f"{report.windows[-1].rss_mebibytes:.1f} MiB ({report.rss_growth_fraction:+.1%})"
    )


def failed_targets(report: SoakReport) -> list[str]:
    failures = []
    if report.errors:
        failures.append(f"{report.errors} errors other than 503")
    if report.rss_growth_fraction > RSS_GROWTH_LIMIT_FRACTION:
        failures.append(f"RSS grew {report.rss_growth_fraction:.1%} (limit {RSS_GROWTH_LIMIT_FRACTION:.0%})")
    return failures


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument("--duration-seconds", type=float, default=300.0, help="measured time, after warm-up")
    parser.add_argument("--window-seconds", type=float, default=30.0, help="p99 and RSS per window")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json-out", type=output_file, help="also write the figures as JSON here")
    parser.add_argument(
        "--log-dir", type=output_folder, default=Path("/tmp"), help="the service's log goes here"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    environment = {"DIGITSERVE_MODEL_DIR": str(args.model_dir.resolve())}
    load_before = load_average()
    with running_service(free_port(), environment, args.log_dir / "digitserve-soak.log") as server:
        report = asyncio.run(run_soak(server, args.concurrency, args.duration_seconds, args.window_seconds))
        depth_after = server.queue_depth()
    print(f"{machine_description()}; load average before {load_before}, after {load_average()}")
    print_report(report)
    print(f"queue depth after the soak: {depth_after:g}")
    failures = failed_targets(report) + (
        [f"queue depth {depth_after:g} after the soak"] if depth_after else []
    )
    if args.json_out:
        summary = {"errors": report.errors, "requests": report.requests, "failures": failures}
        args.json_out.write_text(json.dumps(asdict(report) | summary, indent=2))
    if failures:
        print("TARGETS FAILED: " + "; ".join(failures))
        sys.exit(1)
    print("targets met: no error other than 503, RSS growth within 10 %")


if __name__ == "__main__":
    main()
