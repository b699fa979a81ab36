"""POST /preprocess: an uploaded image -> the 28x28 PNG the model would see (to explain a prediction)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, Response

from app.api.deps import ServiceDep
from app.api.inference import render_model_view
from app.api.schemas import UPLOAD_INPUT_ERRORS, ImageFile, upload_error_responses
from digits import errors

router = APIRouter(tags=["debugging"])

INVERTED_HEADER = "X-Digit-Inverted"
PNG_RESPONSE = {
    "content": {"image/png": {}},
    "description": "28x28 8-bit grayscale PNG, white ink on black, as the model receives it. Header "
    f"`{INVERTED_HEADER}`: `true` when the upload was dark ink on light paper and was flipped.",
}
# No model call, hence no model error; its decoding takes room in the queue like a prediction's.
PREPROCESS_ERRORS = (
    *UPLOAD_INPUT_ERRORS,
    errors.QueueFullError,
    errors.ServiceNotReadyError,
    errors.RequestTimeoutError,
)


@router.post(
    "/preprocess",
    summary="Show the 28x28 image the model sees",
    response_class=Response,
    responses={200: PNG_RESPONSE, **upload_error_responses(*PREPROCESS_ERRORS)},
)
async def preprocess(
    file: Annotated[ImageFile, File(description="One image of a digit.")],
    service: ServiceDep,
    request: Request,
) -> Response:
    """Runs only the decode and preprocess stages and returns their output, to see why a digit was misread."""
    png, is_inverted = await render_model_view(service, await file.read(), request.receive)
    return Response(png, media_type="image/png", headers={INVERTED_HEADER: str(is_inverted).lower()})
