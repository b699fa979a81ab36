"""Hostile traffic beside ordinary traffic: do ordinary clients still get their digits?

One run against the real service (one worker, 127.0.0.1, the shipped model, default settings): an
ordinary MNIST PNG posted to `/predict` every 0.4 s for 20 s while two progressive-JPEG scan bombs
(6000x6000, smallest scan repeated 2,000 times), a 1x40,000,000 RGBA PNG strip, two headers of empty
pieces (a 9.6 MB PNG of 800,000 empty chunks, 9 MB of JPEG fill bytes: seconds of Pillow's header
reading on the event loop, unless refused first) and 30 idle connections arrive. RSS is sampled every
0.1 s, summed over the service's process, its decode workers and their fork server. Targets (exit 1
when one fails): every ordinary request 200, p99 <= 1 s; RSS growth <= 256 MiB; each hostile upload
answered 4xx within 2 s; every idle connection closed by the server within 30 s.
    python -m bench.hostile [--model-dir models/digits] [--json-out FILE] [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.machine import load_average, machine_description
from testkit.hostile_images import padded_header, progressive_scan_bomb, strip_png
from testkit.http_load import build_multipart_request, exchange
from testkit.images import encode_png
from testkit.output_paths import output_file, output_folder
from testkit.server import LOOPBACK_HOST, RunningServer, free_port, running_service
from testkit.shared_data import REPO_ROOT, read_mnist

MEBIBYTE_BYTES = 1024 * 1024
ORDINARY_INTERVAL_SECONDS = 0.4
ORDINARY_DURATION_SECONDS = 20.0
IDLE_CONNECTIONS = 30
HOSTILE_START_SECONDS = (1.0, 1.5, 2.0, 2.5, 3.0)  # when each hostile upload is sent, from the start
TARGET_P99_SECONDS = 1.0
TARGET_RSS_GROWTH_BYTES = 256 * MEBIBYTE_BYTES
TARGET_HOSTILE_ANSWER_SECONDS = 2.0
TARGET_IDLE_CLOSED_SECONDS = 30.0
REQUEST_LIMIT_SECONDS = 60.0  # no exchange of this script waits longer than this


@dataclass
class HostileReport:
    """What each kind of client saw, and what the service's memory did."""

    ordinary_statuses: list[int] = field(default_factory=list)
    ordinary_latencies_seconds: list[float] = field(default_factory=list)
    hostile: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> (status, seconds)
    idle_closed_after_seconds: list[float | None] = field(default_factory=list)
    rss_baseline_bytes: int = 0
    rss_peak_bytes: int = 0

    @property
    def ordinary_p99_seconds(self) -> float:
        return float(np.percentile(self.ordinary_latencies_seconds, 99))


async def post(port: int, request: bytes) -> tuple[int, float]:
    """Sends one request on a new connection -> (status, seconds to the answer); status 0: no answer."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(REQUEST_LIMIT_SECONDS):
            reader, writer = await asyncio.open_connection(LOOPBACK_HOST, port)
            try:
                response = await exchange(reader, writer, request)
            finally:
                writer.close()
        return response.status_code, time.perf_counter() - started
    except (TimeoutError, OSError, asyncio.IncompleteReadError):
        return 0, time.perf_counter() - started


async def post_ordinary_digits(port: int, report: HostileReport) -> None:
    images, _ = read_mnist()
    host = f"{LOOPBACK_HOST}:{port}"
    count = round(ORDINARY_DURATION_SECONDS / ORDINARY_INTERVAL_SECONDS)
    requests = [
        build_multipart_request(host, "/predict", "file", "d.png", encode_png(images[i]))
        for i in range(count)
    ]

    async def post_at(index: int, request: bytes) -> None:
        await asyncio.sleep(index * ORDINARY_INTERVAL_SECONDS)
        status, seconds = await post(port, request)
        report.ordinary_statuses.append(status)
        report.ordinary_latencies_seconds.append(seconds)

    await asyncio.gather(*(post_at(index, request) for index, request in enumerate(requests)))


async def post_hostile_uploads(port: int, report: HostileReport) -> None:
    host = f"{LOOPBACK_HOST}:{port}"
    uploads = {
        "scan bomb 1": ("bomb1.jpg", progressive_scan_bomb(6000, 2000)),
        "scan bomb 2": ("bomb2.jpg", progressive_scan_bomb(6000, 2000)),
        "1x40M RGBA PNG": ("strip.png", strip_png(1, 40_000_000, 4)),
        # Headers Pillow would read for seconds on the event loop, one empty piece at a time:
        "PNG of 800,000 empty chunks": ("chunks.png", padded_header("PNG", 800_000)),
        "JPEG of 9 MB fill bytes": ("filled.jpg", padded_header("JPEG", 9_000_000)),
    }

    async def post_at(name: str, delay_seconds: float, filename: str, data: bytes) -> None:
        await asyncio.sleep(delay_seconds)
        report.hostile[name] = await post(
            port, build_multipart_request(host, "/predict", "file", filename, data)
        )

    await asyncio.gather(
        *(
            post_at(name, delay, filename, data)
            for (name, (filename, data)), delay in zip(uploads.items(), HOSTILE_START_SECONDS, strict=True)
        )
    )


async def hold_idle_connection(port: int) -> float | None:
    """Opens a connection and sends nothing -> seconds until the server closed it (None: it did not)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(LOOPBACK_HOST, port)
    try:
        async with asyncio.timeout(TARGET_IDLE_CLOSED_SECONDS + 5):
            while await reader.read(1024):
                pass
        return time.perf_counter() - started
    except (TimeoutError, OSError):
        return None
    finally:
        writer.close()


