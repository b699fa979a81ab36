"""The API's JSON bodies: predictions, batch results, errors and probe answers (with OpenAPI examples),
and the schema of an uploaded file."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from app.api.errors import FRAMEWORK_ERROR_CODES, http_status
from app.pipeline.postprocess import UnsureReason
from digits import errors

EXAMPLE_PROBABILITIES = [0.0001, 0.0002, 0.0011, 0.0005, 0.5512, 0.0001, 0.0, 0.0291, 0.0075, 0.4102]
# An unsure answer (a 4 or a 9), so that every field shows a value; a sure one has "unsure": false
# and "reason": null.
PREDICTION_EXAMPLE = {
    "digit": 4,
    "confidence": 0.5512,
    "probabilities": EXAMPLE_PROBABILITIES,
    "unsure": True,
    "reason": "low_confidence",
    "alternatives": [
        {"digit": 4, "probability": 0.5512},
        {"digit": 9, "probability": 0.4102},
        {"digit": 7, "probability": 0.0291},
    ],
    "inverted": True,
    "model_version": "7",
}
BATCH_ITEM_ERROR_EXAMPLE = {
    "filename": "scribble.png",
    "status_code": 400,
    "error": {
        "detail": "the upload is not a recognizable image (unknown file signature)",
        "code": "undecodable_image",
    },
}
FILENAME_DESCRIPTION = (
    "The name the file was uploaded under (its multipart `filename`), to match answers to files."
)

# An uploaded file, documented as OpenAPI 3.0's `format: binary`. FastAPI writes JSON Schema's
# `contentMediaType` instead, which Swagger UI's "Try it out" turns into a file picker for a single
# field but into a text box for each item of a list (`files`): it could not send a batch.
ImageFile = Annotated[UploadFile, WithJsonSchema({"type": "string", "format": "binary"})]


class AlternativeResponse(BaseModel):
    """One of the likeliest digits."""

    digit: int = Field(ge=0, le=9)
    probability: float = Field(ge=0.0, le=1.0, description="Its calibrated probability.")


class PredictionResponse(BaseModel):
    """The digit read from one image."""

    model_config = ConfigDict(json_schema_extra={"examples": [PREDICTION_EXAMPLE]})

    digit: int = Field(ge=0, le=9, description="The most probable digit.")
    confidence: float = Field(
        ge=0.0, le=1.0, description="The calibrated probability of `digit`: right about that often."
    )
    probabilities: list[float] = Field(
        min_length=10,
        max_length=10,
        description="Calibrated probability of each digit 0-9, index = digit; sums to 1.",
    )
    unsure: bool = Field(description="True when a person should check the answer; `reason` says why.")
    reason: UnsureReason | None = Field(
        description="Why the answer is unsure: `confidence` below the service's minimum "
        "(`low_confidence`), no digit the model knows (`not_a_digit`), or two or more digits side by "
        "side in one image (`several_digits`); null when it is not."
    )
    alternatives: list[AlternativeResponse] = Field(
        min_length=1, max_length=3, description="The three likeliest digits, most probable first."
    )
    inverted: bool = Field(
        description="True when the upload was dark ink on light paper and its polarity was flipped."
    )
    model_version: str = Field(description="Version folder of the model that answered.")


class ErrorResponse(BaseModel):
    """Every error body: a stable machine-readable `code` and a human `detail`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"detail": "no digit found: the image is (nearly) uniform", "code": "no_digit_found"}
            ]
        }
    )

    detail: str = Field(description="What went wrong, for a human.")
    code: str = Field(description="Stable snake_case identifier of the failure, for programs.")


class BatchItemErrorResponse(BaseModel):
    """An image of a batch that could not be read; the other images are unaffected."""

    model_config = ConfigDict(json_schema_extra={"examples": [BATCH_ITEM_ERROR_EXAMPLE]})

    filename: str = Field(description=FILENAME_DESCRIPTION)
    status_code: int = Field(description="The HTTP status this image alone would have been answered with.")
    error: ErrorResponse


class BatchPredictionItemResponse(PredictionResponse):
    """The digit read from one image of a batch, and the name of its file."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**PREDICTION_EXAMPLE, "filename": "first.png"}]}
    )

    filename: str = Field(description=FILENAME_DESCRIPTION)


class BatchPredictionResponse(BaseModel):
    """One entry per uploaded file, in upload order: a prediction, or an error for that file."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"predictions": [{**PREDICTION_EXAMPLE, "filename": "first.png"}, BATCH_ITEM_ERROR_EXAMPLE]}
            ]
        }
    )

    predictions: list[BatchPredictionItemResponse | BatchItemErrorResponse]


