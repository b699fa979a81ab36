"""Settings -> the FastAPI application: routes, error handlers, middlewares, and the model's lifespan.

`create_app(settings)` builds one independent app (its own metrics registry, no globals), which is how
tests run several apps with different settings in one process. The lifespan loads the model, warms
it up and starts the batcher before the first request; `/readyz` answers 200 only from then on.
The module-level `app` exists for `uvicorn app.main:app` alone.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry
from starlette.routing import BaseRoute, Route

from app.api.admission import QueueFullShedMiddleware
from app.api.auth import ApiKeyMiddleware, ApiKeyVerifier, document_api_key_security
from app.api.body_limits import BodySizeLimitMiddleware
from app.api.deps import ServiceState
from app.api.error_handlers import register_error_handlers
from app.api.middleware import (
    RequestIdMiddleware,
    RequestMetricsMiddleware,
    RouteMatchMiddleware,
)
from app.api.routes import docs, health, metrics, predict, preprocess, read, web
from app.observability.logging import configure_logging
from app.observability.metrics import build_metrics
from app.pipeline.batcher import BatcherConfig, MicroBatcher
from app.pipeline.decode_pool import DecodeBudget, DecodePool
from app.pipeline.postprocess import AnswerPolicy
from app.settings import Settings
from digits.calibration import Calibration
from digits.errors import ModelLoadError
from digits.model import DigitModel, configure_thread_pools

logger = logging.getLogger(__name__)

API_DESCRIPTION = """Reads handwritten digits in photos, scans and drawings.

Upload an image to `POST /predict` (or several to `POST /predict/batch`); the service finds the digit,
normalizes it like MNIST (`POST /preprocess` shows the result) and returns the digit with its
probabilities. Errors are JSON `{"detail", "code"}` with a stable `code`.
"""


def warm_up_batch_sizes(batch_max_size: int) -> tuple[int, ...]:
    """The batch sizes run at start-up: a lone request and a full batch, the two most frequent."""
    return (1,) if batch_max_size == 1 else (1, batch_max_size)


def refuse_smoke_test_model(model: DigitModel, settings: Settings) -> None:
    """Refuses to serve a smoke-test model unless `allow_smoke_test_model` says to.

    Raises:
        ModelLoadError: the card marks a smoke test (the process exits before serving).
    """
    if model.is_smoke_test and not settings.allow_smoke_test_model:
        raise ModelLoadError(
            f"model version {model.version} in {settings.model_dir} is a smoke test (trained with --quick on "
            "a few hundred images; its card says smoke_test) and reads digits badly: serve another version "
            "(DIGITSERVE_MODEL_VERSION), or set DIGITSERVE_ALLOW_SMOKE_TEST_MODEL=true to serve it anyway"
        )


def describe_served_model(model: DigitModel) -> dict[str, object]:
    """What the start-up log says of the served model: version, identity, card summary."""
    # A card is written by training, but may be edited by hand: read it without trusting its shape.
    datasets = model.card.get("datasets")
    names = (
        [entry.get("name") for entry in datasets if isinstance(entry, dict)]
        if isinstance(datasets, list)
        else []
    )
    return {
        "model_version": model.version,
        "model_sha256": model.sha256[:12],
        "smoke_test": model.is_smoke_test,
        "trained_on": ",".join(str(name) for name in names if name) or "unknown",
        "created_at": str(model.card.get("created_at", "unknown")),
    }


def freeze_start_up_objects() -> None:
    """Moves every object alive after start-up out of the garbage collector's reach.

    TensorFlow and the loaded model leave ~370,000 tracked objects, and a full collection walks them
    all: ~220 ms on 2 cores, with the event loop stopped. Under load the collector runs one every few
    seconds, which was the whole tail of the latency (`bench.overload`'s 503 p99). These objects live as
    long as the process, so nothing is lost by never collecting them; garbage made before is collected
    first, not frozen.
    """
    gc.collect()
    gc.freeze()


def configure_library_threads(settings: Settings) -> None:
    """Sizes TensorFlow's thread pools, which it keeps per process (one service per process).

    Runs in the lifespan, before any request: TensorFlow accepts sizes only before it starts. The
    service's own workers (the decode processes, each sizing OpenCV's pool, and the model thread) are
    not process-wide: `ServiceState` owns them and the lifespan stops them.
    """
    configure_thread_pools(settings.tf_intra_op_threads, settings.tf_inter_op_threads)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, ServiceState]]:
    """Loads and warms up the model, runs the batcher while the app serves, then stops it.

    Yields:
        The lifespan state `{"service": ServiceState}`, copied into every request.

    Raises:
        ModelLoadError: no model where the settings point (the process exits before serving).
    """
    settings = app.state.settings
    configure_logging(settings.log_level)
    state = ServiceState(settings=settings, metrics=app.state.metrics)
    configure_library_threads(settings)
    # Loading and the warm-up take seconds of TensorFlow work: off the loop, like every model call.
    state.model = await asyncio.to_thread(DigitModel.load, settings.model_dir, settings.model_version)
    refuse_smoke_test_model(state.model, settings)
    # ModelLoadError for a malformed calibration: answers nobody fitted are never served.
    state.answer_policy = AnswerPolicy.for_model(
        Calibration.from_card(state.model.card), settings.min_confidence
    )
    served_model = describe_served_model(state.model) | {
        "temperature": state.answer_policy.calibration.temperature,
        "min_confidence": state.answer_policy.min_confidence,
    }
    await asyncio.to_thread(state.model.warm_up, warm_up_batch_sizes(settings.batch_max_size))
    state.metrics.set_model_info(state.model.version, state.model.sha256, state.model.is_smoke_test)
    batcher_config = BatcherConfig(
        batch_max_size=settings.batch_max_size,
        batch_max_wait_ms=settings.batch_max_wait_ms,
        queue_max_size=settings.queue_max_size,
        queue_retry_after_seconds=settings.queue_retry_after_seconds,
    )
    state.batcher = MicroBatcher(state.call_model, batcher_config, observer=state.metrics)
    state.decode_pool = DecodePool(
        DecodeBudget.from_settings(settings), observe_task_size=state.metrics.decode_task_uploads.observe
    )
    await state.decode_pool.warm_up()
    freeze_start_up_objects()
    state.batcher.start()
    state.is_ready = True
    logger.info("ready", extra={"fields": served_model})
    try:
        yield {"service": state}
    finally:
        state.is_ready = False
        await state.batcher.stop()
        await state.decode_pool.shutdown()
        gc.unfreeze()  # what this service froze may be collected once it has stopped (tests run many)
        logger.info("stopped")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Builds the service.

    Args:
        settings: the configuration; None reads it from the DIGITSERVE_* environment variables.

    Returns:
        The FastAPI app. Its model is loaded when its lifespan starts (uvicorn, `LifespanManager`).
    """
    settings = settings or Settings()
    app = FastAPI(
        title="digitserve",
        summary="Handwritten digit recognition",
        description=API_DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's own pages load their scripts from a CDN; `docs.router` serves them from this app.
        docs_url=None,
        redoc_url=None,
    )
    upload_routers = (predict.router, read.router, preprocess.router)
    routers = (*upload_routers, health.router, metrics.router, web.router, docs.router)
    for router in routers:
        # FastAPI would keep only the last of two `file` fields: every upload route refuses them.
        dependencies = [Depends(predict.reject_repeated_file_field)] if router in upload_routers else None
        app.include_router(router, dependencies=dependencies)
    # FastAPI keeps included routers as opaque entries; route matching needs the routes themselves.
    routes = [route for route in app.router.routes if isinstance(route, Route)]
    routes += [route for router in routers for route in router.routes]
    app.state.settings = settings
    route_methods = [(route.path, method) for route in routes for method in sorted(route.methods or ())]
    app.state.metrics = build_metrics(
        CollectorRegistry(), settings.batch_max_size, route_methods, settings.decode_uploads_per_task
    )
    register_error_handlers(app, app.state.metrics)
    add_middlewares(app, settings, routes)
    return app


