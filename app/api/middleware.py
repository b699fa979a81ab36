"""Pure ASGI middlewares around every request: the route it goes to, request IDs, RED metrics and the
access line, with a catch-all 500. The body limits are `app.api.body_limits`.

Pure ASGI (not `BaseHTTPMiddleware`): no task and no body buffering per request, and the layers
inside them see the raw `receive` stream.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.error_handlers import build_error_response
from app.observability.access_log import is_access_log_enabled, write_access_line
from app.observability.logging import request_id_context
from app.observability.metrics import UNMATCHED_ROUTE, Metrics

logger = logging.getLogger(__name__)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID_HEADER = "X-Request-ID"
ROUTE_TEMPLATE_SCOPE_KEY = "digitserve.route_template"
# A caller's ID is echoed into logs and headers: bounded, and no spaces, quotes or control characters
# that could forge a log field or split a header. UUIDs, W3C trace IDs and ULIDs all fit.
_REQUEST_ID_PATTERN = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


# A generated ID is 32 random hex digits like a uuid4's, from `random`'s generator (reseeded in every
# forked child by the module itself) instead of uuid4's read of the kernel's random source per
# request (50 us of system time here, a twentieth of a request's CPU). IDs correlate log lines; they
# are not secrets, and are not sequential either (they tell nothing of the traffic).
def accept_or_generate_request_id(incoming: bytes | None) -> str:
    """Returns the caller's `X-Request-ID` if it is 1-128 safe characters, else a new 32-hex-digit ID."""
    if incoming is not None and _REQUEST_ID_PATTERN.fullmatch(incoming):
        return incoming.decode("ascii")
    return f"{random.getrandbits(128):032x}"


class RequestIdMiddleware:
    """Gives every request an ID: in `X-Request-ID` of its response (errors too) and in its log lines.

    Outside every layer that can answer (metrics' 500, API key's 401, shedding's 503, the body
    limit's 413), so that their responses carry the header as well.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_or_generate_request_id(dict(scope["headers"]).get(b"x-request-id"))

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = request_id_context.set(request_id)
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            request_id_context.reset(token)


def resolve_route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """Returns the path template of the route a request goes to (`/predict`), or "unmatched".

    Labels must be bounded: a raw URL path would create one time series per probe of a scanner. The
    route is found before the request runs, so that requests refused early (413) are labelled too.
    """
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return getattr(route, "path", UNMATCHED_ROUTE)
    return UNMATCHED_ROUTE


def route_template(scope: Scope) -> str:
    """The route template `RouteMatchMiddleware` found for this request ("unmatched" if none).

    Raises:
        KeyError: no route-matching layer wraps the caller: a layer that decides by route (the API
            key's) must fail loudly rather than let every request through.
    """
    return scope[ROUTE_TEMPLATE_SCOPE_KEY]


class RouteMatchMiddleware:
    """Matches each request to its route once, for every layer inside it (`route_template(scope)`).

    The metrics, API-key and shedding layers all decide by route before the router runs; they read
    the template this outermost layer stored in the ASGI scope instead of matching again.

    Args:
        app: the next ASGI layer.
        routes: the app's routes, to match a request the way the router will.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        # Paths without parameters resolve the same way every time: found once here, not by
        # matching every route's pattern on every request (5 us). Bounded by the routes.
        self.templates_by_path = {
            path: resolve_route_template(routes, {"type": "http", "path": path, "method": "GET"})
            for path in (getattr(route, "path", "") for route in routes)
            if path and "{" not in path
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[ROUTE_TEMPLATE_SCOPE_KEY] = self.templates_by_path.get(
                scope["path"]
            ) or resolve_route_template(self.routes, scope)
        await self.app(scope, receive, send)


class RequestMetricsMiddleware:
    """Counts and times every request by route template, method and status code, and writes its
    access line (`app.observability.access_log`) from the same status and duration.

    It wraps every layer that can answer early (401, 503, 413), so that those are counted and logged
    too, and turns an unexpected exception into a 500 `internal_error` JSON body: logged with its
    traceback here, never sent to the client. Inside `RequestIdMiddleware`: the access line carries
    the request ID.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_template(scope)
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        started_seconds = time.perf_counter()
        status_code = 500
        is_response_started = False
        response_bytes = 0

        async def send_and_record(message: Message) -> None:
            nonlocal status_code, is_response_started, response_bytes
            if message["type"] == "http.response.start":
                status_code, is_response_started = message["status"], True
            elif message["type"] == "http.response.body":
                response_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except Exception:
            logger.exception("unhandled error", extra={"fields": {"route": route, "method": method}})
            self.metrics.rejected_requests.labels(reason="internal_error").inc()
            if is_response_started:
                raise
            status_code = 500
            response = build_error_response(
                500, "internal_error", "internal server error; it has been logged"
            )
            await response(scope, receive, send_and_record)
        finally:
            duration_seconds = time.perf_counter() - started_seconds
            self.metrics.observe_request(route, method, status_code, duration_seconds)
            if is_access_log_enabled():
                write_access_line(scope, status_code, duration_seconds, response_bytes)
