"""Starts the real service (uvicorn, one worker) as a subprocess on 127.0.0.1 and stops it again.

Used by the benchmark scripts: each configuration runs in its own process, so that two runs share
nothing but the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 180
STOP_TIMEOUT_SECONDS = 30


def _wait_until_ready(process: subprocess.Popen, base_url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with status {process.returncode} before it was ready")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the service was not ready within {READY_TIMEOUT_SECONDS} s")


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
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        """Resident memory of the service process now (VmRSS of /proc/PID/status)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS in /proc/{self.pid}/status")

    def open_file_count(self) -> int:
        """File descriptors the service process holds open (sockets and spooled uploads included)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))


@contextmanager
def running_service(
    port: int, environment: dict[str, str], log_path: Path, extra_arguments: Sequence[str] = ()
) -> Iterator[RunningServer]:
    """Runs `uvicorn app.main:app` on 127.0.0.1:`port` with DIGITSERVE_* `environment` added.

    Args:
        port: a free TCP port on the loopback interface.
        environment: DIGITSERVE_* variables of this configuration.
        log_path: where the service's stdout and stderr go.
        extra_arguments: more uvicorn options; they win over the defaults (`--access-log`).

    Yields:
        The running server, once `/readyz` answers 200.
    """
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--no-access-log", "--log-level", "warning", *extra_arguments]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **environment}
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_ready(process, base_url)
            yield RunningServer(base_url=base_url, pid=process.pid, process=process)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
