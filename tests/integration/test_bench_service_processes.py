"""`python -m bench.service_processes`: the service as N processes behind one port, for `bench.peers
--processes N`. Pinned here: every process loads the model and answers on the one port, SIGTERM stops
them all with status 0, and a start-up that fails in the processes is the launcher's failure too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from testkit.images import encode_png
from testkit.server import LOOPBACK_HOST, free_port
from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration

START_TIMEOUT_SECONDS = 120


def start_launcher(models_dir: Path, port: int, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "bench.service_processes", "--processes", "2", "--port", str(port)]
    environment = {**os.environ, "DIGITSERVE_MODEL_DIR": str(models_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with log_path.open("w") as log:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)


def ready_lines(log_path: Path) -> int:
    """How many processes have logged that they are ready (the text format: `... INFO app.main ready ...`)."""
    return sum(" app.main ready" in line for line in log_path.read_text().splitlines())


def test_two_processes_load_the_model_answer_on_one_port_and_stop_on_sigterm(
    models_dir, mnist_test_samples, tmp_path
):
    port, log_path = free_port(), tmp_path / "service.log"
    launcher = start_launcher(models_dir, port, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while ready_lines(log_path) < 2:
            assert launcher.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        images, labels = mnist_test_samples
        upload = {"file": ("digit.png", encode_png(images[0]), "image/png")}
        with httpx.Client(base_url=f"http://{LOOPBACK_HOST}:{port}", timeout=30) as client:
            answers = [client.post("/predict", files=upload) for _ in range(8)]
        assert all(answer.status_code == 200 for answer in answers)
        assert {answer.json()["digit"] for answer in answers} == {int(labels[0])}
    finally:
        launcher.send_signal(signal.SIGTERM)
        status = launcher.wait(timeout=60)
    assert status == 0, log_path.read_text()


def test_a_start_up_that_fails_in_the_processes_fails_the_launcher(tmp_path):
    launcher = start_launcher(tmp_path / "no-models-here", free_port(), tmp_path / "service.log")
    assert launcher.wait(timeout=START_TIMEOUT_SECONDS) == 1
    assert "cannot start" in (tmp_path / "service.log").read_text()
