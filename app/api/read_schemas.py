"""The JSON bodies of `POST /read` and `POST /read/batch`: a number's text, its digits and their boxes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import (
    BATCH_ITEM_ERROR_EXAMPLE,
    FILENAME_DESCRIPTION,
    AlternativeResponse,
    BatchItemErrorResponse,
)
from app.pipeline.postprocess import UnsureReason
from app.pipeline.read_choice import NumberUnsureReason


class BoxResponse(BaseModel):
    """A digit's box in the uploaded image, in its pixels (x to the right, y down, from the top left)."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class ReadDigitResponse(BaseModel):
    """One digit of the number, as `/predict` would answer it, and where it is."""

    digit: int = Field(ge=0, le=9)
    confidence: float = Field(ge=0.0, le=1.0, description="The calibrated probability of `digit`.")
    unsure: bool = Field(description="True when a person should check this digit; `reason` says why.")
    reason: UnsureReason | None = Field(description="As in `/predict`; null when the digit is sure.")
    alternatives: list[AlternativeResponse] = Field(min_length=1, max_length=3)
    box: BoxResponse
    model_view: str | None = Field(
        default=None,
        description="With `?include_model_view=true`: the 28x28 image the model read, a base64 PNG.",
    )


# A number of two sure digits, without `?include_model_view=true`.
READ_EXAMPLE = {
    "text": "42",
    "digits": [
        {
            "digit": 4,
            "confidence": 0.9981,
            "unsure": False,
            "reason": None,
            "alternatives": [
                {"digit": 4, "probability": 0.9981},
                {"digit": 9, "probability": 0.0012},
                {"digit": 1, "probability": 0.0004},
            ],
            "box": {"x": 31, "y": 40, "width": 52, "height": 80},
            "model_view": None,
        },
        {
            "digit": 2,
            "confidence": 0.9994,
            "unsure": False,
            "reason": None,
            "alternatives": [
                {"digit": 2, "probability": 0.9994},
                {"digit": 7, "probability": 0.0003},
                {"digit": 3, "probability": 0.0002},
            ],
            "box": {"x": 101, "y": 38, "width": 47, "height": 83},
            "model_view": None,
        },
    ],
    "unsure": False,
    "reason": None,
    "inverted": True,
    "model_version": "7",
}


class ReadResponse(BaseModel):
    """The number read from one image, digits left to right."""

    model_config = ConfigDict(json_schema_extra={"examples": [READ_EXAMPLE]})

    text: str = Field(pattern=r"^[0-9]+$", description="The digits read, left to right.")
    digits: list[ReadDigitResponse] = Field(min_length=1)
    unsure: bool = Field(description="True when a digit is unsure or the segmentation is doubtful.")
    reason: NumberUnsureReason | None = Field(
        description="`doubtful_segmentation` when the ink was cut through (touching digits), parts were "
        "joined into one digit (a broken digit), or a digit much wider than the others was left whole; "
        "else `unsure_digit` when a digit is unsure; null when sure."
    )
    inverted: bool = Field(description="True when the upload was dark ink on light paper.")
    model_version: str = Field(description="Version folder of the model that answered.")


class BatchReadItemResponse(ReadResponse):
    """The number read from one image of a batch, and the name of its file."""

    model_config = ConfigDict(json_schema_extra={"examples": [{**READ_EXAMPLE, "filename": "postcode.jpg"}]})

    filename: str = Field(description=FILENAME_DESCRIPTION)


class BatchReadResponse(BaseModel):
    """One entry per uploaded file, in upload order: a read number, or an error for that file."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"readings": [{**READ_EXAMPLE, "filename": "postcode.jpg"}, BATCH_ITEM_ERROR_EXAMPLE]}
            ]
        }
    )

    readings: list[BatchReadItemResponse | BatchItemErrorResponse]