class HealthResponse(BaseModel):
    """The process is alive."""

    status: str = Field(default="ok", examples=["ok"])


class ReadinessResponse(BaseModel):
    """The model is loaded and warmed up; the service takes predictions."""

    status: str = Field(default="ready", examples=["ready"])
    model_version: str = Field(examples=["1"])
    model_sha256: str = Field(description="sha256 of the served saved_model.pb", examples=["cf7580cf183c..."])
    model_smoke_test: bool = Field(
        description="whether the model card marks a smoke test (served only with "
        "DIGITSERVE_ALLOW_SMOKE_TEST_MODEL)",
        examples=[False],
    )


# What one uploaded image can get wrong, for the routes that take uploads.
UPLOAD_INPUT_ERRORS = (
    errors.EmptyUploadError,
    errors.UndecodableImageError,
    errors.PayloadTooLargeError,
    errors.ImageTooLargeError,
    errors.ImageTooComplexError,
    errors.ImageTooElongatedError,
    errors.UnsupportedImageTypeError,
    errors.NoDigitFoundError,
    errors.InvalidRequestError,
    errors.UploadTimeoutError,
    errors.UploadCapacityExhaustedError,
    errors.TempSpaceFullError,
)


# An example `detail` of each error code a route documents: what the service really says (numbers
# from the default settings).
ERROR_EXAMPLE_DETAILS = {
    "bad_request": "There was an error parsing the body",
    "empty_file": "the uploaded file is empty",
    "undecodable_image": "the upload is not a recognizable image (unknown file signature)",
    "upload_timeout": "no byte of the request body arrived for 10 s",
    "payload_too_large": "the request body is 12582912 bytes; the limit is 10485760 bytes",
    "image_too_large": "the image is 10000x10000 = 100,000,000 pixels; the limit is 40,000,000",
    "image_too_complex": "the JPEG holds more than 24 scans (passes over the image); save it as a "
    "baseline (non-progressive) JPEG",
    "too_many_files": "65 files uploaded; at most 64 per request",
    "unsupported_image_type": "the upload is an SVG drawing (vector images are not decoded; export it "
    "as PNG); supported formats are PNG, JPEG, BMP, WebP, TIFF and GIF",
    "image_too_elongated": "the image is 1x100000 pixels: one side is more than 32 times the other, too "
    "thin to hold a digit; crop it to the digit",
    "no_digit_found": "no digit found: the image is (nearly) uniform",
    "too_many_digits": "23 digits found; at most 20 are read",
    "invalid_request": "invalid request: the body is image/png, not a multipart/form-data form; upload "
    "the image as a file in the multipart/form-data field `file`, e.g. curl -F file=@digit.png",
    "model_error": "the model failed on this batch",
    "queue_full": "the prediction queue is full (1024 units of work); retry later",
    "not_ready": "the model is not ready yet",
    "upload_capacity_exhausted": "the server is receiving as many upload bytes as it can hold; retry in "
    "a moment",
    "temp_space_full": "the server has no temporary space left to receive uploads; retry in a moment",
    "request_timeout": "the prediction did not complete within 10 seconds; retry later",
}


def error_responses(
    *error_classes: type[errors.DigitServeError], framework_statuses: tuple[int, ...] = ()
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given errors, grouped by status: each code listed, each with an example.

    Args:
        error_classes: the domain errors a route can answer with.
        framework_statuses: statuses the framework answers before the route runs (400 `bad_request`).

    Returns:
        A FastAPI `responses=` mapping: status -> ErrorResponse model, a description naming the codes,
        and one example body per code (Swagger UI offers them in a list).
    """
    codes_by_status: dict[int, list[str]] = {}
    for status in framework_statuses:
        codes_by_status.setdefault(status, []).append(FRAMEWORK_ERROR_CODES[status])
    for error_class in error_classes:
        codes_by_status.setdefault(http_status(error_class), []).append(error_class.code)
    return {
        status: {
            "model": ErrorResponse,
            "description": "Error; `code` is one of " + ", ".join(f"`{code}`" for code in codes),
            "content": {
                "application/json": {
                    "examples": {
                        code: {
                            "summary": code,
                            "value": {"detail": ERROR_EXAMPLE_DETAILS[code], "code": code},
                        }
                        for code in codes
                    }
                }
            },
        }
        for status, codes in sorted(codes_by_status.items())
    }


def upload_error_responses(*error_classes: type[errors.DigitServeError]) -> dict[int | str, dict[str, Any]]:
    """`error_responses` of a route that takes a multipart body, which the parser may refuse (400)."""
    return error_responses(*error_classes, framework_statuses=(400,))
