"""Concurrent requests share model calls; a failing, slow or saturated model fails only what it must.

A `ModelSpy` wraps the real model's `predict_batch` on the running service: it records each call's
batch size and can fail a call or hold it until released.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from app.pipeline.decode import decode_image
from app.pipeline.preprocess import preprocess_image
from digits.contract import to_model_input
from testkit.images import encode_png
from tests.integration.conftest import run_service
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

RELEASE_TIMEOUT_SECONDS = 10


class ModelSpy:
    """Stands in for `DigitModel.predict_batch`: records batch sizes, can fail or block calls."""

    def __init__(self, model, *, failing_calls: tuple[int, ...] = (), is_blocked: bool = False) -> None:
        self.predict_batch = model.predict_batch
        self.batch_sizes: list[int] = []
        self.failing_calls = failing_calls
        self.release = threading.Event()
        self.entered = threading.Event()
        if not is_blocked:
            self.release.set()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.release.wait(RELEASE_TIMEOUT_SECONDS)
        self.batch_sizes.append(len(images))
        if len(self.batch_sizes) in self.failing_calls:
            raise RuntimeError("simulated TensorFlow failure")
        return self.predict_batch(images)


def spy_on_model(service, monkeypatch, **options) -> ModelSpy:
    spy = ModelSpy(service.state.model, **options)
    monkeypatch.setattr(service.state.model, "predict_batch", spy)
    return spy


def post_png(service, image: np.ndarray):
    return service.client.post("/predict", files={"file": ("digit.png", encode_png(image), "image/png")})


async def test_64_concurrent_requests_are_batched_and_answered_in_order(
    service, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    chosen = images[:64]
    spy = spy_on_model(service, monkeypatch)
    responses = await asyncio.gather(*(post_png(service, image) for image in chosen))
    assert [response.status_code for response in responses] == [200] * 64
    canonical = np.stack(
        [to_model_input(preprocess_image(decode_image(encode_png(i))).canonical) for i in chosen]
    )
    expected = spy.predict_batch(canonical).argmax(axis=1)
    assert [response.json()["digit"] for response in responses] == expected.tolist()
    assert sum(spy.batch_sizes) == 64 and len(spy.batch_sizes) < 64 and max(spy.batch_sizes) > 1
    assert service.sample("digitserve_batch_size_count") == len(spy.batch_sizes)
    assert service.sample("digitserve_batch_size_bucket", {"le": "1.0"}) < len(spy.batch_sizes)
    assert service.sample("digitserve_batch_size_sum") == 64


async def test_a_lone_request_does_not_wait_for_companions_that_are_not_coming(
    make_settings, mnist_test_samples
):
    images, _ = mnist_test_samples
    async with run_service(make_settings(batch_max_wait_ms=1000)) as service:
        for image in images[:3]:
            assert (await post_png(service, image)).status_code == 200
        # Nothing else was queued or being decoded: each image went to the model without the 1 s wait.
        assert service.sample("digitserve_batch_size_count") == 3
        assert service.sample("digitserve_batch_queue_wait_seconds_sum") < 0.5


async def test_batching_off_sends_one_image_per_model_call(make_settings, monkeypatch, mnist_test_samples):
    images, _ = mnist_test_samples
    async with run_service(make_settings(batch_max_size=1)) as service:
        spy = spy_on_model(service, monkeypatch)
        responses = await asyncio.gather(*(post_png(service, image) for image in images[:8]))
    assert [response.status_code for response in responses] == [200] * 8
    assert spy.batch_sizes == [1] * 8


async def test_model_failure_fails_only_its_batch_and_the_service_recovers(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    async with run_service(make_settings(batch_max_size=8, batch_max_wait_ms=300)) as service:
        spy = spy_on_model(service, monkeypatch, failing_calls=(1,))
        failed = await asyncio.gather(*(post_png(service, image) for image in images[:4]))
        recovered = await asyncio.gather(*(post_png(service, image) for image in images[4:8]))
        model_errors = service.sample("digitserve_rejected_requests_total", {"reason": "model_error"})
    assert spy.batch_sizes == [4, 4]
    assert [response.status_code for response in failed] == [500] * 4
    assert {response.json()["code"] for response in failed} == {"model_error"}
    assert "Traceback" not in failed[0].text and "simulated" not in failed[0].text
    assert [response.status_code for response in recovered] == [200] * 4
    assert model_errors == 4


async def test_full_queue_answers_503_with_retry_after_at_once(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    settings = make_settings(
        batch_max_size=1, queue_max_size=2, batch_max_files=2, queue_retry_after_seconds=2
    )
    async with run_service(settings) as service:
        spy = spy_on_model(service, monkeypatch, is_blocked=True)
        in_flight = asyncio.ensure_future(post_png(service, images[0]))
        await asyncio.to_thread(spy.entered.wait, RELEASE_TIMEOUT_SECONDS)
        queued = [asyncio.ensure_future(post_png(service, image)) for image in images[1:3]]
        await wait_until(lambda: service.sample("digitserve_batch_queue_depth") == 2)
        started_seconds = time.perf_counter()
        refused = await post_png(service, images[3])
        refused_after_seconds = time.perf_counter() - started_seconds
        spy.release.set()
        answered = await asyncio.gather(in_flight, *queued)
    assert refused.status_code == 503
    assert refused.json()["code"] == "queue_full"
    assert refused.headers["retry-after"] == "2"
    assert refused_after_seconds < 1.0
    assert [response.status_code for response in answered] == [200] * 3


async def test_request_past_its_deadline_gets_504_and_frees_its_slot(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    async with run_service(make_settings(request_timeout_seconds=0.5, batch_max_size=1)) as service:
        spy = spy_on_model(service, monkeypatch, is_blocked=True)
        stuck = asyncio.ensure_future(post_png(service, images[0]))
        await asyncio.to_thread(spy.entered.wait, RELEASE_TIMEOUT_SECONDS)
        timed_out = await post_png(service, images[1])  # queued behind the stuck call, then abandoned
        spy.release.set()
        first = await stuck
        later = await post_png(service, images[2])
    assert timed_out.status_code == 504 and timed_out.json()["code"] == "request_timeout"
    assert first.status_code == 504  # the stuck call outlived its own deadline too
    assert later.status_code == 200
    assert spy.batch_sizes == [1, 1]  # the abandoned request never reached the model
