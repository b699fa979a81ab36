"""Upload bytes -> `PredictionResponse`: the request path, stage by stage, shared by the routes.

room reserved in the batcher's queue (503 + Retry-After at once when there is none) -> decode ->
preprocess (on the decode pool, before queueing, so bad input never takes a batch slot) -> submit into
the reserved room -> model in the batcher's thread -> postprocess -> response; all within
`request_timeout_seconds` (504 past it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import numpy as np

from app.api.deps import ServiceState
from app.api.errors import http_status
from app.api.schemas import BatchItemErrorResponse, ErrorResponse, PredictionResponse
from app.observability.metrics import Metrics
from app.pipeline.decode import decode_image
from app.pipeline.postprocess import postprocess_probabilities
from app.pipeline.preprocess import PreprocessedDigit, encode_png, preprocess_image
from digits.contract import to_model_input
from digits.errors import DigitServeError, RequestTimeoutError


@asynccontextmanager
async def request_deadline(timeout_seconds: float) -> AsyncIterator[None]:
    """Cancels the enclosed work after `timeout_seconds` and raises `RequestTimeoutError` (504).

    A request cancelled while queued frees its slot: the batcher skips cancelled futures.
    """
    try:
        async with asyncio.timeout(timeout_seconds) as deadline:
            yield
    except TimeoutError as error:
        if not deadline.expired():
            raise
        raise RequestTimeoutError(
            f"the prediction did not complete within {timeout_seconds:g} seconds; retry later"
        ) from error


def decode_and_preprocess(data: bytes, max_image_pixels: int, metrics: Metrics) -> PreprocessedDigit:
    """Upload bytes -> the canonical digit, timed as one stage (blocking: run it on the decode pool).

    Raises:
        DigitServeError: the 400, 413, 415 or 422 of the decode and preprocess stages.
    """
    started_seconds = time.perf_counter()
    try:
        return preprocess_image(decode_image(data, max_image_pixels=max_image_pixels))
    finally:
        metrics.preprocess_duration.observe(time.perf_counter() - started_seconds)


def _render_model_view(data: bytes, max_image_pixels: int, metrics: Metrics) -> tuple[bytes, bool]:
    digit = decode_and_preprocess(data, max_image_pixels, metrics)
    return encode_png(digit.canonical), digit.is_inverted


async def render_model_view(state: ServiceState, data: bytes) -> tuple[bytes, bool]:
    """Returns the PNG of what the model would see for an upload, and whether it was inverted.

    The decoding is admitted like a prediction's: it holds room for one image while it runs (room
    no batch waits for, since no image follows it to the model).

    Raises:
        DigitServeError: the 400, 413, 415 or 422 of the decode and preprocess stages; a full queue (503).
    """
    with state.batcher.reserve(1, is_for_model=False):
        return await state.decode_pool.run(
            _render_model_view, data, state.settings.image_max_pixels, state.metrics
        )


async def prepare_upload(state: ServiceState, data: bytes) -> PreprocessedDigit:
    """Decodes and pre-processes one upload on the decode pool (Pillow and OpenCV would block the loop).

    Raises:
        DigitServeError: the 400, 413, 415 or 422 of the decode and preprocess stages.
    """
    return await state.decode_pool.run(
        decode_and_preprocess, data, state.settings.image_max_pixels, state.metrics
    )


def _to_response(
    state: ServiceState, digit: PreprocessedDigit, probabilities: np.ndarray
) -> PredictionResponse:
    prediction = postprocess_probabilities(probabilities)
    state.metrics.predictions.labels(digit=str(prediction.digit)).inc()
    return PredictionResponse(
        digit=prediction.digit,
        confidence=prediction.confidence,
        probabilities=list(prediction.probabilities),
        inverted=digit.is_inverted,
        model_version=state.model.version,
    )


async def predict_upload(state: ServiceState, data: bytes) -> PredictionResponse:
    """Reads the digit in one uploaded image.

    Raises:
        DigitServeError: bad input (4xx), a full queue (503), a model failure (500), a timeout (504).
    """
    async with request_deadline(state.settings.request_timeout_seconds):
        with state.batcher.reserve(1) as reservation:
            digit = await prepare_upload(state, data)
            probabilities = await reservation.submit(to_model_input(digit.canonical))
    return _to_response(state, digit, probabilities)


def _to_item_error(state: ServiceState, error: DigitServeError) -> BatchItemErrorResponse:
    state.metrics.rejected_requests.labels(reason=error.code).inc()
    return BatchItemErrorResponse(
        status_code=http_status(error), error=ErrorResponse(detail=error.detail, code=error.code)
    )


async def predict_uploads(
    state: ServiceState, uploads: Sequence[bytes]
) -> list[PredictionResponse | BatchItemErrorResponse]:
    """Reads the digit in each uploaded image; an unreadable image yields an error at its index.

    Input errors (4xx) stay with their image. Service errors (queue full, model failure, timeout)
    fail the whole request: a 200 holding 500s would hide an outage from the client.

    Raises:
        DigitServeError: a full queue (503), a model failure (500), a timeout (504).
    """
    async with request_deadline(state.settings.request_timeout_seconds):
        with state.batcher.reserve(len(uploads)) as reservation:
            outcomes = await asyncio.gather(
                *(prepare_upload(state, data) for data in uploads), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(outcome, DigitServeError):
                    raise outcome
            digits = [outcome for outcome in outcomes if isinstance(outcome, PreprocessedDigit)]
            model_inputs = [to_model_input(digit.canonical) for digit in digits]
            rows = await reservation.submit_many(model_inputs) if model_inputs else []
    rows_in_order = iter(rows)
    answers: list[PredictionResponse | BatchItemErrorResponse] = []
    for outcome in outcomes:
        if isinstance(outcome, DigitServeError):
            answers.append(_to_item_error(state, outcome))
        else:
            answers.append(_to_response(state, outcome, next(rows_in_order)))
    return answers
