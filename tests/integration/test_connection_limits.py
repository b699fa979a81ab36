"""Connection and upload limits against the real service process on 127.0.0.1, with short limits.

The slow clients of the availability issue (idle connections, a head sent one line at a time, a body
one byte at a time, a Content-Length never reached), header bombs (a head over the size limit, too
many fields, a huge header streamed without end), the bound on spooled upload bytes and the cap on
connections, each sent over raw sockets to `python -m app` as `testkit.server` starts it (the
production command). The limits are a second or so here (10 s and more by default), so that the
module runs in seconds; what a limit answers, and when, is the same at any value.
"""

from __future__ import annotations

import asyncio
import errno
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
import starlette.formparsers

from testkit.http_load import build_multipart_request
from testkit.images import encode_png
from testkit.server import LOOPBACK_HOST, RunningServer, free_port, running_service
from tests.integration.conftest import run_service, service_log_lines

pytestmark = pytest.mark.integration

MEBIBYTE_BYTES = 1024 * 1024
HEADER_TIMEOUT_SECONDS = 1.0
UPLOAD_IDLE_TIMEOUT_SECONDS = 1.0
UPLOAD_TIMEOUT_SECONDS = 3.0
MAX_HEADER_BYTES = 4096
SPOOL_MAX_BYTES = 2 * MEBIBYTE_BYTES
SHORT_LIMITS = {
    "DIGITSERVE_HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_SECONDS),
    "DIGITSERVE_HTTP_KEEP_ALIVE_TIMEOUT_SECONDS": "1",
    "DIGITSERVE_HTTP_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    "DIGITSERVE_UPLOAD_IDLE_TIMEOUT_SECONDS": str(UPLOAD_IDLE_TIMEOUT_SECONDS),
    "DIGITSERVE_UPLOAD_TIMEOUT_SECONDS": str(UPLOAD_TIMEOUT_SECONDS),
    "DIGITSERVE_UPLOAD_MAX_BYTES": str(MEBIBYTE_BYTES),
    "DIGITSERVE_UPLOAD_SPOOL_MAX_BYTES": str(SPOOL_MAX_BYTES),
}
# How much later than its limit a connection may be closed on a busy 2-core machine.
LATENESS_SECONDS = 1.5
# No exchange waits longer than this for the server to answer or close (the test fails instead).
EXCHANGE_CAP_SECONDS = 10.0
BOUNDARY = "b0undary"
FILE_PART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n'
    "Content-Type: application/octet-stream\r\n\r\n"
).encode()


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    environment = {"DIGITSERVE_MODEL_DIR": str(models_dir), **SHORT_LIMITS}
    log_path = tmp_path_factory.mktemp("limits") / "service.log"
    with running_service(free_port(), environment, log_path) as running:
        yield running


@dataclass
class Exchange:
    """What a client saw: the answer (if any) and when the server closed the connection."""

    status: int | None
    headers: dict[str, str]
    body: dict
    closed_after_seconds: float | None  # None: still open when the client gave up
    sent_bytes: int
    statuses: list[int]  # of every answer on the connection, in order


def parse_answer(data: bytes) -> tuple[int | None, dict[str, str], dict, list[int]]:
    """The first answer in `data` (status, headers, JSON body), and the status of each answer."""
    if not data:
        return None, {}, {}, []
    statuses = [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = (line.partition(":") for line in lines[1:])
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    is_json = headers.get("content-type", "").startswith("application/json")
    return statuses[0], headers, json.loads(body) if is_json and body else {}, statuses


async def read_until_closed(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    chunks = []
    try:
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    except ConnectionError:
        pass  # reset: closed all the same
    return b"".join(chunks), time.perf_counter()


async def send_slowly(
    port: int, first: bytes, pieces: Iterable[bytes] = (), pause_seconds: float = 0.0
) -> Exchange:
    """Sends `first`, then each piece `pause_seconds` apart, until the server closes the connection.

    Stops sending once the server has closed, and gives up EXCHANGE_CAP_SECONDS after the start.
    """
    reader, writer = await asyncio.open_connection(LOOPBACK_HOST, port)
    started = time.perf_counter()
    closed = asyncio.ensure_future(read_until_closed(reader))
    sent_bytes = 0
    try:
        for index, piece in enumerate((first, *pieces) if pieces else (first,)):
            if index:
                await asyncio.wait({closed}, timeout=pause_seconds)
            if closed.done() or time.perf_counter() - started > EXCHANGE_CAP_SECONDS:
                break
            writer.write(piece)
            sent_bytes += len(piece)
            await writer.drain()
        await asyncio.wait({closed}, timeout=max(0.0, EXCHANGE_CAP_SECONDS - (time.perf_counter() - started)))
    except ConnectionError:
        await asyncio.wait({closed}, timeout=EXCHANGE_CAP_SECONDS)
    finally:
        writer.close()
    if not closed.done():
        closed.cancel()
        return Exchange(None, {}, {}, None, sent_bytes, [])
    data, closed_at = closed.result()
    status, headers, body, statuses = parse_answer(data)
    return Exchange(status, headers, body, closed_at - started, sent_bytes, statuses)


def upload_head(content_length: int, path: str = "/predict") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK_HOST}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {content_length}\r\n\r\n"
    ).encode()


