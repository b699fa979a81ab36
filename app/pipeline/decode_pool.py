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

Under load, the calls that wait for a worker go to it together, as one task: a hand-off to a worker
(pickling, pipes, pebble's threads and locks on both sides) costs ~0.3 ms of CPU, more than
preparing a 28x28 PNG once the worker has it. A call whose work dwarfs that (a large image) is sent
with `run_alone`: no call sharing its task would be answered before it ends. A task holding several
calls answers each one on its own (its result or its error); when the whole task fails (its time
budget, a crash), every call in it is run again alone, so that only the upload at fault gets the
error.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
import signal
from collections import deque
from collections.abc import Callable
from concurrent.futures import BrokenExecutor
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
    calls_per_task: int = 8

    @classmethod
    def from_settings(cls, settings: DecodeBudgetSettings) -> DecodeBudget:
        """The budget the service's settings (`decode_workers`...) give."""
        return cls(
            worker_count=settings.decode_workers,
            task_timeout_seconds=settings.decode_timeout_seconds,
            worker_memory_max_bytes=settings.decode_worker_memory_max_bytes,
            opencv_threads=settings.opencv_threads,
            calls_per_task=settings.decode_uploads_per_task,
        )


class DecodeBudgetSettings(Protocol):
    """The decode workers' settings: `app.settings.Settings` has them (the pipeline never imports it)."""

    decode_workers: int
    decode_timeout_seconds: float
    decode_uploads_per_task: int
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


def run_calls(calls: list[tuple[Callable[..., Any], tuple, dict]]) -> list[tuple[bool, Any]]:
    """Runs in a worker: each call in turn -> (True, its result) or (False, the exception it raised)."""
    outcomes: list[tuple[bool, Any]] = []
    for function, args, kwargs in calls:
        try:
            outcomes.append((True, function(*args, **kwargs)))
        except Exception as error:  # the call's own failure (a domain error, MemoryError): its answer
            outcomes.append((False, error))
    return outcomes


@dataclass(eq=False)
class _Call:
    """One awaited call: what to run, and the future its caller awaits."""

    function: Callable[..., Any]
    args: tuple
    kwargs: dict
    future: asyncio.Future
    runs_alone: bool = False  # asked for (`run_alone`), or its shared task failed as a whole

    def as_task_item(self) -> tuple[Callable[..., Any], tuple, dict]:
        return self.function, self.args, self.kwargs


class DecodePool:
    """Worker processes for the decode and preprocess stages.

    Args:
        budget: the number of workers and what one task may cost.
        observe_task_size: called with the number of calls of each task sent to a worker (a metric).
    """

    def __init__(self, budget: DecodeBudget, observe_task_size: Callable[[int], None] | None = None) -> None:
        self.budget = budget
        self._observe_task_size = observe_task_size
        # Calls waiting for a worker, and the tasks the workers hold (at most one each, so that the
        # calls that arrive meanwhile wait here, where they can go to the next free worker together).
        self._waiting_calls: deque[_Call] = deque()
        self._tasks_in_flight: dict[Any, list[_Call]] = {}
        self._is_dispatch_scheduled = False
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
            self._replace_pool()
            return self._pool.schedule(function, args, kwargs, timeout=timeout_seconds)

    def _replace_pool(self) -> None:
        self._pool.stop()
        self._pool = self._start_pool()
        # The broken pool's tasks may never be answered: their calls are, and their workers are free.
        abandoned, self._tasks_in_flight = self._tasks_in_flight, {}
        for calls in abandoned.values():
            for call in calls:
                _settle(call.future, exception=ServiceNotReadyError("the decode worker was stopped; retry"))

    async def run(
        self, function: Callable[Parameters, Result], *args: Parameters.args, **kwargs: Parameters.kwargs
    ) -> Result:
        """Runs `function(*args, **kwargs)` in a worker and returns its result.

        `function` must be importable by name (a module-level function) and its arguments picklable.
        Cancelling the awaiting task (a disconnect, a request deadline) kills a running task's worker,
        once every call of that task has been cancelled.

        Raises:
            ImageTooComplexError: the call ran past `task_timeout_seconds`; its worker was killed.
            UndecodableImageError: the worker crashed during the call (a decoder's fault on the bytes).
            ImageTooLargeError: the worker was killed during the call (out of memory).
            ServiceNotReadyError: the pool has been shut down, or its worker stopped (the service is
                stopping).
            Exception: whatever `function` raised (domain errors pass through as they are).
        """
        return await self._submit(function, args, kwargs, runs_alone=False)

    async def run_alone(
        self, function: Callable[Parameters, Result], *args: Parameters.args, **kwargs: Parameters.kwargs
    ) -> Result:
        """`run`, in a task of its own: for a call whose work dwarfs a hand-off (a large image), so that
        the calls it would share a task with are not answered only once it ends.

        Raises: what `run` raises.
        """
        return await self._submit(function, args, kwargs, runs_alone=True)

    async def _submit(self, function: Callable[..., Any], args: tuple, kwargs: dict, runs_alone: bool) -> Any:
        if self._is_shut_down:
            raise ServiceNotReadyError("the service is shutting down; retry another instance")
        call = _Call(function, args, kwargs, asyncio.get_running_loop().create_future(), runs_alone)
        self._waiting_calls.append(call)
        self._schedule_dispatch(call.future.get_loop())
        return await call.future

    def _schedule_dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        # At the end of this turn of the loop: the calls that arrive in the same turn go together.
        if not self._is_dispatch_scheduled:
            self._is_dispatch_scheduled = True
            loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        """Sends waiting calls to the free workers, up to `calls_per_task` a task."""
        self._is_dispatch_scheduled = False
        while self._waiting_calls and len(self._tasks_in_flight) < self.budget.worker_count:
            calls = self._take_waiting_calls()
            if calls:
                self._send(calls)

    def _take_waiting_calls(self) -> list[_Call]:
        calls: list[_Call] = []
        while self._waiting_calls and len(calls) < self.budget.calls_per_task:
            call = self._waiting_calls[0]
            if call.future.done():  # its caller has gone
                self._waiting_calls.popleft()
            elif call.runs_alone and calls:
                break
            else:
                calls.append(self._waiting_calls.popleft())
                if call.runs_alone:
                    break
        return calls

    def _send(self, calls: list[_Call]) -> None:
        try:
            task = self._schedule(run_calls, ([call.as_task_item() for call in calls],), {})
        except RuntimeError as error:  # the pool broke again as soon as it was replaced
            logger.error("the decode workers' pool cannot start: %s", error)
            for call in calls:
                _settle(call.future, exception=ServiceNotReadyError("the decode workers are not running"))
            return
        self._tasks_in_flight[task] = calls
        if self._observe_task_size is not None:
            self._observe_task_size(len(calls))
        loop = calls[0].future.get_loop()
        task.add_done_callback(lambda done: loop.call_soon_threadsafe(self._finish, calls, done))
        for call in calls:
            call.future.add_done_callback(lambda _, calls=calls, task=task: _cancel_if_unwanted(calls, task))

    def _finish(self, calls: list[_Call], task: Any) -> None:
        """A task's answer (or failure) -> each call's, on the event loop; then the next calls go."""
        if self._tasks_in_flight.pop(task, None) is None:  # a task of a replaced pool: answered then
            return
        try:
            self._answer(calls, task)
        finally:
            if self._waiting_calls:
                self._dispatch()

    def _answer(self, calls: list[_Call], task: Any) -> None:
        if task.cancelled():  # every caller has gone; or the pool was stopped under it
            for call in calls:
                _settle(call.future, exception=ServiceNotReadyError("the service is shutting down"))
            return
        try:
            outcomes = task.result()
        except Exception as error:  # the time budget, a dead worker, a broken pool, unpicklable results
            if len(calls) > 1 and not self._is_shut_down:
                # Which call was at fault is unknown: each runs again alone, first in line.
                for call in reversed(calls):
                    call.runs_alone = True
                    self._waiting_calls.appendleft(call)
                return
            failure = self._task_error(error)
            for call in calls:
                _settle(call.future, exception=failure)
            return
        for call, (is_success, value) in zip(calls, outcomes, strict=True):
            if is_success:
                _settle(call.future, result=value)
            else:
                _settle(call.future, exception=value)

    def _task_error(self, error: BaseException) -> BaseException:
        """What a call run alone answers when its whole task failed."""
        if isinstance(error, FuturesTimeoutError):
            return ImageTooComplexError(
                f"the image took longer than {self.budget.task_timeout_seconds:g} s to decode; "
                "send a smaller or simpler image"
            )
        if isinstance(error, ProcessExpired):
            logger.warning("decode worker died", extra={"fields": {"exit_code": error.exitcode}})
            return self._death_error(error.exitcode)
        if isinstance(error, BrokenExecutor):  # the pool was stopped under the task: not the image's fault
            return ServiceNotReadyError("the decode worker was stopped; retry the request")
        return error

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
        """Starts every worker before the first request needs one (the fork server's imports, once):
        one task each, sent straight to the workers (`run` would send the calls as one task)."""
        tasks = [self._schedule(os.getpid, (), {}) for _ in range(self.budget.worker_count)]
        await asyncio.gather(*(asyncio.wrap_future(task) for task in tasks))

    async def shutdown(self) -> None:
        """Takes no new work, stops the workers (tasks still running are dropped) and waits for them."""
        self._is_shut_down = True
        while self._waiting_calls:
            _settle(
                self._waiting_calls.popleft().future,
                exception=ServiceNotReadyError("the service is shutting down; retry another instance"),
            )
        self._pool.stop()
        await asyncio.to_thread(self._pool.join)


def _settle(future: asyncio.Future, *, result: Any = None, exception: BaseException | None = None) -> None:
    """Answers a caller's future, unless its caller has gone (cancelled) or it is answered already."""
    if future.done():
        return
    if exception is None:
        future.set_result(result)
    else:
        future.set_exception(exception)


def _cancel_if_unwanted(calls: list[_Call], task: Any) -> None:
    """Kills a task's worker once no caller of the task is waiting for it (disconnects, deadlines)."""
    if all(call.future.cancelled() for call in calls):
        task.cancel()
