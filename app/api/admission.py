"""Request headers -> admitted, or 503 + Retry-After at once while the queue has no room, unread.

Decoding an upload costs far more CPU than refusing it. Without admission, an overloaded service
would read, parse and decode every request and only then refuse most of them at the queue: slow
503s, and CPU and event-loop time taken from the requests it does serve, until it serves almost
none. So requests to the image routes are refused at the door, from their headers alone, while the
batcher has no room for a single image. The exact decision, once a request's files are counted, is
the batcher's (`MicroBatcher.reserve`): this layer only asks it, and it owns the rule and the message.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.error_handlers import render_domain_error
from app.api.middleware import route_template
from app.observability.logging import LogThrottle
from app.observability.metrics import Metrics
from digits.errors import QueueFullError

logger = logging.getLogger(__name__)

SHED_LOG_INTERVAL_SECONDS = 1.0


class QueueFullShedMiddleware:
    """Answers 503 + Retry-After to uploads for `shed_paths` while the queue has no room for one image.

    Args:
        app: the next ASGI layer.
        shed_paths: route templates of the routes that do image work, e.g. {"/predict"}.
        metrics: counts refusals as `digitserve_rejected_requests_total{reason="queue_full"}`.
    """

    def __init__(self, app: ASGIApp, shed_paths: Collection[str], metrics: Metrics) -> None:
        self.app = app
        self.shed_paths = frozenset(shed_paths)
        self.metrics = metrics
        self.log_throttle = LogThrottle(SHED_LOG_INTERVAL_SECONDS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state", {}).get("service") if scope["type"] == "http" else None
        if (
            state is None
            or not state.is_ready
            or state.batcher.has_room()
            or route_template(scope) not in self.shed_paths
        ):
            await self.app(scope, receive, send)
            return
        self.metrics.rejected_requests.labels(reason=QueueFullError.code).inc()
        error = state.batcher.queue_full_error()
        held_back = self.log_throttle.admit()
        if held_back is not None:
            fields = {"code": error.code, "path": scope["path"], "similar_refusals_not_logged": held_back}
            logger.warning("request refused unread: %s", error.detail, extra={"fields": fields})
        await render_domain_error(error)(scope, receive, send)
