"""`python -m bench.service_processes`: the service as N processes behind one port, for `bench.peers
--processes N`. Pinned here: every process loads the model and serves its share of new connections
on the one port, SIGTERM stops them all with status 0, and a start-up that fails in the processes is
the launcher's failure too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from testkit.images import encode_png
from testkit.process_cpu import children_cpu_seconds
from testkit.server import LOOPBACK_HOST, STOP_TIMEOUT_SECONDS, free_port
from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

START_TIMEOUT_SECONDS = 120
# New connections, each hashed to one of the two sockets...
REQUESTS = 40
# ...so that the CPU each process spends on them is within a factor of 5 of the other's (7 or fewer
# of 40 on one side: odds of about 3 in a million).
MIN_SHARE_OF_THE_BUSIER = 0.2


@contextmanager
def launcher(models_dir: Path, port: int, log_path: Path) -> Iterator[subprocess.Popen]:
    """The launcher with 2 processes, in a session of its own: whatever happens in the test, the
    whole group (launcher and service processes) gets SIGTERM, then SIGKILL, when it is done."""
    command = [sys.executable, "-m", "bench.service_processes", "--processes", "2", "--port", str(port)]
    environment = {**os.environ, "DIGITSERVE_MODEL_DIR": str(models_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def ready_lines(log_path: Path) -> int:
    """How many processes have logged that they are ready (the text format: `... INFO app.main ready ...`)."""
    return sum(" app.main ready" in line for line in log_path.read_text().splitlines())


def test_two_processes_load_the_model_share_the_port_and_stop_on_sigterm(
    models_dir, mnist_test_samples, tmp_path
):
    port, log_path = free_port(), tmp_path / "service.log"
    with launcher(models_dir, port, log_path) as process:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while ready_lines(log_path) < 2:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        images, labels = mnist_test_samples
        upload = {"file": ("digit.png", encode_png(images[0]), "image/png")}
        before = children_cpu_seconds(process.pid)
        # Connection: close, so that every request is a new connection for the kernel to place.
        headers = {"Connection": "close"}
        with httpx.Client(base_url=f"http://{LOOPBACK_HOST}:{port}", timeout=30, headers=headers) as client:
            answers = [client.post("/predict", files=upload) for _ in range(REQUESTS)]
        after = children_cpu_seconds(process.pid)
        assert all(answer.status_code == 200 for answer in answers)
        assert {answer.json()["digit"] for answer in answers} == {int(labels[0])}
        assert len(before) == 2 and before.keys() == after.keys()
        # Both served: a process that took no connection would spend next to no CPU meanwhile.
        least, most = sorted(after[pid] - before[pid] for pid in before)
        assert most > 0 and least >= MIN_SHARE_OF_THE_BUSIER * most, (before, after)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log_path.read_text()


def test_a_start_up_that_fails_in_the_processes_fails_the_launcher(tmp_path):
    log_path = tmp_path / "service.log"
    with launcher(tmp_path / "no-models-here", free_port(), log_path) as process:
        assert process.wait(timeout=START_TIMEOUT_SECONDS) == 1
    assert "cannot start" in log_path.read_text()
