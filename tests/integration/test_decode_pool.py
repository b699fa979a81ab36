"""Decode workers: real processes that can be stopped, each task within a time and memory budget."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from PIL import Image

from app.pipeline.decode_pool import DecodeBudget, DecodePool
from app.pipeline.image_header import DecodeLimits, inspect_image
from app.pipeline.prepare import prepare_digit
from digits.errors import (
    ImageTooComplexError,
    ImageTooLargeError,
    NoDigitFoundError,
    ServiceNotReadyError,
    UndecodableImageError,
)
from testkit.images import encode_with_pillow
from testkit.worker_tasks import (
    allocate,
    die_by,
    heap_bytes_kept_after_an_upload,
    is_process_alive,
    pid_after,
    pids_of_overlapping_calls,
    refuse_the_image,
)

pytestmark = pytest.mark.integration

MEBIBYTE_BYTES = 1024 * 1024
LIVENESS_TIMEOUT_SECONDS = 30.0


@pytest.fixture
async def pool():
    decode_pool = DecodePool(DecodeBudget(worker_count=2, task_timeout_seconds=1.0))
    yield decode_pool
    await decode_pool.shutdown()


async def test_a_task_runs_in_another_process_and_domain_errors_come_back_as_they_are(pool):
    assert await pool.run(pid_after, 0) != os.getpid()
    with pytest.raises(NoDigitFoundError, match="blank page"):
        await pool.run(refuse_the_image, "blank page")


async def test_no_more_tasks_run_at_once_than_there_are_workers(pool):
    pids = await asyncio.gather(*(pool.run(pid_after, 0.2) for _ in range(6)))
    assert len(set(pids)) <= 2  # one worker may still be starting on a loaded machine


@pytest.fixture
async def one_worker_pool():
    """One worker, so that calls sent while it is busy wait and then go to it together."""
    sizes: list[int] = []
    decode_pool = DecodePool(
        DecodeBudget(worker_count=1, task_timeout_seconds=1.0, calls_per_task=4),
        observe_task_size=sizes.append,
    )
    decode_pool.task_sizes = sizes
    yield decode_pool
    await decode_pool.shutdown()


async def test_calls_waiting_for_a_worker_go_to_it_together_each_with_its_own_answer(one_worker_pool):
    pool = one_worker_pool
    busy = asyncio.ensure_future(pool.run(pid_after, 0.3))
    await asyncio.sleep(0.1)
    waiting = [pool.run(pid_after, 0) for _ in range(5)] + [pool.run(refuse_the_image, "blank page")]
    outcomes = await asyncio.gather(busy, *waiting, return_exceptions=True)
    assert pool.task_sizes == [1, 4, 2]  # at most calls_per_task a task, in the order they came
    assert len(set(outcomes[:6])) == 1 and isinstance(outcomes[6], NoDigitFoundError)


async def test_a_call_run_alone_shares_its_task_with_no_other(one_worker_pool):
    pool = one_worker_pool
    busy = asyncio.ensure_future(pool.run(pid_after, 0.3))
    await asyncio.sleep(0.1)
    waiting = [
        pool.run(pid_after, 0),
        pool.run(pid_after, 0),
        pool.run_alone(pid_after, 0),
        pool.run(pid_after, 0),
    ]
    await asyncio.gather(busy, *waiting)
    assert pool.task_sizes == [1, 2, 1, 1]  # in the order they came: the one alone splits the others


async def test_a_call_past_the_time_budget_fails_alone_and_the_calls_sent_with_it_are_answered(
    one_worker_pool,
):
    pool = one_worker_pool
    busy = asyncio.ensure_future(pool.run(pid_after, 0.3))
    await asyncio.sleep(0.1)
    slow, *quick = await asyncio.wait_for(
        asyncio.gather(
            pool.run(pid_after, 60), *(pool.run(pid_after, 0) for _ in range(3)), return_exceptions=True
        ),
        LIVENESS_TIMEOUT_SECONDS,
    )
    await busy
    assert isinstance(slow, ImageTooComplexError)
    assert all(isinstance(pid, int) for pid in quick)
    assert pool.task_sizes == [1, 4, 1, 1, 1, 1]  # the whole task timed out: each call ran again alone


async def test_a_crash_fails_only_the_call_that_caused_it(one_worker_pool):
    pool = one_worker_pool
    busy = asyncio.ensure_future(pool.run(pid_after, 0.3))
    await asyncio.sleep(0.1)
    quick, crashed, later = await asyncio.wait_for(
        asyncio.gather(
            pool.run(pid_after, 0),
            pool.run(die_by, signal.SIGSEGV),
            pool.run(pid_after, 0),
            return_exceptions=True,
        ),
        LIVENESS_TIMEOUT_SECONDS,
    )
    await busy
    assert isinstance(crashed, UndecodableImageError)
    assert isinstance(quick, int) and isinstance(later, int)


async def test_a_task_runs_on_while_one_of_its_callers_is_waiting(one_worker_pool):
    pool = one_worker_pool
    busy = asyncio.ensure_future(pool.run(pid_after, 0.3))
    await asyncio.sleep(0.1)
    gone = asyncio.ensure_future(pool.run(pid_after, 0.3))
    staying = asyncio.ensure_future(pool.run(pid_after, 0.3))
    await asyncio.sleep(0.4)  # both are in the worker's second task now
    gone.cancel()
    assert (
        await asyncio.wait_for(staying, LIVENESS_TIMEOUT_SECONDS) == await busy
    )  # the same worker, not killed
    assert pool.task_sizes == [1, 2]


async def test_a_task_past_its_time_budget_is_killed_and_answered_and_the_pool_goes_on(pool):
    worker_pid = await pool.run(pid_after, 0)
    with pytest.raises(ImageTooComplexError, match="longer than 1 s"):
        await asyncio.wait_for(pool.run(pid_after, 60), LIVENESS_TIMEOUT_SECONDS)
    pids = await asyncio.wait_for(
        asyncio.gather(*(pool.run(pid_after, 0.05) for _ in range(4))), LIVENESS_TIMEOUT_SECONDS
    )
    assert all(pid != worker_pid or is_process_alive(pid) for pid in pids)


@pytest.fixture
async def patient_pool():
    """A pool whose time budget (120 s) is longer than any test: only cancelling can stop a task."""
    decode_pool = DecodePool(DecodeBudget(worker_count=2, task_timeout_seconds=120.0))
    yield decode_pool
    await decode_pool.shutdown()


async def test_cancelling_the_caller_kills_the_running_task(patient_pool):
    pool = patient_pool
    await pool.run(pid_after, 0)  # both workers up
    running = asyncio.ensure_future(pool.run(pid_after, 60))
    await asyncio.sleep(0.3)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    # The pool replaces the killed worker: once the replacement has started (its start-up time
    # depends on the machine's load, so the pair is retried until then), a call sent while another
    # runs finds the second worker. A worker still busy with the 60 s task would leave only one for
    # the whole bound.
    async with asyncio.timeout(LIVENESS_TIMEOUT_SECONDS):
        while len(set(await pids_of_overlapping_calls(pool, 2))) < 2:
            await asyncio.sleep(0.1)


async def test_a_task_over_the_memory_budget_fails_inside_its_worker_not_the_machine():
    budget = DecodeBudget(
        worker_count=1, task_timeout_seconds=10.0, worker_memory_max_bytes=1024 * MEBIBYTE_BYTES
    )
    decode_pool = DecodePool(budget)
    try:
        with pytest.raises(MemoryError):
            await decode_pool.run(allocate, 2048 * MEBIBYTE_BYTES)
        assert await decode_pool.run(allocate, 16 * MEBIBYTE_BYTES) > 0  # the worker serves on
    finally:
        await decode_pool.shutdown()


@pytest.mark.parametrize(
    ("signal_number", "error"),
    [(signal.SIGSEGV, UndecodableImageError), (signal.SIGABRT, UndecodableImageError)]
    + [(signal.SIGKILL, ImageTooLargeError), (signal.SIGTERM, ServiceNotReadyError)],
)
async def test_a_worker_that_dies_is_answered_by_what_killed_it_and_replaced(pool, signal_number, error):
    # A decoder's crash is the file's fault (400), the OOM killer's SIGKILL its size (413), a SIGTERM
    # not the image's fault (503, retry).
    with pytest.raises(error):
        await asyncio.wait_for(pool.run(die_by, signal_number), LIVENESS_TIMEOUT_SECONDS)
    assert await asyncio.wait_for(pool.run(pid_after, 0), LIVENESS_TIMEOUT_SECONDS) != os.getpid()


@pytest.mark.parametrize(
    ("image_format", "mode", "side_pixels", "options"),
    [("PNG", "RGB", 4000, {}), ("PNG", "L", 6300, {}), ("JPEG", "RGB", 6000, {"progressive": True})],
)
async def test_the_largest_images_the_decode_budget_admits_are_prepared_within_the_default_memory(
    image_format, mode, side_pixels, options
):
    # Each is within 20 % of the 128 MiB decoded-bytes limit; a digit-free page, so the answer is
    # the preprocessing's "no digit" and not the worker's memory error.
    image = Image.new(mode, (side_pixels, side_pixels), "white")
    data = encode_with_pillow(image, image_format, **options)
    limits = DecodeLimits()
    assert inspect_image(data, limits).decoded_bytes > 0.8 * limits.max_decoded_bytes
    decode_pool = DecodePool(DecodeBudget(task_timeout_seconds=60.0))
    try:
        with pytest.raises(NoDigitFoundError):
            await decode_pool.run(prepare_digit, data, limits)
    finally:
        await decode_pool.shutdown()


async def test_a_stopped_pool_answers_not_ready():
    decode_pool = DecodePool(DecodeBudget(worker_count=1))
    await decode_pool.shutdown()
    with pytest.raises(ServiceNotReadyError):
        await decode_pool.run(pid_after, 0)


async def test_a_broken_pool_is_replaced_and_the_next_upload_is_served(pool):
    await pool.run(pid_after, 0)
    pool._pool.stop()  # what pebble's pool becomes after a worker dies outside any task
    pool._pool.join()
    assert await asyncio.wait_for(pool.run(pid_after, 0), LIVENESS_TIMEOUT_SECONDS) > 0


async def test_calls_held_by_a_pool_that_broke_are_answered_and_the_next_ones_served(pool):
    running = asyncio.ensure_future(pool.run(pid_after, 0.5))
    await asyncio.sleep(0.1)
    pool._pool.stop()  # the pool breaks while a task of it runs
    pool._pool.join()
    assert await asyncio.wait_for(pool.run(pid_after, 0), LIVENESS_TIMEOUT_SECONDS) > 0
    outcome = (
        await asyncio.wait_for(asyncio.gather(running, return_exceptions=True), LIVENESS_TIMEOUT_SECONDS)
    )[0]
    assert isinstance(outcome, (int, ServiceNotReadyError))


async def test_every_worker_keeps_its_freed_image_buffers_for_the_next_upload(pool):
    # Five 1 MiB buffers freed at once stay in the heap (an untuned process keeps under 4 MiB:
    # tests/unit/app/pipeline/test_allocator.py).
    assert await pool.run(heap_bytes_kept_after_an_upload) >= 5 << 20
