"""Request -> admitted (room held in the batching queue) or 503 + Retry-After at once, before any work.

Decoding an upload costs far more CPU than refusing it. Without admission, an overloaded service
would read, parse and decode every request and only then refuse most of them at the queue: slow
503s, and CPU and event-loop time taken from the requests it does serve, until it serves almost
none. So room is taken at the door:

- `QueueFullShedMiddleware` refuses uploads to the prediction routes from their headers alone while
  the queue has no room for a single image: under overload, most requests end there, unread.
- `admit_images` decides exactly, once a request's files are counted: it holds room for them while
  they are decoded. Held room counts as queued, so `DIGITSERVE_QUEUE_MAX_SIZE` bounds the images on
  their way as well as those waiting, and an admitted request is never refused after its decoding.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import ServiceState
from app.api.error_handlers import render_domain_error
from app.api.middleware import resolve_route_template
from app.observability.logging import LogThrottle
from app.observability.metrics import Metrics
from digits.errors import QueueFullError

logger = logging.getLogger(__name__)

SHED_LOG_INTERVAL_SECONDS = 1.0


def free_image_slots(state: ServiceState) -> int:
    """Room left in the batching queue: its size minus images queued and images being decoded."""
    return state.settings.queue_max_size - state.batcher.queue_depth - state.images_in_preparation


def queue_full_error(state: ServiceState) -> QueueFullError:
    """The 503 of a full queue, with the configured Retry-After."""
    settings = state.settings
    return QueueFullError(
        f"the prediction queue is full ({settings.queue_max_size} images); retry later",
        retry_after_seconds=settings.queue_retry_after_seconds,
    )


@contextmanager
def admit_images(state: ServiceState, image_count: int) -> Iterator[None]:
    """Holds room in the batching queue for `image_count` images while they are decoded.

    Leave the block right before `batcher.submit` (no await in between): the room passes from here
    to the queue without anyone else taking it.

    Raises:
        QueueFullError: the queue and the images in preparation leave no room (raised at once).
    """
    if image_count > free_image_slots(state):
        raise queue_full_error(state)
    state.images_in_preparation += image_count
    try:
        yield
    finally:
        state.images_in_preparation -= image_count


class QueueFullShedMiddleware:
    """Answers 503 + Retry-After to uploads for `shed_paths` while the queue has no room for one image.

    Args:
        app: the next ASGI layer.
        routes: the app's routes, to match a request the way the router will.
        shed_paths: route templates of the prediction routes, e.g. {"/predict"}.
        metrics: counts refusals as `digitserve_rejected_requests_total{reason="queue_full"}`.
    """

    def __init__(
        self, app: ASGIApp, routes: Sequence[BaseRoute], shed_paths: Collection[str], metrics: Metrics
    ) -> None:
        self.app = app
        self.routes = routes
        self.shed_paths = frozenset(shed_paths)
        self.metrics = metrics
        self.log_throttle = LogThrottle(SHED_LOG_INTERVAL_SECONDS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state", {}).get("service") if scope["type"] == "http" else None
        if (
            state is None
            or not state.is_ready
            or free_image_slots(state) > 0
            or resolve_route_template(self.routes, scope) not in self.shed_paths
        ):
            await self.app(scope, receive, send)
            return
        self.metrics.rejected_requests.labels(reason=QueueFullError.code).inc()
        error = queue_full_error(state)
        held_back = self.log_throttle.admit()
        if held_back is not None:
            fields = {"code": error.code, "path": scope["path"], "similar_refusals_not_logged": held_back}
            logger.warning("request refused unread: %s", error.detail, extra={"fields": fields})
        await render_domain_error(error)(scope, receive, send)