def closing(request: bytes) -> bytes:
    """`request` asking the server to close the connection after its answer (no keep-alive wait)."""
    return request.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)


def get_request(path: str = "/healthz", extra_headers: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK_HOST}\r\n".encode() + extra_headers + b"\r\n"


def assert_refused(exchange: Exchange, status: int, code: str, after_seconds: float) -> None:
    assert (exchange.status, exchange.body.get("code")) == (status, code), exchange
    assert exchange.headers.get("connection") == "close", exchange
    assert exchange.closed_after_seconds is not None, "the server left the connection open"
    assert after_seconds - 0.2 <= exchange.closed_after_seconds <= after_seconds + LATENESS_SECONDS, exchange


def test_slow_clients_are_cut_off_at_their_limits_while_health_checks_answer(server):
    trickled_upload = upload_head(len(FILE_PART_HEAD) + 1000) + FILE_PART_HEAD

    async def scenario() -> tuple[list[list[Exchange]], list[float]]:
        kinds = [
            [send_slowly(server.port, b"") for _ in range(10)],  # idle: sends nothing
            # one header line every 0.3 s: each line in time, the head as a whole never
            [
                send_slowly(server.port, get_request()[:-2], (b"X-Slow: 1\r\n" for _ in range(40)), 0.3)
                for _ in range(10)
            ],
            # one body byte every 0.3 s: never idle for a second, late for the whole-body deadline
            [send_slowly(server.port, trickled_upload, (b"x" for _ in range(40)), 0.3) for _ in range(10)],
            # a Content-Length the body never reaches
            [send_slowly(server.port, trickled_upload + b"x" * 10) for _ in range(10)],
        ]
        slow = asyncio.gather(*(asyncio.gather(*kind) for kind in kinds))
        health_seconds = []
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            for _ in range(6):
                started = time.perf_counter()
                assert (await client.get("/healthz")).status_code == 200
                health_seconds.append(time.perf_counter() - started)
                await asyncio.sleep(0.4)
        return await slow, health_seconds

    (idle, header_lines, body_bytes, short_bodies), health_seconds = asyncio.run(scenario())
    for exchange in idle:
        assert exchange.status is None and exchange.closed_after_seconds is not None, exchange
        assert exchange.closed_after_seconds <= HEADER_TIMEOUT_SECONDS + LATENESS_SECONDS, exchange
    for exchange in header_lines:
        assert_refused(exchange, 408, "request_header_timeout", HEADER_TIMEOUT_SECONDS)
    for exchange in body_bytes:
        assert_refused(exchange, 408, "upload_timeout", UPLOAD_TIMEOUT_SECONDS)
    for exchange in short_bodies:
        assert_refused(exchange, 408, "upload_timeout", UPLOAD_IDLE_TIMEOUT_SECONDS)
    assert max(health_seconds) < 1.0, health_seconds