def process_tree_rss_bytes(root_pid: int) -> int:
    """The resident memory of a process and all its descendants (/proc), in bytes."""
    parents = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:  # the process ended while being read
            continue
        parents[int(status.parent.name)] = (int(fields["PPid"]), int(fields.get("VmRSS", "0 kB").split()[0]))
    tree, frontier = set(), {root_pid}
    while frontier:
        tree |= frontier
        frontier = {pid for pid, (parent, _) in parents.items() if parent in frontier} - tree
    return 1024 * sum(parents[pid][1] for pid in tree if pid in parents)


async def sample_rss(server: RunningServer, report: HostileReport, stop: asyncio.Event) -> None:
    while not stop.is_set():
        report.rss_peak_bytes = max(report.rss_peak_bytes, process_tree_rss_bytes(server.pid))
        await asyncio.sleep(0.1)


async def run_hostile(server: RunningServer) -> HostileReport:
    """Runs every kind of client at once and returns what each saw."""
    report = HostileReport(rss_baseline_bytes=process_tree_rss_bytes(server.pid))
    report.rss_peak_bytes = report.rss_baseline_bytes
    stop = asyncio.Event()
    sampler = asyncio.ensure_future(sample_rss(server, report, stop))
    idle = [hold_idle_connection(server.port) for _ in range(IDLE_CONNECTIONS)]
    idle_closed, *_ = await asyncio.gather(
        asyncio.gather(*idle),
        post_ordinary_digits(server.port, report),
        post_hostile_uploads(server.port, report),
    )
    report.idle_closed_after_seconds = list(idle_closed)
    stop.set()
    await sampler
    return report


def failed_targets(report: HostileReport) -> list[str]:
    failures = []
    if any(status != 200 for status in report.ordinary_statuses):
        failures.append(f"ordinary statuses {sorted(set(report.ordinary_statuses))}, not all 200")
    if report.ordinary_p99_seconds > TARGET_P99_SECONDS:
        failures.append(f"ordinary p99 {report.ordinary_p99_seconds:.2f} s > {TARGET_P99_SECONDS} s")
    growth = report.rss_peak_bytes - report.rss_baseline_bytes
    if growth > TARGET_RSS_GROWTH_BYTES:
        failures.append(f"RSS growth {growth / MEBIBYTE_BYTES:.0f} MiB > 256 MiB")
    for name, (status, seconds) in report.hostile.items():
        if not 400 <= status < 500 or seconds > TARGET_HOSTILE_ANSWER_SECONDS:
            failures.append(f"{name}: {status} after {seconds:.2f} s (target: 4xx within 2 s)")
    still_open = [seconds for seconds in report.idle_closed_after_seconds if seconds is None]
    late = [
        seconds
        for seconds in report.idle_closed_after_seconds
        if seconds and seconds > TARGET_IDLE_CLOSED_SECONDS
    ]
    if still_open or late:
        failures.append(f"{len(still_open)} idle connections never closed, {len(late)} closed after 30 s")
    return failures


def print_report(report: HostileReport) -> None:
    statuses = {
        status: report.ordinary_statuses.count(status) for status in sorted(set(report.ordinary_statuses))
    }
    print(
        f"ordinary /predict: {len(report.ordinary_statuses)} requests, statuses {statuses}, "
        f"p50 {1000 * float(np.median(report.ordinary_latencies_seconds)):.0f} ms, "
        f"p99 {1000 * report.ordinary_p99_seconds:.0f} ms, "
        f"max {1000 * max(report.ordinary_latencies_seconds):.0f} ms"
    )
    for name, (status, seconds) in report.hostile.items():
        print(f"{name}: {status} after {seconds:.2f} s")
    closed = [seconds for seconds in report.idle_closed_after_seconds if seconds is not None]
    print(
        f"idle connections: {len(closed)}/{IDLE_CONNECTIONS} closed by the server, "
        f"after {min(closed, default=0):.1f}-{max(closed, default=0):.1f} s"
    )
    print(
        f"RSS: baseline {report.rss_baseline_bytes / MEBIBYTE_BYTES:.0f} MiB, "
        f"peak {report.rss_peak_bytes / MEBIBYTE_BYTES:.0f} MiB "
        f"(+{(report.rss_peak_bytes - report.rss_baseline_bytes) / MEBIBYTE_BYTES:.0f} MiB)"
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument("--json-out", type=output_file, default=None, help="write the report as JSON here")
    parser.add_argument(
        "--log-dir", type=output_folder, default=Path("/tmp"), help="where the service's log goes"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    environment = {"DIGITSERVE_MODEL_DIR": str(args.model_dir.resolve())}
    load_before = load_average()
    with running_service(free_port(), environment, args.log_dir / "digitserve-hostile.log") as server:
        report = asyncio.run(run_hostile(server))
    print(f"{machine_description()}; load average before {load_before}, after {load_average()}")
    print_report(report)
    failures = failed_targets(report)
    if args.json_out:
        args.json_out.write_text(json.dumps(asdict(report) | {"failures": failures}, indent=2))
    if failures:
        print("TARGETS FAILED: " + "; ".join(failures))
        sys.exit(1)
    print(
        "targets met: ordinary 200 with p99 <= 1 s, RSS growth <= 256 MiB, hostile 4xx within 2 s, "
        "idle connections closed within 30 s"
    )


if __name__ == "__main__":
    main()
