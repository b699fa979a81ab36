"""Which uploads may share a decode worker's task: those whose decode costs no more than a hand-off."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from testkit.images import encode_png

pytestmark = pytest.mark.integration


@pytest.fixture
def pool_calls(service, monkeypatch) -> list[str]:
    """The pool method ("run" or "run_alone") of every decode the service asks for, in order."""
    pool, calls = service.state.decode_pool, []
    for method_name in ("run", "run_alone"):
        method = getattr(pool, method_name)

        async def recorded(*args, method=method, method_name=method_name, **kwargs):
            calls.append(method_name)
            return await method(*args, **kwargs)

        monkeypatch.setattr(pool, method_name, recorded)
    return calls


def large_digit_photo() -> bytes:
    """A 1200x1200 colour PNG of a 7: 4.3 MB decoded, over the 1 MiB cost unit."""
    image = np.full((1200, 1200, 3), 235, dtype=np.uint8)
    cv2.line(image, (400, 300), (800, 300), (20, 20, 20), 40)
    cv2.line(image, (800, 300), (550, 900), (20, 20, 20), 40)
    return encode_png(image)


def small_digit(mnist_test_samples) -> bytes:
    return encode_png(mnist_test_samples[0][0])


async def test_a_small_upload_may_share_a_task_and_a_large_one_is_decoded_alone(
    service, pool_calls, mnist_test_samples
):
    small = await service.client.post(
        "/predict", files={"file": ("small.png", small_digit(mnist_test_samples))}
    )
    large = await service.client.post("/predict", files={"file": ("large.png", large_digit_photo())})
    assert (small.status_code, large.status_code) == (200, 200)
    assert pool_calls == ["run", "run_alone"]


async def test_each_file_of_a_batch_and_each_number_is_sent_by_its_own_cost(
    service, pool_calls, mnist_test_samples
):
    files = [
        ("files", ("large.png", large_digit_photo())),
        ("files", ("small.png", small_digit(mnist_test_samples))),
    ]
    batch = await service.client.post("/predict/batch", files=files)
    number = await service.client.post("/read", files={"file": ("n.png", small_digit(mnist_test_samples))})
    preview = await service.client.post("/preprocess", files={"file": ("large.png", large_digit_photo())})
    assert (batch.status_code, number.status_code, preview.status_code) == (200, 200, 200)
    assert pool_calls == ["run_alone", "run", "run", "run_alone"]
