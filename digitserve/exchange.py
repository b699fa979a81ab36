"""Images -> the requests that read them, and the service's answers -> results: the client's protocol
without its I/O, written once for `Client` and `AsyncClient`.

An exchange is a generator that yields `Request`s and is sent back each one's `httpx.Response`; its
return value is the result (the "sans-I/O" style of h11 and httpx's own internals). The clients only
send the requests, retrying a 503 after its `Retry-After` (`retry_wait_seconds`), and turn transport
failures into `ServiceError`s (`unreachable_error`).
"""

from __future__ import annotations

import email.utils
import math
import os
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

from digitserve.results import ImageError, ServiceError, parse_item_error, parse_prediction, parse_reading

Image = str | os.PathLike[str] | bytes
"""An image to read: a file's path, or its bytes (PNG, JPEG, BMP, WebP, TIFF, GIF)."""
Result = TypeVar("Result")
# A 413 for a whole batch request (body or file count over the service's limits) splits it in two.
REQUEST_TOO_LARGE = 413
SERVICE_UNAVAILABLE = 503


@dataclass(frozen=True)
class RetryPolicy:
    """How a request refused with 503 (queue full, not ready yet, too many connections) is retried.

    Attributes:
        max_attempts: attempts of one request, the first included; then the 503 is raised.
        default_wait_seconds: the wait when a 503 carries no `Retry-After`.
        max_wait_seconds: the longest wait honoured, whatever `Retry-After` says.
    """

    max_attempts: int = 5
    default_wait_seconds: float = 1.0
    max_wait_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")


@dataclass(frozen=True)
class Upload:
    """One image ready to send: the name results carry (its path as given; None for bytes), the file
    name sent, and its bytes."""

    label: str | None
    filename: str
    data: bytes


@dataclass(frozen=True)
class Request:
    """A multipart POST: `uploads` as repeated `field` fields."""

    path: str
    field: str
    uploads: Sequence[Upload]

    def files(self) -> list[tuple[str, tuple[str, bytes]]]:
        return [(self.field, (upload.filename, upload.data)) for upload in self.uploads]


@dataclass(frozen=True)
class Route(Generic[Result]):
    """A reading endpoint and its batch twin, and how their answers are parsed."""

    path: str
    batch_key: str
    parse: Callable[[dict[str, Any], str | None], Result]

    @property
    def batch_path(self) -> str:
        return f"{self.path}/batch"


PREDICT = Route("/predict", "predictions", parse_prediction)
READ = Route("/read", "readings", parse_reading)

Exchange = Generator[Request, httpx.Response, Result]


def to_upload(image: Image) -> Upload:
    """Reads an image's bytes now (a path) or takes them (bytes).

    Raises:
        OSError: the file cannot be read (FileNotFoundError, IsADirectoryError...).
    """
    if isinstance(image, bytes):
        return Upload(label=None, filename="image", data=image)
    path = Path(image)
    return Upload(label=os.fspath(image), filename=path.name, data=path.read_bytes())


def error_from(response: httpx.Response) -> ServiceError:
    """A refused request -> `ServiceError` with the service's `code` and `detail` (or the status's)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return ServiceError(response.status_code, body["code"], str(body.get("detail", "")))
    reason = response.reason_phrase or "no reason given"
    return ServiceError(response.status_code, f"http_{response.status_code}", reason)


def unreachable_error(url: httpx.URL, error: httpx.TransportError) -> ServiceError:
    """A request that got no answer -> `ServiceError` (status 0) saying where and why."""
    if isinstance(error, httpx.TimeoutException):
        return ServiceError(0, "client_timeout", f"no answer from {url} in time ({type(error).__name__})")
    return ServiceError(0, "service_unreachable", f"cannot reach the service at {url}: {error}")


def retry_wait_seconds(response: httpx.Response, policy: RetryPolicy) -> float:
    """How long to wait before retrying a 503: its `Retry-After` (seconds or an HTTP date), within
    the policy's bounds."""
    value = response.headers.get("retry-after", "").strip()
    try:
        wait_seconds = float(value)
    except ValueError:
        try:
            wait_seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            wait_seconds = policy.default_wait_seconds
    if not math.isfinite(wait_seconds):  # "nan" or "inf" parse as floats: no wait at all is meant
        wait_seconds = policy.default_wait_seconds
    return min(max(wait_seconds, 0.0), policy.max_wait_seconds)


def read_one(route: Route[Result], upload: Upload) -> Exchange[Result]:
    """One image through `route` (`/predict`, `/read`).

    Raises:
        ServiceError: any answer but 200, the image's own 4xx included.
    """
    response = yield Request(route.path, "file", [upload])
    if response.status_code != 200:
        raise error_from(response)
    return route.parse(response.json(), upload.label)


def read_batch(route: Route[Result], uploads: Sequence[Upload]) -> Exchange[list[Result | ImageError]]:
    """Images through `route`'s batch endpoint, one result per upload in order.

    A batch refused as too large (the body limit, the file count) is split in halves, down to single
    images; a single image too large for the body limit becomes its `ImageError`.

    Raises:
        ServiceError: the service refused the request as a whole (401, 503 after the retries, 500...).
    """
    response = yield Request(route.batch_path, "files", uploads)
    if response.status_code == REQUEST_TOO_LARGE and len(uploads) > 1:
        half = len(uploads) // 2
        first = yield from read_batch(route, uploads[:half])
        second = yield from read_batch(route, uploads[half:])
        return first + second
    if response.status_code == REQUEST_TOO_LARGE:
        error = error_from(response)
        return [ImageError(uploads[0].label, error.status_code, error.code, error.detail)]
    if response.status_code != 200:
        raise error_from(response)
    items = response.json()[route.batch_key]
    if len(items) != len(uploads):
        raise ServiceError(200, "bad_answer", f"{len(items)} answers for {len(uploads)} images")
    return [
        parse_item_error(item, upload.label) if "error" in item else route.parse(item, upload.label)
        for item, upload in zip(items, uploads, strict=True)
    ]


def service_url(url: str | httpx.URL) -> httpx.URL:
    """Checks a service address: http or https, with a host.

    Raises:
        ValueError: anything else (`localhost:8000` without its scheme, `ftp://...`).
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise ValueError(f"{str(url)!r} is not a URL ({error})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{str(url)!r} is not an http:// or https:// URL, e.g. http://127.0.0.1:8000")
    return parsed
