"""The body limits: one body's size, the bytes all bodies hold at once, and the upload deadlines' 408."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from app.api.body_limits import UPLOAD_TIMEOUT_SCOPE_KEY, BodySizeLimitMiddleware, UploadSpool
from app.observability.metrics import build_metrics
from digits.errors import PayloadTooLargeError, UploadCapacityExhaustedError, UploadTimeoutError

pytestmark = pytest.mark.unit


class BodyReader:
    """An ASGI app that reads the whole body, then answers 200; it can wait before answering."""

    def __init__(self) -> None:
        self.calls = 0
        self.held_while_answering: list[int] = []
        self.spool: UploadSpool | None = None

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        while (await receive()).get("more_body"):
            pass
        if self.spool is not None:
            self.held_while_answering.append(self.spool.held_bytes)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def scope_of(content_length: int | None = None) -> dict:
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    return {"type": "http", "method": "POST", "path": "/predict", "headers": headers, "state": {}}


def receive_chunks(*chunks: bytes):
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages[-1]["more_body"] = False

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


class Sent:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def __call__(self, message: dict) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return self.messages[0]["status"]

    def header(self, name: bytes) -> bytes | None:
        return dict(self.messages[0]["headers"]).get(name)

    def code(self) -> str:
        return json.loads(self.messages[1]["body"])["code"]


def middleware(app, upload_max_bytes: int = 1000, spool_max_bytes: int = 2000) -> BodySizeLimitMiddleware:
    metrics = build_metrics(CollectorRegistry(), 1)
    return BodySizeLimitMiddleware(app, upload_max_bytes, metrics, upload_spool_max_bytes=spool_max_bytes)


def test_the_spool_holds_what_fits_and_gets_it_back():
    spool = UploadSpool(100)
    assert spool.hold(60) and not spool.hold(41) and spool.hold(40)
    spool.release(100)
    assert spool.held_bytes == 0


async def test_a_declared_body_holds_its_size_until_the_answer_and_then_releases_it():
    app = BodyReader()
    layer = middleware(app)
    app.spool = layer.spool
    sent = Sent()
    await layer(scope_of(content_length=800), receive_chunks(b"a" * 800), sent)
    assert sent.status == 200 and app.held_while_answering == [800] and layer.spool.held_bytes == 0


async def test_a_declared_body_with_no_room_left_is_refused_503_unread():
    app = BodyReader()
    layer = middleware(app)
    assert layer.spool.hold(1500)  # other uploads in flight
    sent = Sent()
    await layer(scope_of(content_length=600), receive_chunks(b"a" * 600), sent)
    assert (sent.status, sent.code(), sent.header(b"retry-after")) == (503, "upload_capacity_exhausted", b"1")
    assert app.calls == 0 and layer.spool.held_bytes == 1500
    reason = {"reason": "upload_capacity_exhausted"}
    assert layer.metrics.registry.get_sample_value("digitserve_rejected_requests_total", reason) == 1


async def test_a_chunked_body_is_held_as_it_arrives_and_refused_when_it_no_longer_fits():
    layer = middleware(BodyReader())
    assert layer.spool.hold(1500)
    with pytest.raises(UploadCapacityExhaustedError):
        await layer(scope_of(), receive_chunks(b"a" * 300, b"a" * 300), Sent())
    assert layer.spool.held_bytes == 1500  # what the refused request held is back


async def test_a_body_over_the_size_limit_is_refused_413_declared_or_counted():
    layer = middleware(BodyReader())
    sent = Sent()
    await layer(scope_of(content_length=1001), receive_chunks(b""), sent)
    assert (sent.status, sent.code()) == (413, "payload_too_large")
    with pytest.raises(PayloadTooLargeError):
        await layer(scope_of(), receive_chunks(b"a" * 600, b"a" * 600), Sent())
    assert layer.spool.held_bytes == 0


async def test_a_body_past_its_deadline_raises_the_connection_layers_timeout_in_receive():
    layer = middleware(BodyReader())
    scope = scope_of(content_length=100)
    scope[UPLOAD_TIMEOUT_SCOPE_KEY] = "no byte of the request body arrived for 10 s"
    with pytest.raises(UploadTimeoutError, match="no byte of the request body arrived for 10 s"):
        await layer(scope, receive_chunks(b""), Sent())
    assert layer.spool.held_bytes == 0


async def test_the_spool_bound_is_the_one_given_and_a_finished_request_holds_nothing():
    layer = middleware(BodyReader(), spool_max_bytes=5000)
    await layer(scope_of(content_length=10), receive_chunks(b"a" * 10), Sent())
    assert layer.spool.max_bytes == 5000 and layer.spool.held_bytes == 0
