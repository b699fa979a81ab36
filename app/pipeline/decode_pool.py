"""Blocking image work (decode, preprocess) -> awaited off the event loop, in worker processes that can
be stopped: past its time budget, or once its client has gone, a task's worker is killed and replaced.

A thread cannot be stopped once a decoder is inside C code: a hostile upload would keep it busy (and
its memory held) for as long as the decoder likes. A process can be killed, and its memory goes back
to the system with it. Each worker also runs under an address-space limit, so a decode that would
outgrow its memory budget fails with MemoryError (a 413) instead of taking the machine's memory.

Workers are forked from a fork server that has already imported the image libraries: the service
process itself runs TensorFlow's threads and must not fork, and a replacement worker is ready in
milliseconds instead of the half second an import of OpenCV takes. The pool is the service's own
(created and shut down by the lifespan, like the batcher's model thread).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from concurrent.futures import TimeoutError as FuturesTimeoutError
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from pebble import ProcessExpired, ProcessPool

from app.pipeline.allocator import keep_freed_memory_for_reuse
from digits.errors import (
    DigitServeError,
    ImageTooComplexError,
    ImageTooLargeError,
    ServiceNotReadyError,
    UndecodableImageError,
)

logger = logging.getLogger(__name__)

Parameters = ParamSpec("Parameters")
Result = TypeVar("Result")
# Imported once by the fork server, so that every worker starts with them loaded.
PRELOADED_MODULES = ["app.pipeline.decode", "app.pipeline.preprocess", "app.pipeline.prepare"]
_SINGLE_THREAD_ENVIRONMENT = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Signals a process gets from its own faulty C code (what a decoder does on bytes it mishandles).
_DECODER_CRASH_SIGNALS = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL}
)


@dataclass(frozen=True)
class DecodeBudget:
    """The workers and what one task may cost one (`app.settings.Settings` says what each means)."""

    worker_count: int = 2
    task_timeout_seconds: float = 3.0
    worker_memory_max_bytes: int = 768 * 1024 * 1024
    opencv_threads: int = 1
    # A new worker costs ~0.23 s of CPU (the fork server's fork, the worker's start, its first decode's
    # lazy set-up): recycled every 1,000 uploads, that was 0.23 ms of every 28x28 PNG's ~3.9 ms. The
    # allocator returns large freed buffers at once (`app.pipeline.allocator`), so a worker's memory
    # between recycles stays near its working set.
    tasks_per_worker: int = 10_000

    @classmethod
    def from_settings(cls, settings: DecodeBudgetSettings) -> DecodeBudget:
        """The budget the service's settings (`decode_workers`...) give."""
        return cls(
            worker_count=settings.decode_workers,
            task_timeout_seconds=settings.decode_timeout_seconds,
            worker_memory_max_bytes=settings.decode_worker_memory_max_bytes,
            opencv_threads=settings.opencv_threads,
        )


class DecodeBudgetSettings(Protocol):
    """The decode workers' settings: `app.settings.Settings` has them (the pipeline never imports it)."""

    decode_workers: int
    decode_timeout_seconds: float
    decode_worker_memory_max_bytes: int
    opencv_threads: int


def _start_worker(memory_max_bytes: int, opencv_threads: int) -> None:
    """Runs in each new worker: its memory limit, its allocator's reuse of freed buffers, and OpenCV's
    thread count (per process)."""
    import cv2

    # pebble stops a worker with SIGTERM and waits for it: the default action ends a worker stuck in
    # a decoder's C code at once, where a Python handler would wait for the C call to return.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_AS, (memory_max_bytes, memory_max_bytes))
    keep_freed_memory_for_reuse()
    cv2.setNumThreads(opencv_threads or -1)


