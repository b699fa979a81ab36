"""Upload bytes -> `ReadResponse`: the request path of `/read`, stage by stage.

As for `/predict` (`inference`): room reserved in the batcher's queue for the upload -> header read
-> decode and segmentation in a decode worker (`prepare.prepare_number`) -> room for every cut-out of
every reading -> all of them to the model in one `submit_many`, batched with other requests' images
-> the readings chosen and judged (`read_choice`) -> response; within the request's deadline, dropped
when the client disconnects.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence

import numpy as np
from starlette.types import Receive

from app.api.deps import ServiceState
from app.api.inference import (
    UploadedImage,
    header_cost,
    is_input_error,
    prepare_batch,
    request_scope,
    run_decode_task,
    to_item_error,
)
from app.api.read_schemas import (
    BatchReadItemResponse,
    BoxResponse,
    ReadDigitResponse,
    ReadResponse,
)
from app.api.schemas import AlternativeResponse, BatchItemErrorResponse
from app.pipeline import prepare
from app.pipeline.preprocess import encode_png
from app.pipeline.queue_room import Reservation
from app.pipeline.read_choice import NumberLooks, ReadDigit, choose_reading
from app.pipeline.segment import SegmentedNumber
from digits.errors import DigitServeError

# Queue room a number takes at admission, before its upload is segmented: the cut-outs of a typical
# number's first look (3-7 digits written from training digits, half with a touching pair: 8 to 12 on
# average), so that an overloaded service refuses numbers before decoding them. Room for more, when a
# number has more, is asked for after segmentation, and room for the second look after the first:
# either may be refused, 503 when the queue is busy, 413 when it needs more than the whole queue.
ADMISSION_IMAGES_PER_NUMBER = 12


async def _segment(state: ServiceState, data: bytes, cost_units: int) -> SegmentedNumber:
    return await run_decode_task(
        state, prepare.prepare_number, data, state.settings.read_max_digits, cost_units=cost_units
    )


async def _read_candidates(
    state: ServiceState, reservation: Reservation, numbers: list[SegmentedNumber], reserved_images: int
) -> list[np.ndarray]:
    """The candidates of `numbers` through the model, one submission a look (`NumberLooks`): the first
    into the room held since admission, the second into room asked for then -> one rows array per
    number (NaN where a candidate was not read)."""
    looks = NumberLooks(numbers)
    first = looks.next_inputs()
    reservation.add_images(max(0, len(first) - reserved_images))
    looks.take(await reservation.submit_many(first))
    if second := looks.next_inputs():
        with state.batcher.reserve(1) as second_reservation:
            second_reservation.add_images(len(second) - 1)
            looks.take(await second_reservation.submit_many(second))
    return looks.rows


def _digit_response(digit: ReadDigit, include_model_view: bool) -> ReadDigitResponse:
    prediction, (x, y, width, height) = digit.prediction, digit.candidate.box
    model_view = None
    if include_model_view:
        model_view = base64.b64encode(encode_png(digit.candidate.canonical)).decode("ascii")
    return ReadDigitResponse(
        digit=prediction.digit,
        confidence=prediction.confidence,
        unsure=prediction.unsure,
        reason=prediction.reason,
        alternatives=[
            AlternativeResponse(digit=a.digit, probability=a.probability) for a in prediction.alternatives
        ],
        box=BoxResponse(x=x, y=y, width=width, height=height),
        model_view=model_view,
    )


def _to_response(
    state: ServiceState, number: SegmentedNumber, rows: np.ndarray, include_model_view: bool
) -> ReadResponse:
    reading = choose_reading(number, rows, state.answer_policy, state.settings.read_max_digits)
    for digit in reading.digits:
        state.metrics.observe_prediction(digit.prediction)
    return ReadResponse(
        text=reading.text,
        digits=[_digit_response(digit, include_model_view) for digit in reading.digits],
        unsure=reading.unsure,
        reason=reading.reason,
        inverted=number.is_inverted,
        model_version=state.model.version,
    )


async def read_upload(
    state: ServiceState, data: bytes, receive: Receive, include_model_view: bool = False
) -> ReadResponse:
    """Reads the number in one uploaded image (`receive`: the request's, to notice a disconnect).

    Raises:
        DigitServeError: bad input (4xx, `too_many_digits` among them), a full queue (503), a model
            failure (500), a timeout (504), a disconnected client (499).
    """
    async with request_scope(state, receive):
        with state.batcher.reserve(1) as reservation:
            cost = header_cost(state, data)
            reservation.add_cost(cost)
            # A queue smaller than a typical number's room (a deployment tuned for /predict) admits a
            # number with the room its decoding leaves; one that then needs more than the whole queue
            # is refused 413, in its own words.
            extra_images = max(0, min(ADMISSION_IMAGES_PER_NUMBER - 1, reservation.spare_capacity_units))
            reservation.add_images(extra_images)
            number = await _segment(state, data, cost)
            (rows,) = await _read_candidates(state, reservation, [number], reserved_images=1 + extra_images)
    return _to_response(state, number, rows, include_model_view)


async def read_uploads(
    state: ServiceState, uploads: Sequence[UploadedImage], receive: Receive, include_model_view: bool = False
) -> list[BatchReadItemResponse | BatchItemErrorResponse]:
    """Reads the number in each uploaded image; an unreadable image yields an error at its index.

    Input errors (4xx) stay with their image; service errors fail the whole request, as in
    `/predict/batch`.
    """
    async with request_scope(state, receive):
        with state.batcher.reserve(len(uploads)) as reservation:
            # A batch's estimate stays within half the queue, so that a full batch is admitted when idle.
            reserved = min(len(uploads) * ADMISSION_IMAGES_PER_NUMBER, state.settings.queue_max_size // 2)
            reservation.add_images(max(0, reserved - len(uploads)))
            outcomes = await prepare_batch(
                state, reservation, uploads, prepare.prepare_number, state.settings.read_max_digits
            )
            numbers = [outcome for outcome in outcomes if isinstance(outcome, SegmentedNumber)]
            rows = await _read_candidates(state, reservation, numbers, reserved) if numbers else []
    rows_in_order = iter(rows)
    return [
        _batch_item(state, upload, outcome, rows_in_order, include_model_view)
        for upload, outcome in zip(uploads, outcomes, strict=True)
    ]


def _batch_item(
    state: ServiceState,
    upload: UploadedImage,
    outcome: SegmentedNumber | DigitServeError,
    rows_in_order: Iterator[np.ndarray],
    include_model_view: bool,
) -> BatchReadItemResponse | BatchItemErrorResponse:
    """One file's entry: its number, or its own input error (one found only when its readings are
    chosen, `too_many_digits`, included), never the whole batch's."""
    if isinstance(outcome, DigitServeError):
        return to_item_error(state, outcome, upload.filename)
    rows = next(rows_in_order)
    try:
        response = _to_response(state, outcome, rows, include_model_view)
    except DigitServeError as error:
        if not is_input_error(error):
            raise
        return to_item_error(state, error, upload.filename)
    return BatchReadItemResponse(**dict(response), filename=upload.filename)
