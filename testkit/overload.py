"""Overload scenario: a running service -> three phase reports (baseline, overload, recovery) and targets.

The service runs with a small queue (`SMALL_QUEUE_ENVIRONMENT`); uploads alternate MNIST PNGs and
photo-like JPEGs. The phases run back to back:

1. baseline: low load (concurrency 4), the latency of a service with headroom;
2. overload: many connections, each sending its next request as soon as it is answered, so that the
   503s themselves come back as new requests: offered load many times the capacity;
3. recovery: low load again, right after.

Targets (`failed_targets`): during the overload only 200 and 503 answers, every 503 with
`Retry-After`, 503s fast (p99 under 250 ms), accepted requests' p99 bounded (under 2 s, a fifth of
the 10 s request deadline); in the recovery phase every request answered 200, with a p99 within 3x
of the baseline's (plus 50 ms), and nothing left in the queue. `python -m bench.overload` runs it for
minutes and checks them all; the fault tests run it for seconds and check what holds on any machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from testkit.http_load import LoadResult, run_load
from testkit.payloads import mixed_predict_requests
from testkit.server import RunningServer

SMALL_QUEUE_ENVIRONMENT = {"DIGITSERVE_QUEUE_MAX_SIZE": "32", "DIGITSERVE_BATCH_MAX_FILES": "32"}
LOW_CONCURRENCY = 4
REFUSAL_P99_LIMIT_MS = 250.0
ACCEPTED_P99_LIMIT_MS = 2000.0
RECOVERY_P99_FACTOR = 3.0
RECOVERY_P99_SLACK_MS = 50.0


@dataclass
class PhaseReport:
    """One phase: what was offered, what was served, how fast."""

    name: str
    concurrency: int
    seconds: float
    status_counts: dict[int, int]
    offered_per_second: float
    served_per_second: float
    accepted_p50_ms: float
    accepted_p99_ms: float
    refused_p50_ms: float
    refused_p99_ms: float
    refusals_without_retry_after: int
    transport_errors: int
    server_cores: float = 0.0
    client_cores: float = 0.0

    @classmethod
    def from_result(cls, name: str, result: LoadResult) -> PhaseReport:
        served = result.status_counts.get(200, 0)
        return cls(
            name=name,
            concurrency=result.concurrency,
            seconds=round(result.elapsed_seconds, 1),
            status_counts=dict(sorted(result.status_counts.items())),
            offered_per_second=round(result.requests_per_second, 1),
            served_per_second=round(served / result.elapsed_seconds, 1),
            accepted_p50_ms=round(result.percentile_ms(50, status_code=200), 1),
            accepted_p99_ms=round(result.percentile_ms(99, status_code=200), 1),
            refused_p50_ms=round(result.percentile_ms(50, status_code=503), 1),
            refused_p99_ms=round(result.percentile_ms(99, status_code=503), 1),
            refusals_without_retry_after=result.refusals_without_retry_after,
            transport_errors=result.transport_errors,
        )


async def run_overload(
    server: RunningServer, overload_concurrency: int, overload_seconds: float, low_seconds: float
) -> list[PhaseReport]:
    """Runs baseline, overload and recovery against `server`; returns one report per phase."""
    # Enough for the whole overload phase: refusals come back in a millisecond or two.
    requests = mixed_predict_requests(server.port, repeats=3000)
    await run_load(server.port, requests[:256], LOW_CONCURRENCY, low_seconds)  # warm-up
    phases = [
        ("baseline", LOW_CONCURRENCY, low_seconds),
        ("overload", overload_concurrency, overload_seconds),
        ("recovery", LOW_CONCURRENCY, low_seconds),
    ]
    reports = []
    for name, concurrency, seconds in phases:
        server_cpu_seconds, client_cpu_seconds = server.cpu_seconds(), time.process_time()
        result = await run_load(server.port, requests, concurrency, seconds)
        report = PhaseReport.from_result(name, result)
        # Client and service share the machine: how much of it each took during the phase.
        report.server_cores = round((server.cpu_seconds() - server_cpu_seconds) / result.elapsed_seconds, 2)
        report.client_cores = round((time.process_time() - client_cpu_seconds) / result.elapsed_seconds, 2)
        reports.append(report)
    return reports


def failed_targets(reports: list[PhaseReport], depth_after: float) -> list[str]:
    """The targets of the module docstring that `reports` miss."""
    baseline, overload, recovery = reports
    failures = []
    if set(overload.status_counts) - {200, 503} or overload.transport_errors:
        failures.append(f"overload answered {overload.status_counts}, {overload.transport_errors} dropped")
    if not overload.status_counts.get(503):
        failures.append("no 503 during the overload: the load did not exceed the capacity")
    if overload.refusals_without_retry_after:
        failures.append(f"{overload.refusals_without_retry_after} 503s without Retry-After")
    if overload.refused_p99_ms > REFUSAL_P99_LIMIT_MS:
        failures.append(f"503 p99 {overload.refused_p99_ms} ms > {REFUSAL_P99_LIMIT_MS} ms")
    if overload.accepted_p99_ms > ACCEPTED_P99_LIMIT_MS:
        failures.append(f"accepted p99 {overload.accepted_p99_ms} ms > {ACCEPTED_P99_LIMIT_MS} ms")
    if set(recovery.status_counts) != {200} or recovery.transport_errors:
        failures.append(f"recovery answered {recovery.status_counts}, {recovery.transport_errors} dropped")
    recovery_limit_ms = baseline.accepted_p99_ms * RECOVERY_P99_FACTOR + RECOVERY_P99_SLACK_MS
    if recovery.accepted_p99_ms > recovery_limit_ms:
        failures.append(f"recovery p99 {recovery.accepted_p99_ms} ms > {recovery_limit_ms:.0f} ms")
    if depth_after:
        failures.append(f"queue depth {depth_after:g} after the run")
    return failures
