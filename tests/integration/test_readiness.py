"""/readyz takes a stalled replica out of rotation and puts it back by itself; /healthz never fails on it.

A stall is an image waiting longer than `readiness_stall_seconds` while no model call finishes (a
model call that hangs). The model is made to hang by a stand-in for `predict_batch` that blocks until
the test releases it; the stall limit is tiny so that the test takes a fraction of a second.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from testkit.images import encode_png
from tests.integration.conftest import run_service
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

STALL_SECONDS = 0.3
RELEASE_TIMEOUT_SECONDS = 10
STATUS_TIMEOUT_SECONDS = 5
POLL_INTERVAL_SECONDS = 0.02


class HangingModel:
    """Stands in for `DigitModel.predict_batch`: each call blocks until `release` is set, then answers."""

    def __init__(self, predict_batch) -> None:
        self.predict_batch = predict_batch
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.release.wait(RELEASE_TIMEOUT_SECONDS)
        return self.predict_batch(images)


async def readiness_status(service) -> int:
    return (await service.client.get("/readyz")).status_code


async def wait_for_readiness(service, status_code: int) -> None:
    """Polls /readyz until it answers `status_code`: a bound on how long the test may hang, not a timing."""
    try:
        async with asyncio.timeout(STATUS_TIMEOUT_SECONDS):
            while await readiness_status(service) != status_code:
                await asyncio.sleep(POLL_INTERVAL_SECONDS)
    except TimeoutError:
        message = f"/readyz did not answer {status_code} within {STATUS_TIMEOUT_SECONDS} s"
        raise AssertionError(message) from None


async def test_readiness_fails_while_the_model_hangs_and_recovers_when_it_returns(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    async with run_service(make_settings(readiness_stall_seconds=STALL_SECONDS)) as service:
        assert await readiness_status(service) == 200
        model = HangingModel(service.state.model.predict_batch)
        monkeypatch.setattr(service.state.model, "predict_batch", model)
        upload = {"file": ("digit.png", encode_png(images[0]))}
        prediction = asyncio.create_task(service.client.post("/predict", files=upload))
        await wait_until(model.entered.is_set)

        await wait_for_readiness(service, 503)
        stalled = await service.client.get("/readyz")
        alive = await service.client.get("/healthz")

        model.release.set()
        await wait_for_readiness(service, 200)
        answered = await prediction
    assert stalled.json()["code"] == "not_ready"
    assert "no model call has finished" in stalled.json()["detail"]
    assert alive.status_code == 200  # liveness must not restart a replica that is only stalled
    assert answered.status_code == 200


async def test_an_idle_replica_stays_ready_past_the_stall_limit(make_settings):
    async with run_service(make_settings(readiness_stall_seconds=STALL_SECONDS)) as service:
        await asyncio.sleep(STALL_SECONDS * 2)  # no image waits: nothing is stalled, however long
        assert await readiness_status(service) == 200
