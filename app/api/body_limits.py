"""Request body bytes as they arrive -> the same bytes, within the upload limits, or a refusal.

Three limits meet where the body is read, before the multipart parser spools it to memory or to
temp files: the size of one body (413 `payload_too_large`), the bytes held by all the bodies being
received at once (503 `upload_capacity_exhausted` + Retry-After: a few stalled uploads must not fill
the temp folder, and then everyone's uploads fail), and the upload deadlines. The connection layer
(`app.http_protocol`) watches the deadlines, since it sees each chunk arrive with no timer per
request; when one passes it marks the request's scope and wakes the app's `receive`, and this layer
raises `UploadTimeoutError` there, so that the 408 goes through the app's error handling (counted,
logged, with a request ID) and closes the connection.

Pure ASGI (not `BaseHTTPMiddleware`) so that it sees the raw `receive` stream and counts bytes as
they arrive.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.error_handlers import render_domain_error
from app.observability.logging import LogThrottle
from app.observability.metrics import Metrics
from digits.errors import (
    DigitServeError,
    PayloadTooLargeError,
    UploadCapacityExhaustedError,
    UploadTimeoutError,
)

logger = logging.getLogger(__name__)

UPLOAD_TIMEOUT_SCOPE_KEY = "digitserve.upload_timeout"
"""Set by the connection layer, to what went wrong, when a request's body missed a deadline."""
SPOOL_FULL_LOG_INTERVAL_SECONDS = 1.0
SPOOL_FULL_DETAIL = "the server is receiving as many upload bytes as it can hold; retry in a moment"


class UploadSpool:
    """Counts the request-body bytes held by the requests being received, against one bound.

    Held from the moment a request is admitted until its handling ends: the multipart parser keeps
    what it read (in memory, or in temp files past 1 MiB a part) until the response is sent. The
    event loop is the only caller, so a plain integer needs no lock.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held_bytes = 0

    def hold(self, size_bytes: int) -> bool:
        """Holds `size_bytes` more if they fit under the bound; returns whether they did."""
        if self.held_bytes + size_bytes > self.max_bytes:
            return False
        self.held_bytes += size_bytes
        return True

    def release(self, size_bytes: int) -> None:
        self.held_bytes -= size_bytes


class BodySizeLimitMiddleware:
    """Refuses bodies over `upload_max_bytes` (413), or past the spool's room (503), and times them out.

    A declared Content-Length is judged before a byte of the body is read: over the limit, 413; more
    than the spool has room for, 503 + Retry-After; else the spool holds that much at once. A chunked
    body (no Content-Length) is counted and held as it streams in, and the read that goes over a
    limit raises the same errors, which the app's error handlers answer.

    Args:
        app: the next ASGI layer.
        upload_max_bytes: the largest body of one request.
        metrics: the app's metrics (refusals counted by code).
        upload_spool_max_bytes: the most body bytes held by all requests at once.
    """

    def __init__(
        self, app: ASGIApp, upload_max_bytes: int, metrics: Metrics, upload_spool_max_bytes: int
    ) -> None:
        self.app = app
        self.upload_max_bytes = upload_max_bytes
        self.metrics = metrics
        self.spool = UploadSpool(upload_spool_max_bytes)
        self.spool_full_log = LogThrottle(SPOOL_FULL_LOG_INTERVAL_SECONDS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        declared_bytes = int(declared) if declared.isdigit() else 0
        if declared_bytes > self.upload_max_bytes:
            error = PayloadTooLargeError(
                f"the request body is {declared_bytes} bytes; the limit is {self.upload_max_bytes} bytes"
            )
            await self.refuse(error, scope, receive, send)
            return
        spool = self.spool
        if declared_bytes and not spool.hold(declared_bytes):
            self.log_spool_full(spool, declared_bytes)
            await self.refuse(UploadCapacityExhaustedError(SPOOL_FULL_DETAIL), scope, receive, send)
            return
        held_bytes = declared_bytes
        received_bytes = 0

        async def receive_within_limits() -> Message:
            nonlocal received_bytes, held_bytes
            message = await receive()
            if (timed_out := scope.get(UPLOAD_TIMEOUT_SCOPE_KEY)) is not None:
                raise UploadTimeoutError(timed_out)
            received_bytes += len(message.get("body", b""))
            if received_bytes > self.upload_max_bytes:
                raise PayloadTooLargeError(
                    f"the request body is over the limit of {self.upload_max_bytes} bytes"
                )
            if received_bytes > held_bytes:
                if not spool.hold(received_bytes - held_bytes):
                    raise UploadCapacityExhaustedError(SPOOL_FULL_DETAIL)  # logged by the error handler
                held_bytes = received_bytes
            return message

        try:
            await self.app(scope, receive_within_limits, send)
        finally:
            if held_bytes:
                spool.release(held_bytes)

    def log_spool_full(self, spool: UploadSpool, declared_bytes: int) -> None:
        """Logs a refusal for a full spool, at most once a second: under a flood they come by the hundred."""
        held_back = self.spool_full_log.admit()
        if held_back is not None:
            fields = {
                "held_bytes": spool.held_bytes,
                "max_bytes": spool.max_bytes,
                "declared_bytes": declared_bytes,
            }
            fields["similar_refusals_not_logged"] = held_back
            logger.warning("upload refused: the upload spool is full", extra={"fields": fields})

    async def refuse(self, error: DigitServeError, scope: Scope, receive: Receive, send: Send) -> None:
        """Answers a refusal decided from the headers alone, the body unread, and counts it."""
        self.metrics.rejected_requests.labels(reason=error.code).inc()
        await render_domain_error(error)(scope, receive, send)
