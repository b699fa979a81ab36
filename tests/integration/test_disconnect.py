"""A client that disconnects gets its work dropped: the decode in progress is killed, its room freed."""

from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import pytest
from PIL import Image

from app.api.inference import predict_upload
from digits.errors import ClientDisconnectedError
from testkit.images import encode_png
from testkit.worker_tasks import is_process_alive, pids_of_overlapping_calls
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

LIVENESS_TIMEOUT_SECONDS = 30.0


def slow_to_decode_jpeg() -> bytes:
    """A noisy 6000x6000 progressive JPEG: within every decode limit, and about 2 s of decoding here.

    25 MB: over the upload limit, which the request path below (called directly) does not check.
    """
    noise = np.random.default_rng(0).integers(0, 256, size=(6000, 6000), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG", quality=90, progressive=True)
    return buffer.getvalue()


class ClientThatLeaves:
    """The request's `receive` after its body: says nothing until the client disconnects."""

    def __init__(self) -> None:
        self.has_left = asyncio.Event()

    async def receive(self) -> dict:
        await self.has_left.wait()
        return {"type": "http.disconnect"}


async def test_a_disconnect_kills_the_decode_in_progress_and_frees_its_room(service):
    state = service.state
    worker_pids = set(await pids_of_overlapping_calls(state.decode_pool, 2))
    client = ClientThatLeaves()
    data = slow_to_decode_jpeg()
    request = asyncio.ensure_future(predict_upload(state, data, client.receive))
    await wait_until(lambda: state.batcher.reserved_units > 0)
    await asyncio.sleep(0.2)  # the decode is under way in a worker
    client.has_left.set()
    left_at = time.perf_counter()
    with pytest.raises(ClientDisconnectedError):
        await asyncio.wait_for(request, LIVENESS_TIMEOUT_SECONDS)
    answered_after_seconds = time.perf_counter() - left_at
    await wait_until(lambda: not all(is_process_alive(pid) for pid in worker_pids))
    assert state.batcher.reserved_units == 0
    assert answered_after_seconds < 1.0  # not after the rest of the decode
    # The killed worker was replaced: uploads are still served.
    response = await service.client.post(
        "/predict", files={"file": ("d.png", encode_png(np.eye(28, dtype=np.uint8) * 255))}
    )
    assert response.status_code in (200, 422)
