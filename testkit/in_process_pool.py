"""A stand-in for the service's decode workers that runs tasks on threads of the test's own process.

For tests that watch or hold the decode stage from inside the process (a gate that blocks decoding
until released, a probe that counts concurrent decodes): a worker process would not see the test's
monkeypatched functions, nor could it receive a gate's lock. The real workers are tested on their
own (tests/integration/test_decode_pool.py) and through the service everywhere else.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from digits.errors import ServiceNotReadyError


class InProcessDecodePool:
    """The `DecodePool` interface on `worker_count` threads: no time or memory budget, nothing killed."""

    def __init__(self, worker_count: int) -> None:
        self.worker_count = worker_count
        self._executor = ThreadPoolExecutor(worker_count, thread_name_prefix="test-decode")
        self._is_shut_down = False

    async def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._is_shut_down:
            raise ServiceNotReadyError("the service is shutting down; retry another instance")
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: context.run(function, *args, **kwargs))

    async def run_alone(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`run`: here every call has a thread of its own anyway."""
        return await self.run(function, *args, **kwargs)

    async def shutdown(self) -> None:
        self._is_shut_down = True
        self._executor.shutdown(wait=False)