def test_a_keep_alive_connection_is_closed_when_idle_and_its_next_head_is_timed(server):
    next_head = get_request()[:-2]

    async def scenario() -> tuple[Exchange, Exchange]:
        idle_after_answer = await send_slowly(server.port, get_request())
        slow_second_head = await send_slowly(
            server.port, get_request(), [next_head, *(b"X-Slow: 1\r\n" for _ in range(40))], 0.3
        )
        return idle_after_answer, slow_second_head

    idle_after_answer, slow_second_head = asyncio.run(scenario())
    assert idle_after_answer.status == 200 and idle_after_answer.closed_after_seconds is not None
    assert idle_after_answer.closed_after_seconds <= 1 + LATENESS_SECONDS, idle_after_answer
    # The second head started 0.3 s after the first answer; its time is counted from there.
    assert slow_second_head.statuses == [200, 408], slow_second_head
    expected_seconds = 0.3 + HEADER_TIMEOUT_SECONDS
    closed_after_seconds = slow_second_head.closed_after_seconds
    assert closed_after_seconds is not None
    assert expected_seconds - 0.2 <= closed_after_seconds <= expected_seconds + LATENESS_SECONDS


def test_a_head_over_the_size_limit_or_with_too_many_fields_is_refused_with_431(server):
    def padded(size: int) -> bytes:
        return get_request(extra_headers=b"X-Pad: " + b"a" * (size - len(get_request()) - 9) + b"\r\n")

    async def scenario() -> list[Exchange]:
        requests = [
            closing(padded(MAX_HEADER_BYTES - 64)),  # just under the limit
            padded(2 * MAX_HEADER_BYTES),  # over it, in one piece
            get_request(extra_headers=b"".join(b"X-Field-%d: 1\r\n" % index for index in range(200))),
        ]
        return [await send_slowly(server.port, request) for request in requests]

    under, over, many_fields = asyncio.run(scenario())
    assert under.status == 200, under
    for exchange in (over, many_fields):
        assert (exchange.status, exchange.body.get("code")) == (431, "request_header_too_large"), exchange
        assert exchange.closed_after_seconds is not None and exchange.closed_after_seconds < 1.0


def test_a_streamed_header_bomb_is_cut_off_early_without_stalling_other_requests(server):
    rss_before = server.rss_bytes()

    async def scenario() -> tuple[Exchange, list[float]]:
        # Up to 64 MiB of one header value, 64 KiB at a time, as fast as the socket takes it.
        bomb = asyncio.ensure_future(
            send_slowly(server.port, get_request()[:-2] + b"X-Bomb: ", (b"a" * 65536 for _ in range(1024)))
        )
        health_seconds = []
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            while not bomb.done():
                started = time.perf_counter()
                assert (await client.get("/healthz")).status_code == 200
                health_seconds.append(time.perf_counter() - started)
                await asyncio.sleep(0.05)
        return await bomb, health_seconds

    bomb, health_seconds = asyncio.run(scenario())
    assert bomb.closed_after_seconds is not None and bomb.closed_after_seconds < 2.0, bomb
    # What the server read before closing is bounded by the limit plus one read; the rest of what
    # the client got out sat in the kernel's socket buffers.
    assert bomb.sent_bytes < 16 * MEBIBYTE_BYTES, bomb.sent_bytes
    assert bomb.status in (431, None), bomb  # None: the reset reached the client before the 431
    assert max(health_seconds) < 1.0, health_seconds
    assert server.rss_bytes() - rss_before < 32 * MEBIBYTE_BYTES


