"""Exceptions -> JSON error responses `{"detail", "code"}` with the right status, counted and logged.

One handler for the whole domain taxonomy (`digits.errors`, each code's status from `app.api.errors`),
plus the framework's own errors (FastAPI's validation 422, Starlette's 404/405/400) mapped onto the same
body, so that a client parses one shape.
Unknown exceptions become a 500 `internal_error` in `app.api.middleware` (never with a traceback).
A full temp folder (the multipart parser's OSError ENOSPC while it spools an upload) is the server's
fault, not the client's: it becomes a 503 `temp_space_full`, logged, instead of FastAPI's 400.
"""

from __future__ import annotations

import errno
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.errors import http_status
from app.observability.logging import LogThrottle
from app.observability.metrics import Metrics
from digits.errors import (
    DigitServeError,
    InvalidRequestError,
    QueueFullError,
    RequestHeaderTimeoutError,
    RequestHeaderTooLargeError,
    TempSpaceFullError,
    TooManyConnectionsError,
    UnauthorizedError,
    UploadTimeoutError,
)

logger = logging.getLogger(__name__)

HTTP_STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
QUEUE_FULL_LOG_INTERVAL_SECONDS = 1.0
# Answers after which the connection cannot be used again: the rest of the request never came (or
# will not be read), or the server needs the connection back.
CONNECTION_CLOSING_CODES = frozenset(
    error.code
    for error in (
        RequestHeaderTooLargeError,
        RequestHeaderTimeoutError,
        UploadTimeoutError,
        TooManyConnectionsError,
    )
)
# Out of space in the temp folder (ENOSPC), or out of the user's disk quota there (EDQUOT).
TEMP_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def build_error_response(
    status_code: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Returns the one error body of the API: `{"detail": detail, "code": code}`."""
    return JSONResponse({"detail": detail, "code": code}, status_code=status_code, headers=headers)


def render_domain_error(error: DigitServeError) -> JSONResponse:
    """Returns the response of a domain error, with `Retry-After` when the client should retry.

    A 401 names the scheme to use in `WWW-Authenticate`, as RFC 9110 requires; an error that leaves
    the connection unusable says `Connection: close` (the server closes it after the answer).
    """
    headers = {}
    retry_after_seconds = getattr(error, "retry_after_seconds", None)
    if retry_after_seconds is not None:
        headers["Retry-After"] = str(retry_after_seconds)
    if isinstance(error, UnauthorizedError):
        headers["WWW-Authenticate"] = 'Bearer realm="digitserve"'
    if error.code in CONNECTION_CLOSING_CODES:
        headers["Connection"] = "close"
    return build_error_response(http_status(error), error.code, error.detail, headers or None)


def temp_space_error(error: BaseException | None) -> TempSpaceFullError | None:
    """The domain error of an OSError saying the temp folder is full (ENOSPC, EDQUOT); else None."""
    if isinstance(error, OSError) and error.errno in TEMP_SPACE_ERRNOS:
        return TempSpaceFullError(
            "the server has no temporary space left to receive uploads; retry in a moment"
        )
    return None


def describe_validation_error(error: RequestValidationError) -> str:
    """Turns FastAPI's list of validation errors into one sentence, e.g. "body.file: Field required"."""
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ()))
        parts.append(f"{location}: {item.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def register_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    """Registers the exception handlers of the API on `app`, counting each error by its code.

    Each refusal is logged, except queue-full refusals: at most one line a second, with the number
    of those not logged, since under overload they arrive by the thousand (the metric counts all).
    """
    queue_full_log = LogThrottle(QUEUE_FULL_LOG_INTERVAL_SECONDS)

    async def handle_domain_error(request: Request, error: DigitServeError) -> JSONResponse:
        metrics.rejected_requests.labels(reason=error.code).inc()
        fields = {"code": error.code, "path": request.url.path}
        if isinstance(error, QueueFullError):
            held_back = queue_full_log.admit()
            if held_back is None:
                return render_domain_error(error)
            fields["similar_refusals_not_logged"] = held_back
        level = logging.WARNING if http_status(error) >= 500 else logging.INFO
        logger.log(level, "request refused: %s", error.detail, extra={"fields": fields})
        return render_domain_error(error)

    async def handle_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return await handle_domain_error(request, InvalidRequestError(describe_validation_error(error)))

    async def handle_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # FastAPI wraps any failure while reading the body in a 400; when a domain error caused it
        # (the body limit tripping on a chunked upload), that error is the real answer, and a full
        # temp folder is the server's failure (logged as a 503), not the client's.
        cause = error.__cause__
        if isinstance(cause, DigitServeError):
            return await handle_domain_error(request, cause)
        if (temp_space_full := temp_space_error(cause)) is not None:
            return await handle_domain_error(request, temp_space_full)
        code = HTTP_STATUS_CODES.get(error.status_code, "http_error")
        metrics.rejected_requests.labels(reason=code).inc()
        detail = str(error.detail)
        if error.status_code == 404:
            detail = f"no route {request.url.path}; the API is described at /docs"
        elif error.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
        return build_error_response(error.status_code, code, detail, error.headers)

    app.add_exception_handler(DigitServeError, handle_domain_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