class DecodePool:
    """Worker processes for the decode and preprocess stages.

    Args:
        budget: the number of workers and what one task may cost.
    """

    def __init__(self, budget: DecodeBudget) -> None:
        self.budget = budget
        # The fork server starts with this environment and preloads NumPy: one BLAS thread, or
        # OpenBLAS maps a stack per core in every worker (on a 64-core node, the address-space budget).
        for variable in _SINGLE_THREAD_ENVIRONMENT:
            os.environ.setdefault(variable, "1")
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(PRELOADED_MODULES)
        self._pool = self._start_pool()
        self._is_shut_down = False

    def _start_pool(self) -> ProcessPool:
        return ProcessPool(
            max_workers=self.budget.worker_count,
            # Recycling returns to the system what a worker's allocator keeps after large images.
            max_tasks=self.budget.tasks_per_worker,
            initializer=_start_worker,
            initargs=(self.budget.worker_memory_max_bytes, self.budget.opencv_threads),
            context=self._context,
        )

    def _schedule(self, function: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        timeout_seconds = self.budget.task_timeout_seconds
        try:
            return self._pool.schedule(function, args, kwargs, timeout=timeout_seconds)
        except RuntimeError:
            # pebble's pool breaks for good when a worker dies outside any task (a failed start, an
            # external kill): every later upload would fail, so a new pool replaces it, once.
            logger.warning("the decode workers' pool broke; starting a new one")
            self._pool.stop()
            self._pool = self._start_pool()
            return self._pool.schedule(function, args, kwargs, timeout=timeout_seconds)

    async def run(
        self, function: Callable[Parameters, Result], *args: Parameters.args, **kwargs: Parameters.kwargs
    ) -> Result:
        """Runs `function(*args, **kwargs)` in a worker and returns its result.

        `function` must be importable by name (a module-level function) and its arguments picklable.
        Cancelling the awaiting task (a disconnect, a request deadline) kills a running task's worker.

        Raises:
            ImageTooComplexError: the task ran past `task_timeout_seconds`; its worker was killed.
            UndecodableImageError: the worker crashed during the task (a decoder's fault on the bytes).
            ImageTooLargeError: the worker was killed during the task (out of memory).
            ServiceNotReadyError: the pool has been shut down, or its worker stopped (the service is
                stopping).
            Exception: whatever `function` raised (domain errors pass through as they are).
        """
        if self._is_shut_down:
            raise ServiceNotReadyError("the service is shutting down; retry another instance")
        future = self._schedule(function, args, kwargs)
        try:
            return await asyncio.wrap_future(future)
        except FuturesTimeoutError as error:
            raise ImageTooComplexError(
                f"the image took longer than {self.budget.task_timeout_seconds:g} s to decode; "
                "send a smaller or simpler image"
            ) from error
        except ProcessExpired as error:
            logger.warning("decode worker died", extra={"fields": {"exit_code": error.exitcode}})
            raise self._death_error(error.exitcode) from error

    def _death_error(self, exit_code: int | None) -> DigitServeError:
        """What to answer for a task whose worker died: the exit code says whose fault it was."""
        if self._is_shut_down:
            return ServiceNotReadyError("the service is shutting down; retry another instance")
        if exit_code == -signal.SIGTERM:  # a pool replaced, or a kill from outside: not the image's fault
            return ServiceNotReadyError("the decode worker was stopped; retry the request")
        if exit_code is not None and -exit_code in _DECODER_CRASH_SIGNALS:
            # A decoder's C code crashed on the file: bytes its header did not show as damaged, or an
            # allocation past the address-space limit that C code does not check (it aborts or
            # faults; Python's own allocations raise MemoryError, a 413, instead). The worker took
            # the crash; a new one serves the next upload.
            return UndecodableImageError(
                "the image decoder failed on this file: it is damaged, or needs more memory to decode "
                "than one upload may use"
            )
        # SIGKILL from outside: the kernel's OOM killer, the one outside killer that acts on its own.
        return ImageTooLargeError(
            "the image needs more memory to decode than one upload may use; send a smaller image"
        )

    async def warm_up(self) -> None:
        """Starts every worker before the first request needs one (the fork server's imports, once)."""
        await asyncio.gather(*(self.run(os.getpid) for _ in range(self.budget.worker_count)))

    async def shutdown(self) -> None:
        """Takes no new work, stops the workers (tasks still running are dropped) and waits for them."""
        self._is_shut_down = True
        self._pool.stop()
        await asyncio.to_thread(self._pool.join)
