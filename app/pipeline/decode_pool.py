"""Blocking image work (decode, preprocess) -> awaited off the event loop, on threads the service owns.

Pillow and OpenCV hold the GIL for part of their work and block for all of it: run on the event loop,
one upload would stall every other request. The pool is the service's own (created and shut down by
the lifespan, like the batcher's model thread), not the event loop's default executor, so that
starting an app never changes process-wide state another app or library relies on.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from digits.errors import ServiceNotReadyError

Parameters = ParamSpec("Parameters")
Result = TypeVar("Result")


class DecodePool:
    """A fixed number of worker threads for the decode and preprocess stages.

    Args:
        thread_count: most uploads prepared at the same time.
    """

    def __init__(self, thread_count: int) -> None:
        self.thread_count = thread_count
        self._executor = ThreadPoolExecutor(thread_count, thread_name_prefix="digitserve-decode")
        self._is_shut_down = False

    async def run(
        self, function: Callable[Parameters, Result], *args: Parameters.args, **kwargs: Parameters.kwargs
    ) -> Result:
        """Runs `function(*args, **kwargs)` on a worker thread and returns its result.

        The caller's context variables (its request ID, for log lines) go with it, as with
        `asyncio.to_thread`.

        Raises:
            ServiceNotReadyError: the pool has been shut down (the service is stopping).
        """
        if self._is_shut_down:
            raise ServiceNotReadyError("the service is shutting down; retry another instance")
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: context.run(function, *args, **kwargs))

    def shutdown(self) -> None:
        """Takes no new work; work already handed over finishes on its threads, not awaited here."""
        self._is_shut_down = True
        self._executor.shutdown(wait=False)
