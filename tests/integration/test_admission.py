"""Under overload a request is refused before it is decoded, and an admitted request is not refused later.

The queue bound covers the images being decoded as well as the queued ones: room is reserved in the
batcher at the door (`MicroBatcher.reserve`), so the 503 costs no decoding and comes back at once.
`/preprocess` decodes too, and is admitted the same way.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from app.pipeline import prepare
from testkit.images import encode_png
from tests.integration.conftest import decode_in_this_process, run_service, service_log_lines
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

RELEASE_TIMEOUT_SECONDS = 10


class DecodeGate:
    """Wraps the decode + preprocess task: counts calls and can hold them until released."""

    def __init__(self, prepare_digit, *, is_blocked: bool) -> None:
        self.prepare_digit = prepare_digit
        self.calls = 0
        self.release = threading.Event()
        if not is_blocked:
            self.release.set()

    def __call__(self, *arguments):
        self.calls += 1
        self.release.wait(RELEASE_TIMEOUT_SECONDS)
        return self.prepare_digit(*arguments)


async def gate_decoding(monkeypatch, service, *, is_blocked: bool) -> DecodeGate:
    """Holds the service's decoding at a gate the test opens (decoding on the test's own threads)."""
    await decode_in_this_process(service)
    gate = DecodeGate(prepare.prepare_digit, is_blocked=is_blocked)
    monkeypatch.setattr(prepare, "prepare_digit", gate)
    return gate


def post_digit(service, image: np.ndarray):
    return service.client.post("/predict", files={"file": ("digit.png", encode_png(image))})


async def test_images_being_decoded_hold_their_room_and_the_excess_is_refused_undecoded(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    settings = make_settings(queue_max_size=2, batch_max_files=2, batch_max_size=2)
    async with run_service(settings) as service:
        gate = await gate_decoding(monkeypatch, service, is_blocked=True)
        admitted = [asyncio.ensure_future(post_digit(service, image)) for image in images[:2]]
        await wait_until(lambda: gate.calls == 2)
        refused = await post_digit(service, images[2])
        refused_batch = await service.client.post(
            "/predict/batch", files=[("files", ("a.png", encode_png(images[3])))]
        )
        decoded_before_release = gate.calls
        gate.release.set()
        answered = await asyncio.gather(*admitted)
        after = await post_digit(service, images[4])
    assert refused.status_code == 503 and refused.json()["code"] == "queue_full"
    assert refused.headers["retry-after"] == "1"
    assert refused_batch.status_code == 503
    assert decoded_before_release == 2  # the refused requests were never decoded
    assert [response.status_code for response in answered] == [200, 200]
    assert after.status_code == 200
    assert service.state.batcher.reserved_units == 0


async def test_a_batch_request_takes_room_for_each_of_its_files(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    async with run_service(make_settings(queue_max_size=4, batch_max_files=4, batch_max_size=4)) as service:
        gate = await gate_decoding(monkeypatch, service, is_blocked=True)
        files = [("files", (f"{i}.png", encode_png(image))) for i, image in enumerate(images[:3])]
        batch = asyncio.ensure_future(service.client.post("/predict/batch", files=files))
        await wait_until(lambda: gate.calls >= 1)
        await wait_until(lambda: service.state.batcher.reserved_units == 3)
        two_more = await service.client.post("/predict/batch", files=files[:2])
        one_more = asyncio.ensure_future(post_digit(service, images[5]))
        await wait_until(lambda: service.state.batcher.reserved_units == 4)
        gate.release.set()
        answered = await asyncio.gather(batch, one_more)
    assert two_more.status_code == 503
    assert [response.status_code for response in answered] == [200, 200]
    assert len(answered[0].json()["predictions"]) == 3


async def test_queue_full_refusals_are_all_counted_but_logged_at_most_once_a_second(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    async with run_service(make_settings(queue_max_size=1, batch_max_files=1, batch_max_size=1)) as service:
        gate = await gate_decoding(monkeypatch, service, is_blocked=True)
        admitted = asyncio.ensure_future(post_digit(service, images[0]))
        await wait_until(lambda: gate.calls == 1)
        started_seconds = time.monotonic()
        with service_log_lines() as stream:
            refused = [await post_digit(service, image) for image in images[1:21]]
        elapsed_seconds = time.monotonic() - started_seconds
        gate.release.set()
        await admitted
        counted = service.sample("digitserve_rejected_requests_total", {"reason": "queue_full"})
    assert [response.status_code for response in refused] == [503] * 20
    assert counted == 20
    logged = [line for line in stream.getvalue().splitlines() if "code=queue_full" in line]
    # One line, plus one per further second if this machine took that long for 20 refusals.
    assert 1 <= len(logged) <= 1 + int(elapsed_seconds)
    assert "similar_refusals_not_logged=0" in logged[0]


async def test_with_no_room_at_all_uploads_are_refused_unread_and_other_routes_still_work(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    chunks_read = 0

    async def upload_chunks():
        nonlocal chunks_read
        boundary_line = b'--b\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n\r\n'
        for chunk in (boundary_line, encode_png(images[1]), b"\r\n--b--\r\n"):
            chunks_read += 1
            yield chunk

    async with run_service(make_settings(queue_max_size=1, batch_max_files=1, batch_max_size=1)) as service:
        gate = await gate_decoding(monkeypatch, service, is_blocked=True)
        admitted = asyncio.ensure_future(post_digit(service, images[0]))
        await wait_until(lambda: gate.calls == 1)
        refused = await service.client.post(
            "/predict", content=upload_chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
        )
        refused_batch = await service.client.post("/predict/batch", files=[("files", ("a.png", b"x"))])
        probes = [
            (await service.client.get(path)).status_code for path in ("/healthz", "/readyz", "/metrics")
        ]
        gate.release.set()
        answered = await admitted
        explained = await service.client.post("/preprocess", files={"file": ("d.png", encode_png(images[2]))})
        counted = service.sample("digitserve_rejected_requests_total", {"reason": "queue_full"})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["code"] == "queue_full" and refused.headers["x-request-id"]
    assert chunks_read == 0  # refused from the headers: not a byte of the upload was read
    assert refused_batch.status_code == 503 and counted == 2
    assert probes == [200, 200, 200]
    assert explained.status_code == 200 and answered.status_code == 200


async def test_preprocess_decodes_only_with_room_in_the_queue_and_is_refused_unread_without(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    async with run_service(make_settings(queue_max_size=1, batch_max_files=1, batch_max_size=1)) as service:
        gate = await gate_decoding(monkeypatch, service, is_blocked=True)
        explaining = asyncio.ensure_future(
            service.client.post("/preprocess", files={"file": ("d.png", encode_png(images[0]))})
        )
        await wait_until(lambda: gate.calls == 1)
        held = service.state.batcher.reserved_units
        refused_prediction = await post_digit(service, images[1])
        refused_explanation = await service.client.post(
            "/preprocess", files={"file": ("d.png", encode_png(images[2]))}
        )
        decoded_before_release = gate.calls
        gate.release.set()
        explained = await explaining
        after = await post_digit(service, images[3])
    assert held == 1  # the decoding /preprocess holds room like a prediction
    assert refused_prediction.status_code == 503 and refused_prediction.json()["code"] == "queue_full"
    assert refused_explanation.status_code == 503 and refused_explanation.headers["retry-after"] == "1"
    assert decoded_before_release == 1  # neither refusal was decoded
    assert explained.status_code == 200 and explained.headers["content-type"] == "image/png"
    assert after.status_code == 200 and service.state.batcher.reserved_units == 0


async def test_a_batch_that_needs_more_decoding_work_than_the_queue_holds_is_refused_undecoded(
    make_settings, monkeypatch, mnist_test_samples
):
    images, _ = mnist_test_samples
    # One unit per 64 bytes of decoding memory: each 28x28 upload costs a dozen units or more.
    settings = make_settings(
        queue_max_size=64, batch_max_files=32, batch_max_size=32, image_cost_unit_bytes=64
    )
    async with run_service(settings) as service:
        gate = await gate_decoding(monkeypatch, service, is_blocked=False)
        files = [("files", (f"{i}.png", encode_png(image))) for i, image in enumerate(images[:32])]
        refused = await service.client.post("/predict/batch", files=files)
        accepted = await service.client.post("/predict/batch", files=files[:1])
    assert refused.status_code == 413 and refused.json()["code"] == "payload_too_large"
    assert "send fewer or smaller images" in refused.json()["detail"]
    assert accepted.status_code == 200 and gate.calls == 1  # only the accepted upload was decoded