def image_route_paths() -> list[str]:
    """The route templates that take uploads and do image work: admitted by the batcher's room."""
    image_routers = (predict.router, read.router, preprocess.router)
    return [route.path for router in image_routers for route in router.routes]


def api_key_protected_paths(settings: Settings) -> list[str]:
    """The route templates that need an API key when keys are set: every upload route, maybe /metrics."""
    paths = image_route_paths()
    if settings.metrics_require_api_key:
        paths += [route.path for route in metrics.router.routes]
    return paths


def add_middlewares(app: FastAPI, settings: Settings, routes: list[BaseRoute]) -> None:
    """Wraps the app, outside in: route match, request ID, metrics, API key (if keys are set),
    shedding, body limit.

    The route is matched once, first, for every layer that decides by route. The request ID wraps
    every layer that can answer, so that every response and log line carries it; the metrics layer
    wraps the others, so that early 401s, 503s and 413s are counted too.
    """
    app.add_middleware(
        BodySizeLimitMiddleware,
        upload_max_bytes=settings.upload_max_bytes,
        metrics=app.state.metrics,
        upload_spool_max_bytes=settings.upload_spool_max_bytes,
    )
    app.add_middleware(QueueFullShedMiddleware, shed_paths=image_route_paths(), metrics=app.state.metrics)
    if settings.api_keys:
        protected_paths = api_key_protected_paths(settings)
        app.add_middleware(
            ApiKeyMiddleware,
            verifier=ApiKeyVerifier(settings.api_keys),
            protected_paths=protected_paths,
            metrics=app.state.metrics,
        )
        document_api_key_security(app, protected_paths)
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(RouteMatchMiddleware, routes=routes)


app = create_app()
