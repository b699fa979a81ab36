"""A condition on shared state -> awaited until it holds, for tests that watch concurrent work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLL_INTERVAL_SECONDS = 0.002


async def wait_until(condition: Callable[[], bool], timeout_seconds: float = 5.0) -> None:
    """Returns once `condition()` is true; fails the test if it is still false after `timeout_seconds`.

    A liveness bound, not a timing check: it only says how long a test may hang before it fails.
    """
    try:
        async with asyncio.timeout(timeout_seconds):
            while not condition():
                await asyncio.sleep(POLL_INTERVAL_SECONDS)
    except TimeoutError:
        raise AssertionError(f"condition not reached within {timeout_seconds} s") from None
