"""The service's JSON answers -> typed results: a digit (`Prediction`), a number (`Reading`), or why an
image could not be read (`ImageError`); and `ServiceError`, raised when a whole request is refused.

Plain frozen dataclasses, parsed leniently: fields the service adds later are ignored, so an older
client keeps working against a newer service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ServiceError(Exception):
    """The service refused a request, or could not be reached.

    Attributes:
        status_code: the HTTP status (0 when no answer came: connection refused, timeout).
        code: the service's stable error code (`unauthorized`, `queue_full`...), or
            `service_unreachable` / `http_<status>` when the answer carried none.
        detail: what went wrong, for a human.
    """

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(f"{code} ({status_code}): {detail}" if status_code else f"{code}: {detail}")
        self.status_code = status_code
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Alternative:
    """One of the likeliest digits and its calibrated probability."""

    digit: int
    probability: float


@dataclass(frozen=True)
class Prediction:
    """The digit read from one image (`POST /predict`).

    Attributes:
        file: the uploaded file's name (its path as given), None for bytes.
        digit: the most probable digit, 0-9.
        confidence: its calibrated probability, 0..1: right about that often.
        probabilities: the 10 calibrated probabilities, index = digit.
        unsure: whether a person should check the answer.
        reason: why it is unsure (`low_confidence`, `not_a_digit`, `several_digits`), else None.
        alternatives: the likeliest digits, most probable first.
        inverted: whether the image was dark ink on light paper.
        model_version: the version of the model that answered.
    """

    file: str | None
    digit: int
    confidence: float
    probabilities: tuple[float, ...]
    unsure: bool
    reason: str | None
    alternatives: tuple[Alternative, ...]
    inverted: bool
    model_version: str


@dataclass(frozen=True)
class Box:
    """Where a digit is in the uploaded image, in its pixels (x to the right, y down)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class ReadDigit:
    """One digit of a number, answered as `/predict` answers one digit, and its box."""

    digit: int
    confidence: float
    unsure: bool
    reason: str | None
    alternatives: tuple[Alternative, ...]
    box: Box


@dataclass(frozen=True)
class Reading:
    """The number read from one image (`POST /read`), digits left to right.

    Attributes:
        file: the uploaded file's name (its path as given), None for bytes.
        text: the digits as a string, e.g. "42".
        digits: each digit with its confidence, unsure flag and box.
        unsure: whether a person should check the number.
        reason: `unsure_digit` or `doubtful_segmentation` when unsure, else None.
        inverted: whether the image was dark ink on light paper.
        model_version: the version of the model that answered.
    """

    file: str | None
    text: str
    digits: tuple[ReadDigit, ...]
    unsure: bool
    reason: str | None
    inverted: bool
    model_version: str


@dataclass(frozen=True)
class ImageError:
    """An image the service could not read (a batch item's error, or a lone file's 4xx).

    Attributes:
        file: the uploaded file's name (its path as given), None for bytes.
        status_code: the HTTP status this image alone is answered with (400, 413, 415, 422...).
        code: the service's stable error code (`no_digit_found`, `undecodable_image`...).
        detail: what is wrong with it, for a human.
    """

    file: str | None
    status_code: int
    code: str
    detail: str


def _alternatives(body: dict[str, Any]) -> tuple[Alternative, ...]:
    return tuple(Alternative(int(item["digit"]), float(item["probability"])) for item in body["alternatives"])


def parse_prediction(body: dict[str, Any], file: str | None) -> Prediction:
    """A `PredictionResponse` body -> `Prediction`."""
    return Prediction(
        file=file,
        digit=int(body["digit"]),
        confidence=float(body["confidence"]),
        probabilities=tuple(float(probability) for probability in body["probabilities"]),
        unsure=bool(body["unsure"]),
        reason=body.get("reason"),
        alternatives=_alternatives(body),
        inverted=bool(body["inverted"]),
        model_version=str(body["model_version"]),
    )


def _read_digit(body: dict[str, Any]) -> ReadDigit:
    box = body["box"]
    return ReadDigit(
        digit=int(body["digit"]),
        confidence=float(body["confidence"]),
        unsure=bool(body["unsure"]),
        reason=body.get("reason"),
        alternatives=_alternatives(body),
        box=Box(int(box["x"]), int(box["y"]), int(box["width"]), int(box["height"])),
    )


def parse_reading(body: dict[str, Any], file: str | None) -> Reading:
    """A `ReadResponse` body -> `Reading`."""
    return Reading(
        file=file,
        text=str(body["text"]),
        digits=tuple(_read_digit(digit) for digit in body["digits"]),
        unsure=bool(body["unsure"]),
        reason=body.get("reason"),
        inverted=bool(body["inverted"]),
        model_version=str(body["model_version"]),
    )


def parse_item_error(body: dict[str, Any], file: str | None) -> ImageError:
    """A batch item's `{"status_code", "error": {"code", "detail"}}` -> `ImageError`."""
    error = body.get("error") or {}
    return ImageError(
        file=file,
        status_code=int(body.get("status_code", 0)),
        code=str(error.get("code", "unknown_error")),
        detail=str(error.get("detail", "")),
    )
