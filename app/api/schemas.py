"""The API's JSON bodies: predictions, batch results, errors and probe answers (with OpenAPI examples)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.api.errors import http_status
from app.pipeline.postprocess import UnsureReason
from digits import errors

EXAMPLE_PROBABILITIES = [0.0001, 0.0002, 0.0011, 0.0005, 0.5512, 0.0001, 0.0, 0.0291, 0.0075, 0.4102]


class AlternativeResponse(BaseModel):
    """One of the likeliest digits."""

    digit: int = Field(ge=0, le=9)
    probability: float = Field(ge=0.0, le=1.0, description="Its calibrated probability.")


class PredictionResponse(BaseModel):
    """The digit read from one image."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                # An unsure answer (a 4 or a 9), so that every field shows a value; a sure one has
                # "unsure": false and "reason": null.
                {
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
                    "model_version": "6",
                }
            ]
        }
    )

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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status_code": 400,
                    "error": {
                        "detail": "the upload is not a recognizable image",
                        "code": "undecodable_image",
                    },
                }
            ]
        }
    )

    status_code: int = Field(description="The HTTP status this image alone would have been answered with.")
    error: ErrorResponse


class BatchPredictionResponse(BaseModel):
    """One entry per uploaded file, in upload order: a prediction, or an error for that file."""

    predictions: list[PredictionResponse | BatchItemErrorResponse]


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


def error_responses(*error_classes: type[errors.DigitServeError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the given domain errors, grouped by status, each code listed.

    Args:
        error_classes: the errors a route can answer with.

    Returns:
        A FastAPI `responses=` mapping: status -> ErrorResponse model and a description naming codes.
    """
    codes_by_status: dict[int, list[str]] = {}
    for error_class in error_classes:
        codes_by_status.setdefault(http_status(error_class), []).append(f"`{error_class.code}`")
    return {
        status: {"model": ErrorResponse, "description": "Error; `code` is one of " + ", ".join(codes)}
        for status, codes in sorted(codes_by_status.items())
    }
