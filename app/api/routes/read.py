"""POST /read and POST /read/batch: uploaded images of handwritten numbers -> their digits, left to right."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request

from app.api.deps import ServiceDep
from app.api.read_schemas import BatchReadResponse, ReadResponse
from app.api.reading import read_upload, read_uploads
from app.api.routes.predict import SERVICE_ERRORS, read_batch_files
from app.api.schemas import UPLOAD_INPUT_ERRORS, ImageFile, upload_error_responses
from digits import errors

router = APIRouter(tags=["reading numbers"])

NUMBER_DESCRIPTION = (
    "A photo, scan or drawing of a handwritten number written in one row (a postal code, an amount, "
    "a form field): PNG, JPEG, BMP, WebP, TIFF or GIF."
)
READ_ERRORS = (*UPLOAD_INPUT_ERRORS, errors.TooManyDigitsError, *SERVICE_ERRORS)
IncludeModelView = Annotated[
    bool,
    Query(description="Add each digit's 28x28 model input (base64 PNG): to see how the image was cut."),
]


@router.post(
    "/read",
    summary="Read the number in one image",
    response_model=ReadResponse,
    responses=upload_error_responses(*READ_ERRORS),
)
async def read(
    file: Annotated[ImageFile, File(description=NUMBER_DESCRIPTION)],
    service: ServiceDep,
    request: Request,
    include_model_view: IncludeModelView = False,
) -> ReadResponse:
    """Cuts the ink into digits (touching digits split, broken ones joined, lines and specks ignored)
    and reads each one as `/predict` would, in one batched model call, and a second for the cuts of
    ink the first leaves in doubt.

    `unsure` is true when a digit is unsure or when the cut is doubtful: ink was cut or parts were
    joined, or a digit much wider than the others was left whole.
    More digits than `DIGITSERVE_READ_MAX_DIGITS` (20 by default) are refused with 422
    `too_many_digits`; an image without ink with 422 `no_digit_found`.
    """
    return await read_upload(service, await file.read(), request.receive, include_model_view)


@router.post(
    "/read/batch",
    summary="Read the number in each of several images",
    response_model=BatchReadResponse,
    responses=upload_error_responses(errors.TooManyFilesError, *READ_ERRORS),
)
async def read_files(
    files: Annotated[list[ImageFile], File(description=f"1 to N images. {NUMBER_DESCRIPTION}")],
    service: ServiceDep,
    request: Request,
    include_model_view: IncludeModelView = False,
) -> BatchReadResponse:
    """Returns one entry per file, in upload order: a number, or the error of that file alone, each
    with the file's name (`filename`).

    N is `DIGITSERVE_BATCH_MAX_FILES` (64 by default); more files are refused with 413.
    """
    uploads = await read_batch_files(files, service.settings.batch_max_files)
    return BatchReadResponse(
        readings=await read_uploads(service, uploads, request.receive, include_model_view)
    )
