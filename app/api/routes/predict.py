"""POST /predict and POST /predict/batch: uploaded images -> the digits they show.

A single-image route takes one `file` field: `reject_repeated_file_field`, a dependency of every upload
route (`create_app`), refuses a form that repeats it, where FastAPI would keep the last one alone.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from app.api.deps import ServiceDep
from app.api.inference import UploadedImage, predict_upload, predict_uploads
from app.api.schemas import (
    UPLOAD_INPUT_ERRORS,
    BatchPredictionResponse,
    ImageFile,
    PredictionResponse,
    upload_error_responses,
)
from digits import errors

router = APIRouter(tags=["predictions"])

SERVICE_ERRORS = (
    errors.ModelError,
    errors.QueueFullError,
    errors.ServiceNotReadyError,
    errors.RequestTimeoutError,
)
UPLOAD_FIELD = "file"
IMAGE_DESCRIPTION = "A photo, scan or drawing of one handwritten digit: PNG, JPEG, BMP, WebP, TIFF or GIF."


async def reject_repeated_file_field(request: Request) -> None:
    """Refuses a form that holds the `file` field more than once (422), before any image is decoded.

    The form is the one FastAPI parsed for the route (the request keeps it): nothing is read twice.

    Raises:
        InvalidRequestError: two or more `file` fields.
    """
    file_count = len((await request.form()).getlist(UPLOAD_FIELD))
    if file_count > 1:
        raise errors.InvalidRequestError(
            f"the form holds {file_count} `{UPLOAD_FIELD}` fields: send one `{UPLOAD_FIELD}` field per "
            "request, or several images as `files` fields to /predict/batch"
        )


async def read_batch_files(files: list[UploadFile], batch_max_files: int) -> list[UploadedImage]:
    """The files of a batch route, each with its name, in upload order.

    Raises:
        TooManyFilesError: more than `batch_max_files` files (413), before any is read.
    """
    if len(files) > batch_max_files:
        raise errors.TooManyFilesError(f"{len(files)} files uploaded; at most {batch_max_files} per request")
    return [UploadedImage(filename=file.filename or "", data=await file.read()) for file in files]


@router.post(
    "/predict",
    summary="Read the digit in one image",
    response_model=PredictionResponse,
    responses=upload_error_responses(*UPLOAD_INPUT_ERRORS, *SERVICE_ERRORS),
)
async def predict(
    file: Annotated[ImageFile, File(description=IMAGE_DESCRIPTION)], service: ServiceDep, request: Request
) -> PredictionResponse:
    """Decodes the image, normalizes it like MNIST, and returns the digit with its probabilities.

    Dark ink on light paper and light ink on dark backgrounds are both accepted (`inverted` says
    which one was seen). Concurrent requests are batched into one model call.
    """
    return await predict_upload(service, await file.read(), request.receive)


@router.post(
    "/predict/batch",
    summary="Read the digit in each of several images",
    response_model=BatchPredictionResponse,
    responses=upload_error_responses(errors.TooManyFilesError, *UPLOAD_INPUT_ERRORS, *SERVICE_ERRORS),
)
async def predict_files(
    files: Annotated[list[ImageFile], File(description=f"1 to N images. {IMAGE_DESCRIPTION}")],
    service: ServiceDep,
    request: Request,
) -> BatchPredictionResponse:
    """Returns one entry per file, in upload order: a prediction, or the error of that file alone,
    each with the file's name (`filename`).

    N is `DIGITSERVE_BATCH_MAX_FILES` (64 by default); more files are refused with 413.
    """
    uploads = await read_batch_files(files, service.settings.batch_max_files)
    return BatchPredictionResponse(predictions=await predict_uploads(service, uploads, request.receive))