def test_uploads_past_the_spool_bound_get_503_until_the_held_bytes_are_released(server, mnist_test_samples):
    images, _ = mnist_test_samples
    image = encode_png(images[0])
    small_upload = closing(build_multipart_request(LOOPBACK_HOST, "/predict", "file", "d.png", image))
    # A valid PNG followed by padding (decoders stop at its end): 400 KB declared up front.
    large_upload = closing(
        build_multipart_request(LOOPBACK_HOST, "/predict", "file", "d.png", image + bytes(400_000))
    )
    stalled_length = 900_000  # two of them hold 1.8 MB of the 2 MiB spool

    async def chunked_upload() -> httpx.Response:
        async def pieces():
            yield FILE_PART_HEAD
            for _ in range(8):
                yield bytes(50_000)
            yield f"\r\n--{BOUNDARY}--\r\n".encode()

        content_type = f"multipart/form-data; boundary={BOUNDARY}"
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            return await client.post("/predict", content=pieces(), headers={"Content-Type": content_type})

    async def scenario():
        stalled = [
            asyncio.ensure_future(
                send_slowly(server.port, upload_head(stalled_length) + FILE_PART_HEAD + bytes(100_000))
            )
            for _ in range(2)
        ]
        await asyncio.sleep(0.3)
        # All within the stalled uploads' idle second.
        large_during = await send_slowly(server.port, large_upload)
        chunked = await chunked_upload()
        small_during = await send_slowly(server.port, small_upload)
        stalled = await asyncio.gather(*stalled)
        after = await send_slowly(server.port, large_upload)
        return stalled, (large_during, chunked, small_during), after

    stalled, (large_during, chunked, small_during), after = asyncio.run(scenario())
    assert (large_during.status, large_during.body.get("code")) == (503, "upload_capacity_exhausted")
    assert int(large_during.headers["retry-after"]) >= 1
    assert small_during.status == 200, small_during  # the bound refuses what does not fit, not everything
    assert (chunked.status_code, chunked.json()["code"]) == (503, "upload_capacity_exhausted")
    for exchange in stalled:
        assert_refused(exchange, 408, "upload_timeout", UPLOAD_IDLE_TIMEOUT_SECONDS)
    assert after.status != 503, after  # the stalled uploads' bytes were released


def test_connections_beyond_the_cap_get_503_while_probes_answer(models_dir, tmp_path, mnist_test_samples):
    images, _ = mnist_test_samples
    upload = build_multipart_request(LOOPBACK_HOST, "/predict", "file", "d.png", encode_png(images[0]))
    cap = 8
    environment = {
        "DIGITSERVE_MODEL_DIR": str(models_dir),
        "DIGITSERVE_HTTP_MAX_CONNECTIONS": str(cap),
        # Long enough that the idle connections below stay open for the whole test.
        "DIGITSERVE_HTTP_HEADER_TIMEOUT_SECONDS": "60",
        "DIGITSERVE_HTTP_KEEP_ALIVE_TIMEOUT_SECONDS": "1",
    }

    async def open_idle(count: int) -> list[asyncio.StreamWriter]:
        return [(await asyncio.open_connection(LOOPBACK_HOST, capped.port))[1] for _ in range(count)]

    async def scenario() -> dict[str, Exchange]:
        exchanges = {}
        idle = await open_idle(cap - 1)  # with the request's own connection: exactly the cap
        exchanges["at the cap"] = await send_slowly(capped.port, upload)
        idle += await open_idle(1)  # one over the cap with the request's connection
        await asyncio.sleep(0.2)
        for path in ("/healthz", "/readyz"):
            exchanges[path] = await send_slowly(capped.port, get_request(path))
        exchanges["over the cap"] = await send_slowly(capped.port, upload)
        for writer in idle:
            writer.close()
        await asyncio.sleep(0.5)
        exchanges["after"] = await send_slowly(capped.port, upload)
        return exchanges

    with running_service(free_port(), environment, tmp_path / "service.log") as capped:
        exchanges = asyncio.run(scenario())
    assert exchanges["at the cap"].status == 200, exchanges["at the cap"]
    assert exchanges["/healthz"].status == 200 and exchanges["/readyz"].status == 200, exchanges
    over = exchanges["over the cap"]
    assert (over.status, over.body.get("code")) == (503, "too_many_connections"), over
    assert int(over.headers["retry-after"]) >= 1 and over.headers.get("connection") == "close"
    assert exchanges["after"].status == 200, exchanges["after"]


class FullDiskSpooledFile(starlette.formparsers.SpooledTemporaryFile):
    """A spooled upload file on a temp folder that is full: every write fails with ENOSPC."""

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


async def test_a_full_temp_folder_answers_503_temp_space_full_and_is_logged(make_settings, monkeypatch):
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", FullDiskSpooledFile)
    image = encode_png(np.zeros((28, 28), dtype=np.uint8))
    async with run_service(make_settings()) as service:
        with service_log_lines() as log:
            response = await service.client.post("/predict", files={"file": ("d.png", image)})
    assert (response.status_code, response.json()["code"]) == (503, "temp_space_full")
    assert int(response.headers["retry-after"]) >= 1
    assert "temp_space_full" in log.getvalue()
    assert service.sample("digitserve_rejected_requests_total", {"reason": "temp_space_full"}) == 1
