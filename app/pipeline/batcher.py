"""Queued images (28, 28, 1) float32 -> batches of up to `batch_max_size` -> one model call -> rows (10,).

Dynamic micro-batching: concurrent requests are queued, and one worker task groups them into a single
call of `predict_fn`, which runs in a thread so that the event loop keeps accepting requests meanwhile.
The worker waits for the first image without a timeout, then fills the batch until it is full or
`batch_max_wait_ms` has passed since that image arrived; it never sleep-polls. It waits for companions
only while room is reserved for images on their way (being decoded): when none are, the batch leaves at
once, since at low load waiting could only add latency. One batch is in flight at a time: while the
model runs, new images accumulate and form the next batch, which leaves as soon as the model is free if
its first image has already waited its time. That is how batching adapts to load without tuning.

The batcher is the one owner of queue capacity. The queue is bounded, and room is taken before an
upload is decoded (`reserve`), so `queue_max_size` bounds the images on their way as well as those
waiting: a request is refused at once with `QueueFullError` (503 + Retry-After) rather than after its
decoding, because a client that retries later is better served than one whose request waits behind
seconds of backlog. Every future is resolved exactly once; a failing model call fails only its batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np

from app.pipeline.batch_observer import BatchObserver, NullObserver
from app.pipeline.queue_room import QueueRoom, Reservation
from digits.errors import ModelError, QueueFullError, ServiceNotReadyError

logger = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], np.ndarray]


@dataclass(eq=False)
class QueuedImage:
    """One image waiting for the model, and the future its request awaits."""

    image: np.ndarray
    future: asyncio.Future[np.ndarray]
    enqueued_at_seconds: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class BatcherConfig:
    """The batcher's limits (see `app.settings.Settings` for their meaning)."""

    batch_max_size: int = 32
    batch_max_wait_ms: float = 5.0
    queue_max_size: int = 256
    queue_retry_after_seconds: int = 1


