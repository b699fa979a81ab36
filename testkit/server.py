"""The real service as a subprocess: `python -m app`, as in production, on a free 127.0.0.1 port.

The benchmark runs each configuration in a process of its own, so that two runs share nothing but
the machine; the fault and browser tests need a real socket and a real process (signals, slow
clients, CPU and memory accounting) that the in-process ASGI client cannot give. It is started by the
production command, so that it runs with the same uvicorn options (`app.server`): the connection
limits, one worker, the graceful drain.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from testkit.process_cpu import read_stat
from testkit.shared_data import REPO_ROOT

LOOPBACK_HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 180
STOP_TIMEOUT_SECONDS = 30
POLL_INTERVAL_SECONDS = 0.5
# Enough of a failed start's log to show the exception that stopped it.
LOG_TAIL_CHARACTERS = 4000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK_HOST, 0))
        return probe.getsockname()[1]


def wait_until_ready(process: subprocess.Popen, base_url: str, log_path: Path) -> None:
    """Polls `GET /readyz` until it answers 200 (the model is loaded and warmed up).

    Raises:
        RuntimeError: the process exited first, or was not ready within READY_TIMEOUT_SECONDS; the
            message ends with the tail of the service's log.
    """
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the service exited with status {process.returncode} before it was ready:\n"
                f"{log_path.read_text()[-LOG_TAIL_CHARACTERS:]}"
            )
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(POLL_INTERVAL_SECONDS)
    raise RuntimeError(
        f"the service was not ready within {READY_TIMEOUT_SECONDS} s:\n"
        f"{log_path.read_text()[-LOG_TAIL_CHARACTERS:]}"
    )


@dataclass(frozen=True)
class RunningServer:
    """A started service: where it listens, and its process (CPU and memory accounting, signals)."""

    base_url: str
    pid: int
    process: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def cpu_seconds(self) -> float:
        """User + system CPU time the service process has used so far (all its threads)."""
        return read_stat(Path(f"/proc/{self.pid}/stat")).own_seconds

    def rss_bytes(self) -> int:
        """Resident memory of the service process now (VmRSS of /proc/PID/status)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS in /proc/{self.pid}/status")

    def open_file_count(self) -> int:
        """File descriptors the service process holds open (sockets and spooled uploads included)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def queue_depth(self) -> float:
        """`digitserve_batch_queue_depth` scraped from `/metrics`: images waiting for the model."""
        for line in httpx.get(f"{self.base_url}/metrics", timeout=10).text.splitlines():
            if line.startswith("digitserve_batch_queue_depth "):
                return float(line.split()[1])
        raise RuntimeError("no digitserve_batch_queue_depth in /metrics")


@contextmanager
def running_service(
    port: int,
    environment: dict[str, str],
    log_path: Path,
    extra_arguments: Sequence[str] = (),
    source_root: Path = REPO_ROOT,
) -> Iterator[RunningServer]:
    """Runs `python -m app` on 127.0.0.1:`port` with DIGITSERVE_* `environment` added.

    Args:
        port: a free TCP port on the loopback interface (`free_port`).
        environment: DIGITSERVE_* variables of this configuration.
        log_path: where the service's stdout and stderr go.
        extra_arguments: more `python -m app` options (uvicorn's names: `--access-log`, `--log-level`,
            `--timeout-graceful-shutdown`); they win over the defaults.
        source_root: the checkout whose code runs (another commit's worktree, to compare with it);
            the interpreter and its packages stay this one's.

    Yields:
        The running server, once `/readyz` answers 200. On exit it gets SIGTERM, and SIGKILL if it
        has not stopped STOP_TIMEOUT_SECONDS later.

    Raises:
        RuntimeError: the service exited or was not ready in time (see `wait_until_ready`).
    """
    command = [sys.executable, "-m", "app", "--host", LOOPBACK_HOST, "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning", *extra_arguments]
    process_environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **environment}
    if source_root != REPO_ROOT:  # its packages before the editable install of this checkout
        inherited = process_environment.get("PYTHONPATH")
        process_environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source_root), inherited]))
    base_url = f"http://{LOOPBACK_HOST}:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=source_root, env=process_environment, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_until_ready(process, base_url, log_path)
            yield RunningServer(base_url=base_url, pid=process.pid, process=process)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def service_on(
    port: int | None, model_dir: Path, log_path: Path
) -> tuple[int, AbstractContextManager[RunningServer | None]]:
    """A benchmark's service: the one already listening on 127.0.0.1:`port`, or, when `port` is None,
    a new `python -m app` serving `model_dir` on a free port (started when the context is entered).

    Returns:
        The port, and the context that runs the new service (nothing, for a service already running).
    """
    if port:
        return port, nullcontext()
    port = free_port()
    environment = {"DIGITSERVE_MODEL_DIR": str(model_dir.resolve())}
    return port, running_service(port, environment, log_path)
