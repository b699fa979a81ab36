"""Request -> the service's state (settings, metrics, model, batcher), as `Annotated` dependencies.

The lifespan in `app.main` builds one `ServiceState` and yields it as lifespan state; Starlette copies
that state into every request. Routes receive it through `ServiceDep` (built on `get_state`), which
refuses with 503 until the model is warmed up. The dependencies are `async` only because FastAPI runs
plain functions in a thread pool: a thread hop per request for a lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Annotated

import numpy as np
from fastapi import Depends, Request

from app.observability.metrics import Metrics
from app.pipeline.batcher import MicroBatcher
from app.pipeline.decode_pool import DecodePool
from app.pipeline.image_header import DecodeLimits
from app.pipeline.postprocess import AnswerPolicy
from app.settings import Settings
from digits.errors import ServiceNotReadyError

if TYPE_CHECKING:  # the loader imports TensorFlow, which the HTTP layer never loads itself
    from digits.model import DigitModel


@dataclass
class ServiceState:
    """Everything a request needs, owned by the lifespan.

    Attributes:
        settings: the service's configuration.
        metrics: the app's metrics.
        model: the loaded model, None until loaded.
        batcher: the running batcher, None until started; it owns the queue's room.
        decode_pool: the worker processes that decode and pre-process uploads, None until started.
        answer_policy: the served model's calibration and minimum confidence.
        is_ready: True from the end of the warm-up to the start of the shutdown.
    """

    settings: Settings
    metrics: Metrics
    model: DigitModel | None = None
    batcher: MicroBatcher | None = None
    decode_pool: DecodePool | None = None
    answer_policy: AnswerPolicy = field(default_factory=AnswerPolicy)
    is_ready: bool = False

    @cached_property
    def decode_limits(self) -> DecodeLimits:
        """What one upload may ask of the decoder: built once from the (frozen) settings."""
        return DecodeLimits.from_settings(self.settings)

    def call_model(self, images: np.ndarray) -> np.ndarray:
        """The batcher's `predict_fn`: looks the model up at each call (tests swap it for a failing one)."""
        if self.model is None:
            raise ServiceNotReadyError("the model is not loaded")
        return self.model.predict_batch(images)


async def get_state(request: Request) -> ServiceState:
    """Returns the lifespan's state.

    Raises:
        ServiceNotReadyError: the lifespan has not started (the app runs without one).
    """
    state = getattr(request.state, "service", None)
    if state is None:
        raise ServiceNotReadyError("the service is starting; the model is not loaded yet")
    return state


async def get_ready_state(state: Annotated[ServiceState, Depends(get_state)]) -> ServiceState:
    """Returns the lifespan's state if the model is loaded and warmed up.

    Raises:
        ServiceNotReadyError: before the warm-up has finished, or once the shutdown has begun.
    """
    if not state.is_ready or state.batcher is None or state.model is None or state.decode_pool is None:
        raise ServiceNotReadyError("the model is not ready; retry shortly")
    return state


ServiceDep = Annotated[ServiceState, Depends(get_ready_state)]
