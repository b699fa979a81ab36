"""SIGTERM-under-load scenario: a running service -> what its clients saw, and whether it shut down well.

`ShutdownClients` load the service (closed loop, mixed valid images); SIGTERM comes during the load,
and every client keeps going: each sends its next request as soon as it is answered and reconnects
when the server closes the connection. Per request it records: answered (status), closed before any
response byte (the server had not accepted it: an idle keep-alive connection closed by the shutdown),
or cut off mid-response (a broken promise).

Targets (`failed_targets`): every answer a 200; no response cut off; as many answers received as the
server's access log lists (nothing the server answered was lost); every reconnection after SIGTERM
refused; the process exits within 20 s, by the SIGTERM it re-raises (uvicorn re-raises the signal
after its graceful shutdown, so that a supervisor sees why it stopped: status -15 here, 143 in a
shell) or with status 0. The service must run as in production (`PRODUCTION_ARGUMENTS`) with its
access log on (`ACCESS_LOG_ARGUMENTS`), to count what it answered.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from testkit.http_load import exchange
from testkit.payloads import mixed_predict_requests
from testkit.server import LOOPBACK_HOST, RunningServer

GRACEFUL_SHUTDOWN_SECONDS = 20
PRODUCTION_ARGUMENTS = ("--timeout-graceful-shutdown", str(GRACEFUL_SHUTDOWN_SECONDS))
ACCESS_LOG_ARGUMENTS = ("--access-log", "--log-level", "info")


@dataclass
class ShutdownReport:
    """What the clients saw around the SIGTERM, and how the process ended."""

    concurrency: int
    answered_before_sigterm: int = 0
    in_flight_at_sigterm: int = 0
    answered_after_sigterm: dict[int, int] = field(default_factory=dict)
    closed_before_response: int = 0
    cut_off_mid_response: int = 0
    refused_connections: int = 0
    accepted_connections_after_sigterm: int = 0
    last_answer_after_sigterm_seconds: float = 0.0
    exit_seconds: float | None = None
    exit_code: int | None = None
    access_log_answers: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def answers(self) -> int:
        return sum(self.statuses.values())


class ShutdownClients:
    """`concurrency` closed-loop clients that keep sending until the server refuses their connection."""

    def __init__(self, port: int, requests: list[bytes], report: ShutdownReport) -> None:
        self.port = port
        self.requests = itertools.cycle(requests)
        self.report = report
        self.sigterm_at: float | None = None
        self.outstanding = 0

    async def run_client(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(LOOPBACK_HOST, self.port)
            except ConnectionRefusedError:
                self.report.refused_connections += 1
                return
            if self.sigterm_at is not None:
                self.report.accepted_connections_after_sigterm += 1
            try:
                await self._send_until_closed(reader, writer)
            finally:
                writer.close()

    async def _send_until_closed(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            self.outstanding += 1
            try:
                response = await exchange(reader, writer, next(self.requests))
            except asyncio.IncompleteReadError as error:
                # readuntil (the status line) raises with expected=None; readexactly (the body) with a size.
                if error.expected is None and not error.partial:
                    self.report.closed_before_response += 1
                else:
                    self.report.cut_off_mid_response += 1
                return
            except ConnectionError:
                self.report.closed_before_response += 1
                return
            finally:
                self.outstanding -= 1
            self._record(response.status_code)
            if response.headers.get("connection", "").lower() == "close":
                return

    def _record(self, status_code: int) -> None:
        report = self.report
        report.statuses[status_code] = report.statuses.get(status_code, 0) + 1
        if self.sigterm_at is None:
            report.answered_before_sigterm += 1
            return
        report.answered_after_sigterm[status_code] = report.answered_after_sigterm.get(status_code, 0) + 1
        report.last_answer_after_sigterm_seconds = round(time.perf_counter() - self.sigterm_at, 3)


def count_access_log_answers(log_path: Path) -> int:
    """Responses the server sent, from the app's access lines (`app.access request ... method=POST
    path=/predict ...`, fields sorted by name)."""
    return sum(
        " app.access request " in line and " method=POST path=/predict " in line
        for line in log_path.read_text().splitlines()
    )


async def run_shutdown(server: RunningServer, concurrency: int, load_seconds: float) -> ShutdownReport:
    """Loads `server`, sends it SIGTERM after `load_seconds`, and reports until it has exited."""
    report = ShutdownReport(concurrency=concurrency)
    clients = ShutdownClients(server.port, mixed_predict_requests(server.port), report)
    tasks = [asyncio.create_task(clients.run_client()) for _ in range(concurrency)]
    await asyncio.sleep(load_seconds)
    clients.sigterm_at = time.perf_counter()
    report.in_flight_at_sigterm = clients.outstanding
    os.kill(server.pid, signal.SIGTERM)
    try:
        report.exit_code = await asyncio.to_thread(server.process.wait, GRACEFUL_SHUTDOWN_SECONDS + 10)
        report.exit_seconds = round(time.perf_counter() - clients.sigterm_at, 2)
    except Exception:  # subprocess.TimeoutExpired: reported as no exit
        report.exit_code = None
    # Every client ends on a refused connection once the listener is gone; the cap only guards a hang.
    _, still_running = await asyncio.wait(tasks, timeout=10)
    for task in still_running:
        task.cancel()
    return report


def failed_targets(report: ShutdownReport) -> list[str]:
    """The targets of the module docstring that `report` misses."""
    failures = []
    if set(report.statuses) - {200}:
        failures.append(f"answers other than 200: {report.statuses}")
    if report.cut_off_mid_response:
        failures.append(f"{report.cut_off_mid_response} responses cut off")
    if report.answers != report.access_log_answers:
        failures.append(f"{report.answers} answers received, {report.access_log_answers} in the access log")
    if report.refused_connections != report.concurrency:
        failures.append(f"{report.refused_connections} of {report.concurrency} clients ended refused")
    if (
        report.exit_code not in (0, -signal.SIGTERM)
        or report.exit_seconds is None
        or report.exit_seconds > GRACEFUL_SHUTDOWN_SECONDS
    ):
        failures.append(f"exit code {report.exit_code} after {report.exit_seconds} s")
    return failures
