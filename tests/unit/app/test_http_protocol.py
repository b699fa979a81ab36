"""The connection limits of `LimitedHttpToolsProtocol`, fed bytes by hand over a fake transport.

No socket and no model: the protocol parses what the test writes and answers an ASGI app of the
test's own, so each limit is checked to the byte and to the tenth of a second. The same limits
against the real process, over loopback, are in tests/integration/test_connection_limits.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
import uvicorn
from uvicorn.server import ServerState

from app.api.body_limits import UPLOAD_TIMEOUT_SCOPE_KEY
from app.connection_limits import ConnectionLimits, RefusalLog, head_size_bytes
from app.http_protocol import LimitedHttpToolsProtocol

pytestmark = pytest.mark.unit

LIMITS = ConnectionLimits(
    max_header_bytes=1024,
    max_header_fields=10,
    header_timeout_seconds=0.1,
    upload_idle_timeout_seconds=0.1,
    upload_timeout_seconds=0.3,
    max_connections=4,
    probe_paths=frozenset({b"/healthz"}),
)
GET = b"GET /predict HTTP/1.1\r\nHost: test\r\n\r\n"


class FakeTransport(asyncio.Transport):
    """Keeps what the protocol writes; closing it tells the protocol the connection is lost."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.is_closed = False
        self.protocol: asyncio.Protocol | None = None

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        if not self.is_closed:
            self.is_closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.is_closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def answers(self) -> list[tuple[int, dict]]:
        """Status and JSON body (or {}) of each response written."""
        answers = []
        for raw in bytes(self.written).split(b"HTTP/1.1 ")[1:]:
            head, _, body = raw.partition(b"\r\n\r\n")
            is_json = b"application/json" in head
            answers.append((int(head[:3]), json.loads(body[: body.find(b"}") + 1]) if is_json else {}))
        return answers


