"""Images -> digits and numbers, read by a running digitserve service over HTTP.

```python
from digitserve.client import Client

with Client("http://127.0.0.1:8000", api_key=None) as client:
    print(client.predict("digit.png").digit)
    for result in client.predict_many(["a.png", "b.jpg"], batch_size=16):
        print(result.file, getattr(result, "digit", result))   # a Prediction or an ImageError
    print(client.read("postcode.jpg").text)
```

`predict_many` and `read_many` send `/predict/batch` and `/read/batch` requests of `batch_size`
images; an image the service cannot read is an `ImageError` at its place, never an exception. A
request refused with 503 (queue full, starting, too many connections) is retried after its
`Retry-After`, up to `RetryPolicy.max_attempts`; any other refusal raises `ServiceError`, with the
service's `code`, `detail` and status. `AsyncClient` has the same methods, to await.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, TypeVar

import httpx

from digitserve.exchange import (
    PREDICT,
    READ,
    SERVICE_UNAVAILABLE,
    Exchange,
    Image,
    Request,
    RetryPolicy,
    Route,
    read_batch,
    read_one,
    retry_wait_seconds,
    service_url,
    to_upload,
    unreachable_error,
)
from digitserve.results import ImageError, Prediction, Reading

DEFAULT_URL = "http://127.0.0.1:8000"
# A batch of large photos, queued behind others and retried, takes longer than httpx's 5 s default.
DEFAULT_TIMEOUT_SECONDS = 60.0
# A quarter of the service's default DIGITSERVE_BATCH_MAX_FILES (64): a batch of photos stays well
# within its 10 MiB body limit, and a progress bar moves.
DEFAULT_BATCH_SIZE = 16
API_KEY_HEADER = "X-API-Key"
DEFAULT_RETRY = RetryPolicy()
Result = TypeVar("Result")


def batched(images: Iterable[Image], batch_size: int) -> Iterator[list[Image]]:
    """`images` in lists of `batch_size` (the last one shorter), read lazily."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    iterator = iter(images)
    while batch := list(itertools.islice(iterator, batch_size)):
        yield batch


def _headers(api_key: str | None) -> dict[str, str]:
    return {API_KEY_HEADER: api_key} if api_key else {}


class Client:
    """A blocking client of one digitserve service.

    Args:
        url: the service's base URL.
        api_key: sent as `X-API-Key` when the service requires keys (`DIGITSERVE_API_KEYS`).
        timeout: seconds to wait for each answer (connect, send, read).
        retry: how 503 answers are retried.
        transport: an httpx transport to send through instead of the network (tests: a
            `MockTransport`; or a `WSGITransport`).

    Raises:
        ValueError: `url` is not an http:// or https:// URL.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = service_url(url)
        self.retry = retry
        self._http = httpx.Client(
            base_url=self.url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    def predict(self, image: Image) -> Prediction:
        """Reads the digit in one image (`POST /predict`).

        Raises:
            ServiceError: the image or the request was refused (e.g. 422 `no_digit_found`).
            OSError: the file cannot be read.
        """
        return self._run(read_one(PREDICT, to_upload(image)))

    def predict_many(
        self, images: Iterable[Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> list[Prediction | ImageError]:
        """Reads the digit in each image, `batch_size` per request; results in the images' order."""
        return list(self.iter_predictions(images, batch_size))

    def iter_predictions(
        self, images: Iterable[Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[Prediction | ImageError]:
        """`predict_many`, yielding each batch's results as soon as they come (for a progress bar)."""
        return self._iterate(PREDICT, images, batch_size)

    def read(self, image: Image) -> Reading:
        """Reads the number in one image (`POST /read`); raises as `predict`."""
        return self._run(read_one(READ, to_upload(image)))

    def read_many(
        self, images: Iterable[Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> list[Reading | ImageError]:
        """Reads the number in each image, `batch_size` per request; results in the images' order."""
        return list(self.iter_readings(images, batch_size))

    def iter_readings(
        self, images: Iterable[Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[Reading | ImageError]:
        """`read_many`, yielding each batch's results as soon as they come."""
        return self._iterate(READ, images, batch_size)

    def close(self) -> None:
        """Closes the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _iterate(
        self, route: Route[Result], images: Iterable[Image], batch_size: int
    ) -> Iterator[Result | ImageError]:
        for batch in batched(images, batch_size):
            yield from self._run(read_batch(route, [to_upload(image) for image in batch]))

    def _send(self, request: Request) -> httpx.Response:
        attempt = 1
        while True:
            try:
                response = self._http.post(request.path, files=request.files())
            except httpx.TransportError as error:
                raise unreachable_error(self.url, error) from None
            if response.status_code != SERVICE_UNAVAILABLE or attempt >= self.retry.max_attempts:
                return response
            time.sleep(retry_wait_seconds(response, self.retry))
            attempt += 1

    def _run(self, exchange: Exchange[Any]) -> Any:
        request = next(exchange)
        while True:
            try:
                request = exchange.send(self._send(request))
            except StopIteration as finished:
                return finished.value


class AsyncClient:
    """The asynchronous twin of `Client`: the same arguments and methods, to await (`transport`: an
    `httpx.AsyncBaseTransport`, such as `httpx.ASGITransport(app)` to read through an app in process)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = service_url(url)
        self.retry = retry
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    async def predict(self, image: Image) -> Prediction:
        """See `Client.predict`."""
        return await self._run(read_one(PREDICT, await asyncio.to_thread(to_upload, image)))

    async def predict_many(
        self, images: Iterable[Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> list[Prediction | ImageError]:
        """See `Client.predict_many`."""
        return [result async for result in self.iter_predictions(images, batch_size)]

    def iter_predictions(
        self, images: Iterable[Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> AsyncIterator[Prediction | ImageError]:
        """See `Client.iter_predictions`."""
        return self._iterate(PREDICT, images, batch_size)

    async def read(self, image: Image) -> Reading:
        """See `Client.read`."""
        return await self._run(read_one(READ, await asyncio.to_thread(to_upload, image)))

    async def read_many(
        self, images: Iterable[Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> list[Reading | ImageError]:
        """See `Client.read_many`."""
        return [result async for result in self.iter_readings(images, batch_size)]

    def iter_readings(
        self, images: Iterable[Image], batch_size: int = DEFAULT_BATCH_SIZE
    ) -> AsyncIterator[Reading | ImageError]:
        """See `Client.iter_readings`."""
        return self._iterate(READ, images, batch_size)

    async def aclose(self) -> None:
        """Closes the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _iterate(
        self, route: Route[Result], images: Iterable[Image], batch_size: int
    ) -> AsyncIterator[Result | ImageError]:
        for batch in batched(images, batch_size):
            # Files are read in a thread: the event loop never waits on a disk.
            uploads = await asyncio.to_thread(lambda batch=batch: [to_upload(image) for image in batch])
            for result in await self._run(read_batch(route, uploads)):
                yield result

    async def _send(self, request: Request) -> httpx.Response:
        attempt = 1
        while True:
            try:
                response = await self._http.post(request.path, files=request.files())
            except httpx.TransportError as error:
                raise unreachable_error(self.url, error) from None
            if response.status_code != SERVICE_UNAVAILABLE or attempt >= self.retry.max_attempts:
                return response
            await asyncio.sleep(retry_wait_seconds(response, self.retry))
            attempt += 1

    async def _run(self, exchange: Exchange[Any]) -> Any:
        request = next(exchange)
        while True:
            try:
                request = exchange.send(await self._send(request))
            except StopIteration as finished:
                return finished.value