class MicroBatcher:
    """Groups concurrently submitted images into batched calls of `predict_fn`.

    Args:
        predict_fn: (N, ...) array -> (N, ...) array, row i the result for image i; called in a
            worker thread, one call at a time.
        config: batch size, wait and queue limits.
        observer: receives queue depth and per-batch measurements; records nothing by default.
    """

    def __init__(
        self, predict_fn: PredictFn, config: BatcherConfig, observer: BatchObserver | None = None
    ) -> None:
        self._predict_fn = predict_fn
        self._config = config
        self._observer = observer or NullObserver()
        self._queue: asyncio.Queue[QueuedImage] = asyncio.Queue(maxsize=config.queue_max_size)
        self._room = QueueRoom(self._queue, config.queue_retry_after_seconds, self._observer.set_queue_depth)
        self._in_flight: list[QueuedImage] = []
        self._worker: asyncio.Task[None] | None = None
        self._model_thread: ThreadPoolExecutor | None = None
        self._last_call_finished_seconds = time.perf_counter()

    @property
    def is_running(self) -> bool:
        """Whether the worker accepts and processes images."""
        return self._worker is not None and not self._worker.done()

    @property
    def queue_depth(self) -> int:
        """Number of images waiting for a model call (the batch in flight not included)."""
        return self._queue.qsize()

    @property
    def reserved_units(self) -> int:
        """Units of queue room held by requests still preparing their uploads (see `reserve`)."""
        return self._room.reserved_units

    def stalled_seconds(self) -> float:
        """How long the oldest waiting image has waited with no model call finishing meanwhile; 0 if none.

        The progress clock of readiness: the batch being filled or in the model holds the oldest images.
        """
        if not self._in_flight:
            return 0.0
        since_seconds = max(self._in_flight[0].enqueued_at_seconds, self._last_call_finished_seconds)
        return max(0.0, time.perf_counter() - since_seconds)

    def has_room(self, unit_count: int = 1) -> bool:
        """Whether `unit_count` more units fit beside the images queued and the units held."""
        return self._room.has_room(unit_count)

    def queue_full_error(self) -> QueueFullError:
        """The refusal of a full queue (503), with the configured Retry-After."""
        return self._room.full_error()

    def reserve(self, image_count: int, *, is_for_model: bool = True) -> AbstractContextManager[Reservation]:
        """Holds a unit of room for each of `image_count` uploads while the caller prepares them.

        A `with` block. While room is reserved for images for the model, a forming batch waits (up to
        `batch_max_wait_ms`) for them. The reservation's `add_cost` holds more room for costly
        uploads; its `submit`/`submit_many` turn held room into queue entries; room still held when
        the block ends is released.

        Raises:
            QueueFullError: the queue lacks room for `image_count` images (raised at once).
        """
        return self._room.reserve(image_count, self, is_for_model=is_for_model)

    def start(self) -> None:
        """Starts the worker task on the running event loop."""
        if self.is_running:
            raise RuntimeError("the batcher is already running")
        # A thread of its own: in the shared pool, the model call would queue behind the decoding.
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digitserve-model")
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Stops the worker and fails every pending image with `ServiceNotReadyError` (503)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        if self._model_thread is not None:
            self._model_thread.shutdown(wait=False)  # a call in progress ends; its images fail below
            self._model_thread = None
        pending = self._in_flight + self._drain_queue()
        self._in_flight = []
        _fail(pending, lambda: ServiceNotReadyError("the service is shutting down; retry another instance"))
        self._observer.set_queue_depth(0)

    async def submit(self, image: np.ndarray) -> np.ndarray:
        """Queues one model input, e.g. (28, 28, 1) float32, and returns its output row, e.g. (10,).

        Raises:
            QueueFullError: the queue is at capacity (raised at once, nothing is queued).
            ServiceNotReadyError: the batcher is not running or stopped while the image waited.
            ModelError: the model call of this image's batch failed.
        """
        future = self._enqueue([image])[0]
        return await future

    async def submit_many(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Queues several model inputs as independent items and returns their rows in their order.

        They batch like single requests; all of them are queued or none.

        Raises:
            QueueFullError: the queue lacks room for all of `images`.
            ServiceNotReadyError: the batcher is not running or stopped while they waited.
            ModelError: a model call holding one of the images failed.
        """
        futures = self._enqueue(images)
        # return_exceptions keeps every future's outcome retrieved; the caller's cancellation
        # (a request deadline) still cancels the futures, and the worker then skips them.
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return outcomes

    def _enqueue(self, images: Sequence[np.ndarray]) -> list[asyncio.Future[np.ndarray]]:
        """Queues all of `images` or none; returns their futures (a lone image needs no `gather`)."""
        if not self.is_running:
            raise ServiceNotReadyError("the model is not ready yet")
        if not self.has_room(len(images)):
            raise self.queue_full_error()
        loop = asyncio.get_running_loop()
        queued = [QueuedImage(image=image, future=loop.create_future()) for image in images]
        for item in queued:
            self._queue.put_nowait(item)
        self._observer.set_queue_depth(self._room.used_units)
        return [item.future for item in queued]

    async def _run(self) -> None:
        while True:
            batch = await self._collect_batch()
            try:
                if batch:
                    await self._run_batch(batch)
            except Exception:
                # A bug past the model call (an observer, a result row) must not kill the worker,
                # or every later request would hang until its deadline.
                logger.exception("batcher failed after the model call")
                _fail(batch, lambda: ModelError("the batcher failed on this batch"))
                self._in_flight = []

    async def _collect_batch(self) -> list[QueuedImage]:
        first = await self._queue.get()
        batch = [first]
        # Held in `_in_flight` from now on, so that `stop()` fails these images too.
        self._in_flight = batch
        # The wait counts from the first image's arrival (as Triton's queue delay does), not from
        # when the worker took it: images that queued up during the previous model call leave at
        # once with whatever else is queued, instead of idling the model for another full wait.
        waited_seconds = time.perf_counter() - first.enqueued_at_seconds
        remaining_seconds = max(0.0, self._config.batch_max_wait_ms / 1000 - waited_seconds)
        deadline = asyncio.get_running_loop().time() + remaining_seconds
        # One timeout for the whole fill, not one `wait_for` (a task and a timer) per image; `get()`
        # takes queued images without suspending, and a cancelled `get()` leaves its image queued.
        try:
            async with asyncio.timeout_at(deadline):
                while len(batch) < self._config.batch_max_size:
                    if self._queue.empty() and not self._room.images_on_their_way:
                        break  # no image on its way: waiting would only delay those taken
                    batch.append(await self._queue.get())
        except TimeoutError:
            pass
        self._observer.set_queue_depth(self._room.used_units)
        # A request that timed out or disconnected while queued does not cost a model slot.
        self._in_flight = [item for item in batch if not item.future.done()]
        return self._in_flight

    async def _run_batch(self, batch: list[QueuedImage]) -> None:
        started_seconds = time.perf_counter()
        try:
            # TensorFlow releases the GIL: the event loop keeps serving while the model runs.
            images = [item.image for item in batch]
            loop = asyncio.get_running_loop()
            outputs = await loop.run_in_executor(self._model_thread, self._stack_and_predict, images)
            if len(outputs) != len(batch):
                raise ModelError(f"the model returned {len(outputs)} results for {len(batch)} images")
        except Exception as error:
            logger.exception("model call failed", extra={"fields": {"batch_size": len(batch)}})
            detail = error.detail if isinstance(error, ModelError) else "the model failed on this batch"
            self._in_flight = []
            _fail(batch, lambda: ModelError(detail))
            return
        self._in_flight = []
        finished_seconds = time.perf_counter()
        self._observer.observe_batch(
            (started_seconds - item.enqueued_at_seconds for item in batch),
            finished_seconds - started_seconds,
        )
        for item, output in zip(batch, outputs, strict=True):
            if not item.future.done():
                item.future.set_result(output)

    def _stack_and_predict(self, images: list[np.ndarray]) -> np.ndarray:
        # Runs in the worker thread: the copy into one batch array is off the event loop too.
        try:
            return self._predict_fn(np.stack(images))
        finally:
            self._last_call_finished_seconds = time.perf_counter()  # answered or raised: not stalled

    def _drain_queue(self) -> list[QueuedImage]:
        return [self._queue.get_nowait() for _ in range(self._queue.qsize())]


def _fail(items: Iterable[QueuedImage], make_error: Callable[[], Exception]) -> None:
    # One exception object per future: each request raises (and annotates) its own.
    for item in items:
        if not item.future.done():
            item.future.set_exception(make_error())
