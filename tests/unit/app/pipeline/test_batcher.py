"""MicroBatcher groups concurrent submits into few model calls, bounded in size, wait and queue length.

The model is a fake `predict_fn` that records each call's batch and answers row i with a function of
image i, so that every test can check that each caller got its own answer back.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from app.pipeline.batcher import BatcherConfig, MicroBatcher
from digits.errors import ModelError, QueueFullError, ServiceNotReadyError

pytestmark = pytest.mark.unit


class FakeModel:
    """Answers each image (a 1-element array holding a number n) with [n, 2n]; records batch sizes."""

    def __init__(self, *, fail_on_call: int | None = None, outputs_dropped: int = 0) -> None:
        self.batch_sizes: list[int] = []
        self.fail_on_call = fail_on_call
        self.outputs_dropped = outputs_dropped
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.release.wait(timeout=5)
        self.batch_sizes.append(len(images))
        if self.fail_on_call == len(self.batch_sizes):
            raise RuntimeError("simulated model failure")
        outputs = np.concatenate([images, images * 2], axis=1)
        return outputs[: len(outputs) - self.outputs_dropped]


def image(number: float) -> np.ndarray:
    return np.array([number], dtype=np.float32)


async def started(model: FakeModel, images_on_the_way=None, **limits) -> MicroBatcher:
    config = BatcherConfig(**{"batch_max_size": 8, "batch_max_wait_ms": 20.0, "queue_max_size": 64, **limits})
    batcher = MicroBatcher(model, config, images_on_the_way=images_on_the_way)
    batcher.start()
    return batcher


async def wait_until(condition, timeout_seconds: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.001)


async def test_concurrent_submits_share_model_calls_and_each_gets_its_own_row():
    model = FakeModel()
    batcher = await started(model)
    outputs = await asyncio.gather(*(batcher.submit(image(n)) for n in range(20)))
    await batcher.stop()
    assert [output.tolist() for output in outputs] == [[n, 2 * n] for n in range(20)]
    assert sum(model.batch_sizes) == 20
    assert len(model.batch_sizes) <= 4  # 20 images in batches of at most 8: 3 calls, 4 at worst


async def test_batches_never_exceed_batch_max_size():
    model = FakeModel()
    batcher = await started(model, batch_max_size=4)
    await asyncio.gather(*(batcher.submit(image(n)) for n in range(30)))
    await batcher.stop()
    assert max(model.batch_sizes) == 4
    assert sum(model.batch_sizes) == 30


async def test_submit_many_keeps_upload_order_and_batches_like_single_submits():
    model = FakeModel()
    batcher = await started(model, batch_max_size=4)
    outputs = await batcher.submit_many([image(n) for n in range(10)])
    await batcher.stop()
    assert [output[0] for output in outputs] == list(range(10))
    assert model.batch_sizes == [4, 4, 2]


async def test_lone_image_waits_at_most_batch_max_wait_ms():
    model = FakeModel()
    batcher = await started(model, batch_max_wait_ms=50.0)
    started_seconds = time.perf_counter()
    await batcher.submit(image(1))
    elapsed_seconds = time.perf_counter() - started_seconds
    await batcher.stop()
    assert model.batch_sizes == [1]
    assert 0.045 <= elapsed_seconds < 0.5


async def test_lone_image_leaves_at_once_when_no_other_image_is_on_its_way():
    model = FakeModel()
    batcher = await started(model, images_on_the_way=lambda: 0, batch_max_wait_ms=500.0)
    started_seconds = time.perf_counter()
    await batcher.submit(image(1))
    elapsed_seconds = time.perf_counter() - started_seconds
    await batcher.stop()
    assert model.batch_sizes == [1]
    assert elapsed_seconds < 0.25  # not the 500 ms wait


async def test_a_request_of_several_images_does_not_wait_after_its_last_image():
    model = FakeModel()
    batcher = await started(model, images_on_the_way=lambda: 0, batch_max_wait_ms=500.0)
    started_seconds = time.perf_counter()
    await batcher.submit_many([image(n) for n in range(5)])
    elapsed_seconds = time.perf_counter() - started_seconds
    await batcher.stop()
    assert model.batch_sizes == [5]
    assert elapsed_seconds < 0.25


async def test_the_batch_waits_for_images_still_being_decoded():
    model = FakeModel()
    decoding = {"images": 1}
    batcher = await started(model, images_on_the_way=lambda: decoding["images"], batch_max_wait_ms=500.0)

    async def decoded_later() -> np.ndarray:
        await asyncio.sleep(0.05)
        decoding["images"] = 0  # admission hands the image to the batcher, as the service does
        return await batcher.submit(image(2))

    await asyncio.gather(batcher.submit(image(1)), decoded_later())
    await batcher.stop()
    assert model.batch_sizes == [2]


async def test_images_arriving_within_the_wait_join_the_same_batch():
    model = FakeModel()
    batcher = await started(model, batch_max_wait_ms=200.0)

    async def submit_later(number: int) -> np.ndarray:
        await asyncio.sleep(0.02 * number)
        return await batcher.submit(image(number))

    await asyncio.gather(*(submit_later(n) for n in range(3)))
    await batcher.stop()
    assert model.batch_sizes == [3]


async def test_images_that_waited_through_a_model_call_leave_without_a_second_wait():
    model = FakeModel()
    model.release.clear()
    batcher = await started(model, batch_max_wait_ms=300.0)
    first = asyncio.ensure_future(batcher.submit(image(1)))
    await wait_until(model.entered.is_set, timeout_seconds=2.0)
    queued = asyncio.ensure_future(batcher.submit(image(2)))
    await asyncio.sleep(0.35)  # longer than the wait: image 2 has had its time in the queue
    released_seconds = time.perf_counter()
    model.release.set()
    await asyncio.gather(first, queued)
    elapsed_seconds = time.perf_counter() - released_seconds
    await batcher.stop()
    assert model.batch_sizes == [1, 1]
    assert elapsed_seconds < 0.2  # not another 300 ms of waiting for companions


async def test_full_batch_is_sent_without_waiting_for_the_deadline():
    model = FakeModel()
    batcher = await started(model, batch_max_size=4, batch_max_wait_ms=5000.0)
    started_seconds = time.perf_counter()
    await asyncio.gather(*(batcher.submit(image(n)) for n in range(4)))
    await batcher.stop()
    assert time.perf_counter() - started_seconds < 1.0
    assert model.batch_sizes == [4]


async def test_full_queue_refuses_at_once_with_retry_after():
    model = FakeModel()
    model.release.clear()
    batcher = await started(model, batch_max_size=1, queue_max_size=2, queue_retry_after_seconds=3)
    in_flight = asyncio.ensure_future(batcher.submit(image(0)))
    await asyncio.to_thread(model.entered.wait, 2)
    queued = [asyncio.ensure_future(batcher.submit(image(n))) for n in (1, 2)]
    await wait_until(lambda: batcher.queue_depth == 2)
    with pytest.raises(QueueFullError) as refused:
        await batcher.submit(image(3))
    assert refused.value.retry_after_seconds == 3
    model.release.set()
    outputs = await asyncio.gather(in_flight, *queued)
    await batcher.stop()
    assert [output[0] for output in outputs] == [0, 1, 2]


async def test_submit_many_queues_all_images_or_none():
    model = FakeModel()
    model.release.clear()
    batcher = await started(model, batch_max_size=1, queue_max_size=3)
    in_flight = asyncio.ensure_future(batcher.submit(image(0)))
    await asyncio.to_thread(model.entered.wait, 2)
    queued = asyncio.ensure_future(batcher.submit(image(1)))
    await wait_until(lambda: batcher.queue_depth == 1)
    with pytest.raises(QueueFullError):
        await batcher.submit_many([image(n) for n in range(3)])
    assert batcher.queue_depth == 1
    model.release.set()
    await asyncio.gather(in_flight, queued)
    await batcher.stop()


async def test_model_error_fails_only_its_batch_and_the_next_batch_succeeds():
    model = FakeModel(fail_on_call=1)
    batcher = await started(model, batch_max_size=4)
    first = await asyncio.gather(*(batcher.submit(image(n)) for n in range(4)), return_exceptions=True)
    second = await asyncio.gather(*(batcher.submit(image(n)) for n in range(4)))
    await batcher.stop()
    assert all(isinstance(outcome, ModelError) for outcome in first)
    assert len({id(outcome) for outcome in first}) == 4  # one exception object per request
    assert [output[0] for output in second] == [0, 1, 2, 3]
    assert model.batch_sizes == [4, 4]


async def test_wrong_number_of_model_outputs_is_a_model_error():
    model = FakeModel(outputs_dropped=1)
    batcher = await started(model)
    outcomes = await asyncio.gather(*(batcher.submit(image(n)) for n in range(3)), return_exceptions=True)
    await batcher.stop()
    assert all(isinstance(outcome, ModelError) for outcome in outcomes)
    assert "2 results for 3 images" in outcomes[0].detail


async def test_cancelled_request_does_not_take_a_batch_slot():
    model = FakeModel()
    model.release.clear()
    batcher = await started(model, batch_max_size=1)
    in_flight = asyncio.ensure_future(batcher.submit(image(0)))
    await asyncio.to_thread(model.entered.wait, 2)
    abandoned = asyncio.ensure_future(batcher.submit(image(1)))
    kept = asyncio.ensure_future(batcher.submit(image(2)))
    await wait_until(lambda: batcher.queue_depth == 2)
    abandoned.cancel()
    model.release.set()
    outputs = await asyncio.gather(in_flight, kept)
    await batcher.stop()
    assert [output[0] for output in outputs] == [0, 2]
    assert model.batch_sizes == [1, 1]


async def test_request_deadline_cancels_only_that_request():
    model = FakeModel()
    model.release.clear()
    batcher = await started(model, batch_max_size=2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(batcher.submit(image(0)), timeout=0.05)
    model.release.set()
    assert (await batcher.submit(image(5)))[0] == 5
    await batcher.stop()


async def test_stop_fails_queued_and_in_flight_images_with_service_not_ready():
    model = FakeModel()
    model.release.clear()
    batcher = await started(model, batch_max_size=1)
    in_flight = asyncio.ensure_future(batcher.submit(image(0)))
    await asyncio.to_thread(model.entered.wait, 2)
    queued = asyncio.ensure_future(batcher.submit(image(1)))
    await wait_until(lambda: batcher.queue_depth == 1)
    await batcher.stop()
    model.release.set()
    outcomes = await asyncio.gather(in_flight, queued, return_exceptions=True)
    assert all(isinstance(outcome, ServiceNotReadyError) for outcome in outcomes)
    assert not batcher.is_running


async def test_submit_before_start_or_after_stop_is_refused():
    batcher = MicroBatcher(FakeModel(), BatcherConfig())
    with pytest.raises(ServiceNotReadyError):
        await batcher.submit(image(0))
    batcher.start()
    await batcher.stop()
    with pytest.raises(ServiceNotReadyError):
        await batcher.submit(image(0))


async def test_observer_sees_every_batch_and_the_queue_depth():
    class RecordingObserver:
        def __init__(self) -> None:
            self.batches: list[tuple[list[float], float]] = []
            self.depths: list[int] = []

        def observe_batch(self, queue_wait_seconds, inference_seconds) -> None:
            self.batches.append((list(queue_wait_seconds), inference_seconds))

        def set_queue_depth(self, depth: int) -> None:
            self.depths.append(depth)

    observer = RecordingObserver()
    batcher = MicroBatcher(FakeModel(), BatcherConfig(batch_max_size=4, batch_max_wait_ms=20.0), observer)
    batcher.start()
    await asyncio.gather(*(batcher.submit(image(n)) for n in range(6)))
    await batcher.stop()
    assert sorted(len(waits) for waits, _ in observer.batches) == [2, 4]
    assert all(wait >= 0 for waits, _ in observer.batches for wait in waits)
    assert max(observer.depths) >= 2 and observer.depths[-1] == 0
