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

from app.pipeline import batcher as batcher_module
from app.pipeline.batcher import BatcherConfig, MicroBatcher
from digits.errors import ModelError, PayloadTooLargeError, QueueFullError, ServiceNotReadyError
from tests.waiting import wait_until

pytestmark = pytest.mark.unit

# A wait that no test sits out: a test that finishes proves that nothing waited for it.
MINUTE_MS = 60_000.0
LIVENESS_TIMEOUT_SECONDS = 5.0


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


class FakeClock:
    """Stands in for the `time` module: `perf_counter` runs `skipped_seconds` ahead of the real one."""

    def __init__(self, now_seconds: float, skipped_seconds: float) -> None:
        self.offset_seconds = now_seconds + skipped_seconds - time.perf_counter()

    def perf_counter(self) -> float:
        return time.perf_counter() + self.offset_seconds


def image(number: float) -> np.ndarray:
    return np.array([number], dtype=np.float32)


async def started(model: FakeModel, **limits) -> MicroBatcher:
    config = BatcherConfig(**{"batch_max_size": 8, "batch_max_wait_ms": 20.0, "queue_max_size": 64, **limits})
    batcher = MicroBatcher(model, config)
    batcher.start()
    return batcher


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


async def test_a_lone_image_leaves_at_once_when_no_room_is_reserved_for_others():
    model = FakeModel()
    batcher = await started(model, batch_max_wait_ms=MINUTE_MS)
    output = await asyncio.wait_for(batcher.submit(image(1)), LIVENESS_TIMEOUT_SECONDS)  # not a minute
    await batcher.stop()
    assert output.tolist() == [1, 2]
    assert model.batch_sizes == [1]


async def test_a_request_of_several_images_does_not_wait_after_its_last_image():
    model = FakeModel()
    batcher = await started(model, batch_max_wait_ms=MINUTE_MS)
    with batcher.reserve(5) as reservation:
        submitted = reservation.submit_many([image(n) for n in range(5)])
        await asyncio.wait_for(submitted, LIVENESS_TIMEOUT_SECONDS)
    await batcher.stop()
    assert model.batch_sizes == [5]


async def test_the_batch_waits_for_images_whose_room_is_reserved():
    model = FakeModel()
    batcher = await started(model, batch_max_wait_ms=MINUTE_MS)

    async def decoded_later(number: int) -> np.ndarray:  # one request, as the service runs it
        with batcher.reserve(1) as reservation:
            await asyncio.sleep(0.02 * number)  # still being decoded
            return await reservation.submit(image(number))

    outputs = await asyncio.gather(*(decoded_later(n) for n in range(3)))
    await batcher.stop()
    assert [output[0] for output in outputs] == [0, 1, 2]
    assert model.batch_sizes == [3]


async def test_a_batch_stops_waiting_for_reserved_units_after_batch_max_wait_ms():
    model = FakeModel()
    batcher = await started(model, batch_max_wait_ms=50.0)
    with batcher.reserve(1), batcher.reserve(1) as reservation:  # the other request never submits
        output = await asyncio.wait_for(reservation.submit(image(1)), LIVENESS_TIMEOUT_SECONDS)
    await batcher.stop()
    assert output.tolist() == [1, 2]
    assert model.batch_sizes == [1]


async def test_room_for_uploads_that_failed_goes_back_when_the_others_are_submitted():
    model = FakeModel()
    batcher = await started(model, batch_max_wait_ms=MINUTE_MS, queue_max_size=4)
    with batcher.reserve(3) as reservation:  # one of the three uploads could not be decoded
        submitted = asyncio.ensure_future(reservation.submit_many([image(1), image(2)]))
        await asyncio.sleep(0)
        assert batcher.reserved_units == 0 and batcher.has_room(2)
        outputs = await asyncio.wait_for(submitted, LIVENESS_TIMEOUT_SECONDS)  # no wait for the third
    await batcher.stop()
    assert [output[0] for output in outputs] == [1, 2]
    assert model.batch_sizes == [2]


async def test_room_held_for_work_without_a_model_call_takes_room_but_is_not_waited_for():
    model = FakeModel()
    batcher = await started(model, batch_max_wait_ms=MINUTE_MS, queue_max_size=2)
    with batcher.reserve(1, is_for_model=False):  # a /preprocess decoding
        assert not batcher.has_room(2)
        output = await asyncio.wait_for(batcher.submit(image(3)), LIVENESS_TIMEOUT_SECONDS)
    await batcher.stop()
    assert output[0] == 3 and model.batch_sizes == [1]


async def test_images_that_waited_through_a_model_call_leave_without_a_second_wait(monkeypatch):
    model = FakeModel()
    model.release.clear()
    batcher = await started(model, batch_max_wait_ms=MINUTE_MS)
    first = asyncio.ensure_future(batcher.submit(image(1)))
    await wait_until(model.entered.is_set, timeout_seconds=2.0)
    with batcher.reserve(2) as reservation:  # one image queued, one still on its way
        queued = asyncio.ensure_future(reservation.submit(image(2)))
        await wait_until(lambda: batcher.queue_depth == 1)
        # The queued image has now waited longer than the wait while the model was busy.
        clock = FakeClock(time.perf_counter(), skipped_seconds=2 * MINUTE_MS / 1000)
        monkeypatch.setattr(batcher_module, "time", clock)
        model.release.set()
        outputs = await asyncio.wait_for(asyncio.gather(first, queued), LIVENESS_TIMEOUT_SECONDS)
    await batcher.stop()
    assert [output[0] for output in outputs] == [1, 2]
    assert model.batch_sizes == [1, 1]


