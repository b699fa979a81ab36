"""Work for a client that has gone is cancelled, and work for a client still there is left alone."""

from __future__ import annotations

import asyncio

import pytest

from app.api.disconnect import cancelled_on_disconnect
from digits.errors import ClientDisconnectedError

pytestmark = pytest.mark.unit


class Connection:
    """A `receive` that says nothing until the test disconnects the client."""

    def __init__(self) -> None:
        self.disconnected = asyncio.Event()

    async def receive(self) -> dict:
        await self.disconnected.wait()
        return {"type": "http.disconnect"}


async def test_the_work_of_a_client_that_disconnects_is_cancelled():
    connection = Connection()
    work_stopped = asyncio.Event()

    async def endless_work() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            work_stopped.set()

    async def request() -> None:
        async with cancelled_on_disconnect(connection.receive):
            await endless_work()

    handled = asyncio.ensure_future(request())
    await asyncio.sleep(0)
    connection.disconnected.set()
    with pytest.raises(ClientDisconnectedError, match="closed the connection"):
        await asyncio.wait_for(handled, timeout=5)
    assert work_stopped.is_set()


async def test_the_work_of_a_client_still_connected_finishes_and_the_watcher_stops():
    connection = Connection()
    async with cancelled_on_disconnect(connection.receive):
        result = await asyncio.sleep(0, result=7)
    assert result == 7
    await asyncio.sleep(0)  # the watcher's cancellation takes one turn of the loop
    assert not [task for task in asyncio.all_tasks() if "cancel_the_work" in repr(task.get_coro())]


async def test_a_cancellation_from_elsewhere_is_not_taken_for_a_disconnect():
    connection = Connection()

    async def request() -> None:
        async with cancelled_on_disconnect(connection.receive):
            await asyncio.sleep(3600)

    handled = asyncio.ensure_future(request())
    await asyncio.sleep(0)
    handled.cancel()  # e.g. the server shutting down
    with pytest.raises(asyncio.CancelledError):
        await handled


async def test_a_failing_receive_leaves_the_work_alone():
    async def broken_receive() -> dict:
        raise RuntimeError("the body layer gave up")

    async with cancelled_on_disconnect(broken_receive):
        result = await asyncio.sleep(0.01, result="done")
    assert result == "done"
