"""One answered request -> one access line: method, path, status, duration, bytes, client, request ID.

Written by the app (`app.api.middleware.RequestMetricsMiddleware`, from the same status and duration
its metrics record), not by uvicorn, whose line knows neither the duration, nor the bytes sent, nor the
request ID. It goes through the service's handler, so it has the format of every other line:

    2026-01-01 12:00:00,000 INFO app.access request client=127.0.0.1:50000 duration_ms=4.21
    method=POST path=/predict request_id=0af7651916cd43dd8448eb211c80319c response_bytes=312 status=200

(one line; `json` has the same keys). The path is logged without its query string, which may hold
what a caller did not mean to publish. `python -m app --no-access-log` turns the lines off.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

ACCESS_LOGGER_NAME = "app.access"
ACCESS_MESSAGE = "request"

access_logger = logging.getLogger(ACCESS_LOGGER_NAME)


def enable_access_log(is_enabled: bool) -> None:
    """Turns the access lines on or off for the process (`python -m app --[no-]access-log`)."""
    access_logger.disabled = not is_enabled


def is_access_log_enabled() -> bool:
    """Whether an access line would be written now (on, and INFO let through by the service's level)."""
    return access_logger.isEnabledFor(logging.INFO)


def describe_access(
    scope: Scope, status_code: int, duration_seconds: float, response_bytes: int
) -> dict[str, object]:
    """The fields of a request's access line.

    Args:
        scope: the request's ASGI scope (method, path, client).
        status_code: the status sent (500 when the app failed before answering).
        duration_seconds: time from request start to the last response byte.
        response_bytes: bytes of response body sent.
    """
    fields: dict[str, object] = {
        "method": scope["method"],
        "path": scope["path"],
        "status": status_code,
        "duration_ms": round(duration_seconds * 1000, 2),
        "response_bytes": response_bytes,
    }
    client = scope.get("client")
    if client:
        fields["client"] = f"{client[0]}:{client[1]}"
    return fields


def write_access_line(scope: Scope, status_code: int, duration_seconds: float, response_bytes: int) -> None:
    """Logs a request's access line (arguments: `describe_access`); call it in the request's context,
    so that the line carries the request ID."""
    fields = describe_access(scope, status_code, duration_seconds, response_bytes)
    access_logger.info(ACCESS_MESSAGE, extra={"fields": fields})
