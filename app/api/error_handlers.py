"""Exceptions -> JSON error responses `{"detail", "code"}` with the right status, counted and logged.

One handler for the whole domain taxonomy (`digits.errors`, each code's status from `app.api.errors`),
plus the framework's own errors (FastAPI's validation 422, Starlette's 404/405/400) mapped onto the same
body, so that a client parses one shape. A request without its upload field (a raw `--data-binary`
body, JSON, a form naming the field otherwise) is told which multipart field to send, and how.
Unknown exceptions become a 500 `internal_error` in `app.api.middleware` (never with a traceback).
A full temp folder (the multipart parser's OSError ENOSPC while it spools an upload) is the server's
fault, not the client's: it becomes a 503 `temp_space_full`, logged, instead of FastAPI's 400.
"""

from __future__ import annotations

import errno
import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.errors import FRAMEWORK_ERROR_CODES, http_status
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

MULTIPART_FORM = "multipart/form-data"
# A media type a client sent, named back in a detail; anything else in the header is not echoed.
MEDIA_TYPE_PATTERN = re.compile(r"[a-z0-9][\w.+-]{0,40}/[\w.+-]{1,80}")
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


def describe_upload_problem(field: str, is_missing: bool, content_type: str) -> str:
    """What is wrong with a request's upload field `field`, and what to send instead: a raw body (`curl
    --data-binary`), JSON, a form naming the field otherwise, or a part without a filename (text)."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == MULTIPART_FORM and is_missing:
        problem = f"the form has no `{field}` field"
    elif media_type == MULTIPART_FORM:
        problem = f"a `{field}` part of the form has no filename, so it is text, not a file"
    elif MEDIA_TYPE_PATTERN.fullmatch(media_type):
        problem = f"the body is {media_type}, not a {MULTIPART_FORM} form"
    else:
        problem = f"the body is not a {MULTIPART_FORM} form"
    return (
        f"invalid request: {problem}; upload the image as a file in the {MULTIPART_FORM} field "
        f"`{field}`, e.g. curl -F {field}=@digit.png"
    )


def describe_upload_field_error(error: RequestValidationError, content_type: str) -> str | None:
    """The sentence of `describe_upload_problem` for a request whose upload field is missing or holds
    text; None when the upload fields are fine (every form field of this API is an upload)."""
    for item in error.errors():
        location = tuple(item.get("loc", ()))
        if len(location) >= 2 and location[0] == "body":
            return describe_upload_problem(str(location[1]), item.get("type") == "missing", content_type)
    return None


def describe_validation_error(error: RequestValidationError, content_type: str = "") -> str:
    """Turns FastAPI's list of validation errors into one sentence, e.g. "body.file: Field required".

    A missing upload field, or one that holds text, gets a sentence of its own naming the multipart
    field to send: FastAPI's would say "Field required", or name a class.
    """
    upload_problem = describe_upload_field_error(error, content_type)
    if upload_problem is not None:
        return upload_problem
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
        detail = describe_validation_error(error, request.headers.get("content-type", ""))
        return await handle_domain_error(request, InvalidRequestError(detail))

    async def handle_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # FastAPI wraps any failure while reading the body in a 400; when a domain error caused it
        # (the body limit tripping on a chunked upload), that error is the real answer, and a full
        # temp folder is the server's failure (logged as a 503), not the client's.
        cause = error.__cause__
        if isinstance(cause, DigitServeError):
            return await handle_domain_error(request, cause)
        if (temp_space_full := temp_space_error(cause)) is not None:
            return await handle_domain_error(request, temp_space_full)
        code = FRAMEWORK_ERROR_CODES.get(error.status_code, "http_error")
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
