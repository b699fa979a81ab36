"""A small closed-loop HTTP/1.1 load generator: C connections, each sending its next request on reply.

Why not httpx: on a 2-core machine the client shares the CPU with the service, and an httpx
`AsyncClient` spends about 4 ms of CPU per multipart request (measured: 4.2 ms, against 0.07 ms
here), enough to cap the measured throughput far below what the service does. This client sends
pre-built request bytes over keep-alive connections and parses only the status line and the
headers, so nearly all the CPU is left to the service under test.
Loopback only; bounded by a request count and a time cap. The fault tests use the same raw requests
to send uploads in pieces, abort them, or read answers on a connection that the server closes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def build_multipart_request(host: str, path: str, field_name: str, filename: str, data: bytes) -> bytes:
    """Returns the bytes of a complete `POST path` request uploading `data` as multipart `field_name`.

    Args:
        host: the Host header, e.g. "127.0.0.1:8000".
        path: the route, e.g. "/predict".
        field_name: the form field, "file" for `/predict`, "files" for `/predict/batch`.
        filename: the file name the part declares.
        data: the file's bytes.
    """
    boundary = uuid.uuid4().hex
    body = build_multipart_body(boundary, field_name, filename, data)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def build_multipart_body(boundary: str, field_name: str, filename: str, data: bytes) -> bytes:
    """The body of a multipart/form-data upload of `data` as file field `field_name`."""
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )


@dataclass(frozen=True)
class Response:
    """One HTTP response: status, headers (lower-case names) and body."""

    status_code: int
    headers: dict[str, str]
    body: bytes


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> Response:
    """Sends one request on a keep-alive connection and reads its response (Content-Length framed).

    Raises:
        asyncio.IncompleteReadError: the server closed the connection before the end of the response.
        ConnectionError: the connection was reset.
    """
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_code = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", 0))
    return Response(status_code, headers, await reader.readexactly(length))


@dataclass
class LoadResult:
    """What one load level measured."""

    concurrency: int
    latencies_seconds: list[float] = field(default_factory=list)
    latencies_by_status_seconds: dict[int, list[float]] = field(default_factory=dict)
    bodies: dict[int, bytes] = field(default_factory=dict)
    status_counts: dict[int, int] = field(default_factory=dict)
    refusals_without_retry_after: int = 0
    transport_errors: int = 0
    elapsed_seconds: float = 0.0

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies_seconds) / self.elapsed_seconds if self.elapsed_seconds else 0.0

    def percentile_ms(self, percent: float, status_code: int | None = None) -> float:
        """The latency percentile of all requests, or of those answered with `status_code`."""
        if status_code is None:
            latencies = self.latencies_seconds
        else:
            latencies = self.latencies_by_status_seconds.get(status_code, [])
        return float(np.percentile(latencies, percent) * 1000) if latencies else 0.0

    def record(self, response: Response, latency_seconds: float) -> None:
        """Adds one response: its latency, its status, and whether a 503 said when to retry."""
        self.latencies_seconds.append(latency_seconds)
        self.latencies_by_status_seconds.setdefault(response.status_code, []).append(latency_seconds)
        self.status_counts[response.status_code] = self.status_counts.get(response.status_code, 0) + 1
        if response.status_code == 503 and "retry-after" not in response.headers:
            self.refusals_without_retry_after += 1


async def run_load(
    port: int, requests: Sequence[bytes], concurrency: int, time_cap_seconds: float, keep_bodies: bool = False
) -> LoadResult:
    """Sends `requests` (each once, in order of index) over `concurrency` connections to 127.0.0.1.

    Args:
        port: the service's port on 127.0.0.1.
        requests: complete request bytes (`build_multipart_request`).
        concurrency: simultaneous connections, each with one request outstanding.
        time_cap_seconds: stop sending new requests after this long.
        keep_bodies: keep each response body by request index (the accuracy check reads them).

    Returns:
        Latencies, status counts and elapsed time of the requests that completed.
    """
    result = LoadResult(concurrency=concurrency)
    next_index = 0
    started_seconds = time.perf_counter()
    deadline = started_seconds + time_cap_seconds

    async def connection_loop() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next_index < len(requests) and time.perf_counter() < deadline:
                index, next_index = next_index, next_index + 1
                sent_seconds = time.perf_counter()
                response = await exchange(reader, writer, requests[index])
                result.record(response, time.perf_counter() - sent_seconds)
                if keep_bodies:
                    result.bodies[index] = response.body
        except (ConnectionError, asyncio.IncompleteReadError):
            # Counted, not raised: a soak reports a dropped connection instead of losing the run.
            result.transport_errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection_loop() for _ in range(concurrency)))
    result.elapsed_seconds = time.perf_counter() - started_seconds
    return result


Answer = tuple[int | None, bytes]  # status (None: no answer) and body


async def send_uploads(
    port: int, requests: list[bytes], concurrency: int, timeout_seconds: float
) -> list[Answer]:
    """Sends each request once over `concurrency` keep-alive connections; the answers in request order.

    A request that times out or loses its connection gets (None, b"") and the next one opens a new
    connection: one failure is counted, the run goes on.
    """
    answers: list[Answer] = [(None, b"")] * len(requests)
    indices = iter(range(len(requests)))  # shared: each index is taken by exactly one connection

    async def connection_loop() -> None:
        connection = None
        for index in indices:
            try:
                if connection is None:
                    connection = await asyncio.open_connection("127.0.0.1", port)
                response = await asyncio.wait_for(exchange(*connection, requests[index]), timeout_seconds)
                answers[index] = (response.status_code, response.body)
            except (OSError, EOFError, TimeoutError):
                if connection is not None:
                    connection[1].close()
                connection = None
        if connection is not None:
            connection[1].close()

    await asyncio.gather(*(connection_loop() for _ in range(concurrency)))
    return answers
