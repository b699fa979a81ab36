"""The connection limits -> what each refuses, and the refusal on the wire, counted and logged.

What a connection may take is decided here (`ConnectionLimits`, built from the settings by
`app.server`); when each limit applies is `app.http_protocol`'s business. That protocol refuses some
requests before the app sees them (a head too large or too slow to arrive) or in its place (past the
connection cap): their answers carry the API's error body and headers (`render_domain_error`), and
they are counted in the app's `digitserve_rejected_requests_total` by code, like the app's own
refusals, and logged at most once a second, since they come in floods.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from app.api.error_handlers import render_domain_error
from app.observability.logging import LogThrottle
from digits.errors import (
    DigitServeError,
    RequestHeaderTimeoutError,
    RequestHeaderTooLargeError,
    TooManyConnectionsError,
)

logger = logging.getLogger(__name__)

REFUSAL_LOG_INTERVAL_SECONDS = 1.0
# Around the target in the request line ("GET ", " HTTP/1.1\r\n") and the blank line ending the head.
REQUEST_LINE_OVERHEAD_BYTES = 24
HEADER_FIELD_OVERHEAD_BYTES = 4  # ": " and "\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may take, how many there may be, and the refusal of each limit."""

    max_header_bytes: int
    max_header_fields: int
    header_timeout_seconds: float
    upload_idle_timeout_seconds: float
    upload_timeout_seconds: float
    max_connections: int
    probe_paths: frozenset[bytes]

    def head_error(self, target: bytes, headers: list[tuple[bytes, bytes]]) -> DigitServeError | None:
        """The refusal a complete head has earned: too many fields, or too many bytes; else None."""
        if len(headers) > self.max_header_fields:
            return RequestHeaderTooLargeError(
                f"the request has {len(headers)} header fields; the limit is {self.max_header_fields}"
            )
        size_bytes = head_size_bytes(target, headers)
        return self.head_size_error(size_bytes) if size_bytes > self.max_header_bytes else None

    def head_size_error(self, size_bytes: int) -> RequestHeaderTooLargeError:
        return RequestHeaderTooLargeError(
            f"the request head is {size_bytes} bytes or more; the limit is {self.max_header_bytes} bytes"
        )

    def head_timeout_error(self) -> RequestHeaderTimeoutError:
        return RequestHeaderTimeoutError(
            f"the request head did not arrive within {self.header_timeout_seconds:g} s"
        )

    def upload_timeout_detail(self, is_idle: bool) -> str:
        if is_idle:
            return f"no byte of the request body arrived for {self.upload_idle_timeout_seconds:g} s"
        return f"the request body did not arrive in full within {self.upload_timeout_seconds:g} s"

    def over_capacity_error(self, connection_count: int) -> TooManyConnectionsError:
        return TooManyConnectionsError(
            f"the server holds {connection_count} connections, over its limit of {self.max_connections}; "
            "retry in a moment"
        )


def head_size_bytes(target: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """The size of a parsed request head, give or take the spaces around header values."""
    fields_bytes = sum(len(name) + len(value) + HEADER_FIELD_OVERHEAD_BYTES for name, value in headers)
    return len(target) + REQUEST_LINE_OVERHEAD_BYTES + fields_bytes


def describe_client(client: tuple[str, int] | None) -> str:
    """`host:port` of a connection's peer, for logs."""
    return f"{client[0]}:{client[1]}" if client else "unknown"


def encode_refusal(error: DigitServeError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The whole HTTP/1.1 response to `error`, for a connection no ASGI app answers."""
    response = render_domain_error(error)
    content = [STATUS_LINE[response.status_code]]
    for name, value in default_headers + response.raw_headers:
        content += [name, b": ", value, b"\r\n"]
    content += [b"\r\n", response.body]
    return b"".join(content)


class RefusalLog:
    """Counts and logs the refusals of one server's connections; all its connections share it."""

    def __init__(self, interval_seconds: float = REFUSAL_LOG_INTERVAL_SECONDS) -> None:
        self.throttle = LogThrottle(interval_seconds)

    def record(
        self, error: DigitServeError, app_state: dict[str, Any], client: tuple[str, int] | None
    ) -> None:
        """Counts `error` in the app's metrics (once its lifespan has started) and logs it, throttled."""
        service = app_state.get("service")
        if service is not None:
            service.metrics.rejected_requests.labels(reason=error.code).inc()
        held_back = self.throttle.admit()
        if held_back is not None:
            fields = {"code": error.code, "client": describe_client(client)}
            fields["similar_refusals_not_logged"] = held_back
            logger.warning("connection refused: %s", error.detail, extra={"fields": fields})
