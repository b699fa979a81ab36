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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    """A started service: where it listens, and its process (for CPU accounting)."""

    base_url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the service process has used so far (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running_service(port: int, environment: dict[str, str], log_path: Path) -> Iterator[RunningServer]:
    """Runs `uvicorn app.main:app` on 127.0.0.1:`port` with DIGITSERVE_* `environment` added.

    Args:
        port: a free TCP port on the loopback interface.
        environment: DIGITSERVE_* variables of this configuration.
        log_path: where the service's stdout and stderr go.

    Yields:
        The running server, once `/readyz` answers 200.
    """
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **environment}
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_ready(process, base_url)
            yield RunningServer(base_url=base_url, pid=process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
