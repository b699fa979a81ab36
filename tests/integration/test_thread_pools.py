"""TensorFlow's thread pools, the decode workers and their OpenCV pools take the sizes of the settings."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys

import cv2
import pytest
import tensorflow as tf

from digits.model import configure_thread_pools
from testkit.images import encode_png
from testkit.shared_data import REPO_ROOT
from testkit.worker_tasks import pids_of_overlapping_calls
from tests.integration.conftest import run_service

pytestmark = pytest.mark.integration

FRESH_PROCESS_TIMEOUT_SECONDS = 120
SIZES_OF_A_FRESH_PROCESS = """
import tensorflow as tf
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


async def test_each_decode_worker_sizes_opencv_threads_and_zero_means_opencv_default(make_settings):
    cv2.setNumThreads(-1)
    opencv_default = cv2.getNumThreads()
    async with run_service(make_settings(opencv_threads=1)) as service:
        sequential = await service.state.decode_pool.run(cv2.getNumThreads)
    async with run_service(make_settings(opencv_threads=0)) as service:
        chosen_by_opencv = await service.state.decode_pool.run(cv2.getNumThreads)
    assert sequential == 1
    assert chosen_by_opencv == opencv_default


async def test_uploads_are_decoded_by_decode_workers_processes_at_most_at_a_time(
    make_settings, mnist_test_samples
):
    images, _ = mnist_test_samples
    async with run_service(make_settings(decode_workers=2)) as service:
        uploads = [("files", (f"{index}.png", encode_png(image))) for index, image in enumerate(images[:8])]
        single = [service.client.post("/predict", files={"file": ("d.png", encode_png(images[0]))})]
        answers = await asyncio.gather(service.client.post("/predict/batch", files=uploads), *single)
        worker_pids = await pids_of_overlapping_calls(service.state.decode_pool, 3)
    assert [answer.status_code for answer in answers] == [200, 200]
    assert len(set(worker_pids)) == 2 and os.getpid() not in worker_pids
