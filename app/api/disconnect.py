"""A request's work + its connection -> the work, cancelled as soon as the client disconnects.

A client that gives up (a closed tab, a timed-out script) leaves its request running: without this,
the service would go on decoding its images and computing digits nobody will read, while clients
still waiting queue behind that work. Once a route has read the request body, the only message the
server can still deliver is `http.disconnect`; a watcher waits for it and cancels the work, which
releases the request's queue room, and the batcher skips its cancelled images.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.types import Receive

from digits.errors import ClientDisconnectedError


@contextlib.asynccontextmanager
async def cancelled_on_disconnect(receive: Receive) -> AsyncIterator[None]:
    """Runs the enclosed work; cancels it if the client disconnects meanwhile.

    Enter it only after the request body has been read: the watcher consumes what `receive` says.

    Raises:
        ClientDisconnectedError: the client disconnected and the work was cancelled (499).
    """
    task = asyncio.current_task()
    is_disconnected = False

    async def cancel_the_work_on_disconnect() -> None:
        nonlocal is_disconnected
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except Exception:  # a failing receive says nothing about the client: leave the work alone
            return
        is_disconnected = True
        task.cancel()

    watcher = asyncio.ensure_future(cancel_the_work_on_disconnect())
    try:
        yield
    except asyncio.CancelledError:
        if is_disconnected and task.uncancel() == 0:
            raise ClientDisconnectedError(
                "the client closed the connection before the answer was ready; its work was dropped"
            ) from None
        raise
    finally:
        watcher.cancel()
