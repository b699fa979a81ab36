"""The thread pools of TensorFlow, OpenCV and the decode stage take the sizes of the settings at start-up."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time

import cv2
import pytest
import tensorflow as tf

from app.api import inference
from digits.model import configure_thread_pools
from testkit.images import encode_png
from testkit.shared_data import REPO_ROOT
from tests.integration.conftest import run_service

pytestmark = pytest.mark.integration

FRESH_PROCESS_TIMEOUT_SECONDS = 120
SIZES_OF_A_FRESH_PROCESS = """
import tensorflow as tf
from app.api import inference
from digits.model import configure_thread_pools
configure_thread_pools(1, 1)
tf.reduce_sum(tf.ones((64, 64)))  # starts the runtime with the configured pools
configure_thread_pools(1, 1)  # the same sizes again: accepted silently
threading = tf.config.threading
print(threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads())
"""


def test_a_fresh_process_runs_with_the_configured_pool_sizes():
    completed = subprocess.run(
        [sys.executable, "-c", SIZES_OF_A_FRESH_PROCESS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=FRESH_PROCESS_TIMEOUT_SECONDS,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["1", "1"]


def test_once_tensorflow_runs_other_sizes_are_logged_and_the_pools_stay(caplog):
    tf.reduce_sum(tf.ones((2, 2)))
    in_place = tf.config.threading.get_intra_op_parallelism_threads()
    with caplog.at_level(logging.WARNING, logger="digits.model"):
        configure_thread_pools(in_place + 3, 5)
    assert tf.config.threading.get_intra_op_parallelism_threads() == in_place
    assert "keep their sizes" in caplog.text


async def test_start_up_sizes_opencv_threads_and_zero_means_opencv_default(make_settings):
    cv2.setNumThreads(-1)
    opencv_default = cv2.getNumThreads()
    cv2.setNumThreads(3)
    async with run_service(make_settings(opencv_threads=1)):
        sequential = cv2.getNumThreads()
    async with run_service(make_settings(opencv_threads=0)):
        chosen_by_opencv = cv2.getNumThreads()
    assert sequential == 1
    assert chosen_by_opencv == opencv_default


class ConcurrencyProbe:
    """Wraps the decode + preprocess stage and records how many uploads it ran at the same time."""

    def __init__(self, decode_and_preprocess) -> None:
        self.decode_and_preprocess = decode_and_preprocess
        self.running = 0
        self.most_running = 0
        self.lock = threading.Lock()

    def __call__(self, *arguments):
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(0.05)  # long enough for every free thread to take an upload meanwhile
            return self.decode_and_preprocess(*arguments)
        finally:
            with self.lock:
                self.running -= 1


async def test_uploads_are_decoded_by_at_most_decode_threads_at_a_time(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    probe = ConcurrencyProbe(inference.decode_and_preprocess)
    monkeypatch.setattr(inference, "decode_and_preprocess", probe)
    async with run_service(make_settings(decode_threads=2)) as service:
        uploads = [("files", (f"{index}.png", encode_png(image))) for index, image in enumerate(images[:8])]
        single = [service.client.post("/predict", files={"file": ("d.png", encode_png(images[0]))})]
        answers = await asyncio.gather(service.client.post("/predict/batch", files=uploads), *single)
    assert [answer.status_code for answer in answers] == [200, 200]
    assert probe.most_running == 2