async def test_full_batch_is_sent_without_waiting_for_the_deadline():
    model = FakeModel()
    batcher = await started(model, batch_max_size=4, batch_max_wait_ms=MINUTE_MS)
    with batcher.reserve(8) as reservation:  # more on their way, but the batch is full
        submitted = reservation.submit_many([image(n) for n in range(4)])
        await asyncio.wait_for(submitted, LIVENESS_TIMEOUT_SECONDS)
    await batcher.stop()
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


async def test_reserved_room_counts_against_the_queue_and_is_refused_at_once_when_taken():
    batcher = await started(FakeModel(), queue_max_size=4, queue_retry_after_seconds=3)
    with batcher.reserve(3):
        assert batcher.reserved_units == 3
        assert batcher.has_room(1) and not batcher.has_room(2)
        with pytest.raises(QueueFullError) as refused:
            with batcher.reserve(2):
                pass
        assert refused.value.retry_after_seconds == 3
        assert batcher.reserved_units == 3  # the refused reservation held nothing
    await batcher.stop()


async def test_room_held_is_released_when_the_block_ends_even_on_error():
    batcher = await started(FakeModel(), queue_max_size=2)
    with pytest.raises(RuntimeError):
        with batcher.reserve(2):
            raise RuntimeError("the upload could not be read")
    assert batcher.reserved_units == 0 and batcher.has_room(2)
    await batcher.stop()


async def test_a_reservation_is_never_refused_for_the_room_it_holds():
    model = FakeModel()
    model.release.clear()
    batcher = await started(model, batch_max_size=1, queue_max_size=2)
    in_flight = asyncio.ensure_future(batcher.submit(image(0)))
    await asyncio.to_thread(model.entered.wait, 2)
    with batcher.reserve(2) as reservation:
        with pytest.raises(QueueFullError):
            await batcher.submit(image(9))  # a request without room: refused
        submitted = asyncio.ensure_future(reservation.submit_many([image(1), image(2)]))
        await wait_until(lambda: batcher.queue_depth == 2)
        assert batcher.reserved_units == 0  # the room became queue entries
        model.release.set()
        outputs = await asyncio.gather(in_flight, submitted)
    await batcher.stop()
    assert outputs[0][0] == 0 and [output[0] for output in outputs[1]] == [1, 2]


async def test_submitting_more_images_than_reserved_is_a_programming_error():
    batcher = await started(FakeModel())
    with batcher.reserve(1) as reservation:
        with pytest.raises(ValueError, match="room reserved for 1"):
            await reservation.submit_many([image(1), image(2)])
    assert batcher.reserved_units == 0
    await batcher.stop()


async def test_a_costly_upload_holds_more_room_and_is_refused_when_it_does_not_fit():
    batcher = await started(FakeModel(), queue_max_size=8)
    with batcher.reserve(1) as large:
        large.add_cost(5)  # e.g. a 40-megapixel upload, once its header is read
        assert batcher.reserved_units == 6 and not batcher.has_room(3)
        with batcher.reserve(1) as another_large:
            with pytest.raises(QueueFullError):
                another_large.add_cost(5)
            assert batcher.reserved_units == 7  # its door unit stays held until its block ends
        output = await large.submit(image(4))
    assert batcher.reserved_units == 0 and output[0] == 4
    await batcher.stop()


async def test_the_queue_depth_seen_by_the_observer_counts_room_held_by_uploads_being_decoded():
    class DepthRecorder:
        def __init__(self) -> None:
            self.depths: list[int] = []

        def observe_batch(self, queue_wait_seconds, inference_seconds) -> None:
            list(queue_wait_seconds)

        def set_queue_depth(self, depth: int) -> None:
            self.depths.append(depth)

    recorder = DepthRecorder()
    batcher = MicroBatcher(FakeModel(), BatcherConfig(queue_max_size=64), recorder)
    batcher.start()
    with batcher.reserve(2) as reservation:
        reservation.add_cost(10)
        assert recorder.depths[-1] == 12  # nothing queued yet, but 12 units of work admitted
        await reservation.submit_many([image(1), image(2)])
    await batcher.stop()
    assert recorder.depths[-1] == 0


async def test_a_request_that_could_never_fit_is_refused_for_good_not_told_to_retry():
    batcher = await started(FakeModel(), queue_max_size=8)
    with batcher.reserve(2) as request:
        with pytest.raises(PayloadTooLargeError, match="at most 8 at once"):
            request.add_cost(7)  # 2 + 7 units > the whole queue: 413, where a 503 would loop forever
        assert batcher.reserved_units == 2
    await batcher.stop()


async def test_a_number_of_more_cut_outs_than_the_whole_queue_is_refused_for_good_in_its_own_words():
    batcher = await started(FakeModel(), queue_max_size=16)
    with batcher.reserve(1) as request:
        request.add_cost(3)  # its decoding
        request.add_images(8)  # a number's room at admission
        with pytest.raises(
            PayloadTooLargeError, match=r"takes 17 cut-outs .*beside 3 units of decoding.* at most 16"
        ):
            request.add_images(8)
        assert batcher.reserved_units == 12
    await batcher.stop()
