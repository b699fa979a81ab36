"""Upload bytes -> `PredictionResponse`: the request path, stage by stage, shared by the routes.

room reserved in the batcher's queue (503 + Retry-After at once when there is none) -> header read,
and more room reserved for a costly image -> decode + preprocess (in a decode worker, before
queueing, so bad input never takes a batch slot) -> submit into the reserved room -> model in the
batcher's thread -> postprocess -> response; all within `request_timeout_seconds` (504 past it), and
dropped as soon as the client disconnects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from starlette.types import Receive

from app.api.deps import ServiceState
from app.api.disconnect import cancelled_on_disconnect
from app.api.errors import http_status
from app.api.schemas import (
    AlternativeResponse,
    BatchItemErrorResponse,
    BatchPredictionItemResponse,
    ErrorResponse,
    PredictionResponse,
)
from app.pipeline import prepare
from app.pipeline.image_header import inspect_image
from app.pipeline.preprocess import PreprocessedDigit
from app.pipeline.queue_room import Reservation
from digits.contract import to_model_input
from digits.errors import DigitServeError, RequestTimeoutError

Result = TypeVar("Result")


@dataclass(frozen=True)
class UploadedImage:
    """One file of a batch: the name it was uploaded under (echoed in its answer) and its bytes."""

    filename: str
    data: bytes


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


def header_cost(state: ServiceState, data: bytes) -> int:
    """Reads an upload's header -> the queue units its decoding costs beyond its door unit.

    Raises:
        DigitServeError: the header's 400, 413, 415 or 422.
    """
    header = inspect_image(data, state.decode_limits)
    return header.decoded_bytes // state.settings.image_cost_unit_bytes


def cost_or_error(state: ServiceState, data: bytes) -> int | DigitServeError:
    try:
        return header_cost(state, data)
    except DigitServeError as error:
        return error


async def _run_unless_refused(
    state: ServiceState, task: Callable[..., Result], data: bytes, cost: int | DigitServeError, options: tuple
) -> Result:
    if isinstance(cost, DigitServeError):
        raise cost
    return await run_decode_task(state, task, data, *options, cost_units=cost)


async def prepare_batch(
    state: ServiceState,
    reservation: Reservation,
    uploads: Sequence[UploadedImage],
    task: Callable[..., Result],
    *options: object,
) -> list[Result | DigitServeError]:
    """A batch's uploads -> each one's `task(data, limits, *options)` result, or its own input error.

    Every header first, and the room for all of them at once: a request refused for room is refused
    before any of its uploads is decoded.

    Raises:
        DigitServeError: the first service error (a full queue, a stopping service): a 200 holding
            5xx items would hide an outage from the client.
    """
    costs = [cost_or_error(state, upload.data) for upload in uploads]
    reservation.add_cost(sum(cost for cost in costs if isinstance(cost, int)))
    outcomes = await asyncio.gather(
        *(
            _run_unless_refused(state, task, upload.data, cost, options)
            for upload, cost in zip(uploads, costs, strict=True)
        ),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not is_input_error(outcome):
            raise outcome
    return outcomes


async def run_decode_task(
    state: ServiceState, task: Callable[..., Result], data: bytes, *options: object, cost_units: int
) -> Result:
    """Runs `task(data, limits, *options)` on the decode workers, timed as the preprocess stage
    (waiting included).

    `cost_units` is the upload's `header_cost`: an upload that costs nothing beyond its door unit (a
    decode under `image_cost_unit_bytes`, 1 MiB) may share a worker task with others, where the
    hand-off costs as much as the decode; a larger one is decoded in a task of its own, so that no
    upload waits for another's long decode to be answered.
    """
    started_seconds = time.perf_counter()
    run = state.decode_pool.run if cost_units == 0 else state.decode_pool.run_alone
    try:
        return await run(task, data, state.decode_limits, *options)
    finally:
        state.metrics.preprocess_duration.observe(time.perf_counter() - started_seconds)


async def render_model_view(state: ServiceState, data: bytes, receive: Receive) -> tuple[bytes, bool]:
    """Returns the PNG of what the model would see for an upload, and whether it was inverted.

    The decoding is admitted like a prediction's: it holds room while it runs (room no batch waits
    for, since no image follows it to the model).

    Raises:
        DigitServeError: the 400, 413, 415 or 422 of the decode and preprocess stages; a full queue (503).
    """
    async with request_scope(state, receive):
        with state.batcher.reserve(1, is_for_model=False) as reservation:
            cost = header_cost(state, data)
            reservation.add_cost(cost)
            return await run_decode_task(state, prepare.render_model_view, data, cost_units=cost)


def _to_response(
    state: ServiceState, digit: PreprocessedDigit, probabilities: np.ndarray
) -> PredictionResponse:
    prediction = state.answer_policy.judge(probabilities, digit.digit_parts)
    state.metrics.observe_prediction(prediction)
    return PredictionResponse(
        digit=prediction.digit,
        confidence=prediction.confidence,
        probabilities=list(prediction.probabilities),
        unsure=prediction.unsure,
        reason=prediction.reason,
        alternatives=[
            AlternativeResponse(digit=alternative.digit, probability=alternative.probability)
            for alternative in prediction.alternatives
        ],
        inverted=digit.is_inverted,
        model_version=state.model.version,
    )


@asynccontextmanager
async def request_scope(state: ServiceState, receive: Receive) -> AsyncIterator[None]:
    """Bounds one request's work: its deadline (504), and its client's connection (499 on disconnect)."""
    async with cancelled_on_disconnect(receive), request_deadline(state.settings.request_timeout_seconds):
        yield


async def predict_upload(state: ServiceState, data: bytes, receive: Receive) -> PredictionResponse:
    """Reads the digit in one uploaded image (`receive`: the request's, to notice a disconnect).

    Raises:
        DigitServeError: bad input (4xx), a full queue (503), a model failure (500), a timeout (504),
            a disconnected client (499).
    """
    async with request_scope(state, receive):
        with state.batcher.reserve(1) as reservation:
            cost = header_cost(state, data)
            reservation.add_cost(cost)
            digit = await run_decode_task(state, prepare.prepare_digit, data, cost_units=cost)
            probabilities = await reservation.submit(to_model_input(digit.canonical))
    return _to_response(state, digit, probabilities)


def is_input_error(error: BaseException) -> bool:
    """Whether an upload's failure is its own (4xx, answered at its index) rather than the service's."""
    return isinstance(error, DigitServeError) and http_status(error) < 500


def to_item_error(state: ServiceState, error: DigitServeError, filename: str) -> BatchItemErrorResponse:
    """The answer at a batch's index whose file failed on its own (counted like a refused request)."""
    state.metrics.rejected_requests.labels(reason=error.code).inc()
    return BatchItemErrorResponse(
        filename=filename,
        status_code=http_status(error),
        error=ErrorResponse(detail=error.detail, code=error.code),
    )


async def predict_uploads(
    state: ServiceState, uploads: Sequence[UploadedImage], receive: Receive
) -> list[BatchPredictionItemResponse | BatchItemErrorResponse]:
    """Reads the digit in each uploaded image; an unreadable image yields an error at its index.

    Input errors (4xx) stay with their image. Service errors (queue full, model failure, timeout)
    fail the whole request: a 200 holding 500s would hide an outage from the client.

    Raises:
        DigitServeError: a full queue (503), a model failure (500), a timeout (504).
    """
    async with request_scope(state, receive):
        with state.batcher.reserve(len(uploads)) as reservation:
            outcomes = await prepare_batch(state, reservation, uploads, prepare.prepare_digit)
            digits = [outcome for outcome in outcomes if isinstance(outcome, PreprocessedDigit)]
            model_inputs = [to_model_input(digit.canonical) for digit in digits]
            rows = await reservation.submit_many(model_inputs) if model_inputs else []
    rows_in_order = iter(rows)
    answers: list[BatchPredictionItemResponse | BatchItemErrorResponse] = []
    for upload, outcome in zip(uploads, outcomes, strict=True):
        if isinstance(outcome, DigitServeError):
            answers.append(to_item_error(state, outcome, upload.filename))
        else:
            answer = _to_response(state, outcome, next(rows_in_order))
            answers.append(BatchPredictionItemResponse(**dict(answer), filename=upload.filename))
    return answers