class RecordingApp:
    """An ASGI app that reads the whole body, notes what it saw, and answers 200."""

    def __init__(self) -> None:
        self.scopes: list[dict] = []
        self.timeouts: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        self.scopes.append(scope)
        while True:
            message = await receive()
            if UPLOAD_TIMEOUT_SCOPE_KEY in scope:
                self.timeouts.append(scope[UPLOAD_TIMEOUT_SCOPE_KEY])
                await send({"type": "http.response.start", "status": 408, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


def connect(
    app: RecordingApp, limits: ConnectionLimits = LIMITS, server_state: ServerState | None = None
) -> tuple[LimitedHttpToolsProtocol, FakeTransport]:
    config = uvicorn.Config(app=app, lifespan="off", ws="none", timeout_keep_alive=1, log_level="critical")
    config.load()
    protocol = LimitedHttpToolsProtocol(
        config=config,
        server_state=server_state or ServerState(),
        app_state={},
        limits=limits,
        refusal_log=RefusalLog(),
    )
    transport = FakeTransport()
    transport.protocol = protocol
    protocol.connection_made(transport)
    return protocol, transport


async def settle(seconds: float = 0.01) -> None:
    await asyncio.sleep(seconds)


async def test_a_request_within_the_limits_reaches_the_app():
    app = RecordingApp()
    protocol, transport = connect(app)
    protocol.data_received(GET.replace(b"\r\n\r\n", b"\r\n" + b"X-Field: 1\r\n" * 8 + b"\r\n"))
    await settle()
    assert [status for status, _ in transport.answers()] == [200] and not transport.is_closed


@pytest.mark.parametrize("pieces", [1, 8], ids=["in one read", "in 8 reads"])
async def test_a_head_over_the_byte_limit_is_answered_431_and_closed(pieces):
    app = RecordingApp()
    protocol, transport = connect(app)
    request = GET.replace(b"\r\n\r\n", b"\r\nX-Pad: " + b"a" * 2000 + b"\r\n\r\n")
    size = -(-len(request) // pieces)
    for start in range(0, len(request), size):
        protocol.data_received(request[start : start + size])
    await settle()
    assert transport.answers() == [(431, transport.answers()[0][1])]
    assert transport.answers()[0][1]["code"] == "request_header_too_large" and transport.is_closed
    assert app.scopes == []


async def test_a_header_value_that_never_ends_is_cut_off_after_the_byte_limit():
    protocol, transport = connect(RecordingApp())
    protocol.data_received(b"GET / HTTP/1.1\r\nX-Bomb: ")
    sent_bytes = 0
    while not transport.is_closed and sent_bytes < 1_000_000:
        protocol.data_received(b"a" * 256)
        sent_bytes += 256
    assert transport.is_closed and sent_bytes <= LIMITS.max_header_bytes + 256
    assert [status for status, _ in transport.answers()] == [431]


async def test_too_many_header_fields_are_answered_431():
    protocol, transport = connect(RecordingApp())
    protocol.data_received(GET.replace(b"\r\n\r\n", b"\r\n" + b"X-Field: 1\r\n" * 11 + b"\r\n"))
    await settle()
    ((status, body),) = transport.answers()
    assert (status, body["code"]) == (431, "request_header_too_large")
    assert body["detail"] == "the request has 12 header fields; the limit is 10"  # Host is one


async def test_an_idle_connection_is_closed_without_an_answer_after_the_header_timeout():
    _, transport = connect(RecordingApp())
    await settle(LIMITS.header_timeout_seconds / 2)
    assert not transport.is_closed
    await settle(LIMITS.header_timeout_seconds)
    assert transport.is_closed and transport.written == b""


async def test_a_head_sent_a_line_at_a_time_is_answered_408_at_the_header_timeout():
    protocol, transport = connect(RecordingApp())
    protocol.data_received(b"GET / HTTP/1.1\r\n")
    for _ in range(5):  # each line comes in time; the head as a whole does not
        await settle(LIMITS.header_timeout_seconds / 3)
        if not transport.is_closed:
            protocol.data_received(b"X-Slow: 1\r\n")
    ((status, body),) = transport.answers()
    assert (status, body["code"]) == (408, "request_header_timeout") and transport.is_closed


async def test_the_next_head_of_a_keep_alive_connection_is_timed_from_its_first_byte():
    protocol, transport = connect(RecordingApp())
    protocol.data_received(GET)
    await settle(LIMITS.header_timeout_seconds * 1.5)  # idle between requests: keep-alive's business
    assert not transport.is_closed
    protocol.data_received(b"GET / HTTP/1.1\r\n")
    await settle(LIMITS.header_timeout_seconds * 1.5)
    assert [status for status, _ in transport.answers()] == [200, 408] and transport.is_closed


async def test_a_busy_keep_alive_connection_arms_no_timer_per_request():
    protocol, transport = connect(RecordingApp(), dataclasses.replace(LIMITS, header_timeout_seconds=10.0))
    first_timer = protocol.watch_timer
    for _ in range(50):
        protocol.data_received(GET)
        await settle(0)
    assert len(transport.answers()) == 50 and protocol.watch_timer is first_timer


@pytest.mark.parametrize(
    ("pause_seconds", "deadline"), [(0.2, "no byte of the request body"), (0.05, "did not arrive in full")]
)
async def test_a_stalled_or_trickled_body_wakes_the_app_with_the_timeout_and_closes(pause_seconds, deadline):
    app = RecordingApp()
    protocol, transport = connect(app)
    protocol.data_received(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n")
    for _ in range(20):
        await settle(pause_seconds)
        if transport.is_closed:
            break
        protocol.data_received(b"x")
    assert len(app.timeouts) == 1 and deadline in app.timeouts[0]
    assert [status for status, _ in transport.answers()] == [408] and transport.is_closed


async def answer_without_reading(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def test_a_body_left_unread_by_an_early_answer_cannot_hold_the_connection():
    protocol, transport = connect(answer_without_reading)
    protocol.data_received(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nxx")
    await settle(LIMITS.upload_idle_timeout_seconds * 2)
    assert [status for status, _ in transport.answers()] == [401] and transport.is_closed


async def test_a_connection_answered_before_its_body_ended_is_closed_when_idle_afterwards():
    protocol, transport = connect(answer_without_reading)
    protocol.data_received(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nxx")
    await settle()
    protocol.data_received(b"x" * 98)  # the rest of the body, after the answer
    await settle(0.5)
    assert not transport.is_closed  # keep-alive: 1 s
    await settle(0.7)
    assert [status for status, _ in transport.answers()] == [401] and transport.is_closed


async def test_requests_past_the_connection_cap_get_503_but_health_probes_pass():
    app = RecordingApp()
    server_state = ServerState()
    others = [connect(app, server_state=server_state) for _ in range(LIMITS.max_connections)]
    protocol, transport = connect(app, server_state=server_state)  # one over the cap
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    await settle()
    assert [status for status, _ in transport.answers()] == [200]
    protocol.data_received(GET)
    await settle()
    status, body = transport.answers()[-1]
    assert (status, body["code"]) == (503, "too_many_connections") and b"retry-after: 1" in transport.written
    assert transport.is_closed
    others[0][1].close()
    await settle()
    fresh, fresh_transport = connect(app, server_state=server_state)
    fresh.data_received(GET)
    await settle()
    assert [status for status, _ in fresh_transport.answers()] == [200]


def test_the_head_size_is_measured_within_a_few_bytes_of_the_head():
    head = b"GET /predict HTTP/1.1\r\nhost: test\r\nx-pad: " + b"a" * 100 + b"\r\n\r\n"
    estimate = head_size_bytes(b"/predict", [(b"host", b"test"), (b"x-pad", b"a" * 100)])
    assert 0 <= estimate - len(head) <= 8
