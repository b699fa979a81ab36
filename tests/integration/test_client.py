"""The Python client against the real app: its results are the service's own answers, typed.

`AsyncClient` reads through the app in process (httpx's ASGI transport); the blocking `Client`
through the real server process, as a user runs it. Each result is compared with what the same
route answers a plain HTTP request: the client adds types, batching and retries, never answers.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from digitserve.client import AsyncClient, Client
from digitserve.exchange import RetryPolicy
from digitserve.results import ImageError, Prediction, Reading, ServiceError
from testkit.images import encode_png
from testkit.server import RunningServer, free_port, running_service
from testkit.shared_data import REPO_ROOT
from testkit.written_numbers import load_digit_pool, write_number
from tests.integration.conftest import STARTUP_TIMEOUT_SECONDS

pytestmark = pytest.mark.integration

API_KEY = "client-test-key-0123456789"
BASE_URL = "http://digitserve.test"


@pytest.fixture
def image_files(tmp_path, mnist_test_samples) -> list[str]:
    """Six MNIST test digits as PNG files, then a blank image and a file that is no image."""
    images, _ = mnist_test_samples
    paths = []
    for index in range(6):
        paths.append(tmp_path / f"digit-{index}.png")
        paths[-1].write_bytes(encode_png(images[index]))
    (tmp_path / "blank.png").write_bytes(encode_png(np.zeros((28, 28), dtype=np.uint8)))
    (tmp_path / "notes.png").write_bytes(b"not an image at all")
    return [str(path) for path in [*paths, tmp_path / "blank.png", tmp_path / "notes.png"]]


@pytest.fixture(scope="module")
def number_images() -> list[bytes]:
    """Two numbers of 3 and 4 MNIST test digits, drawn as scans."""
    pool = load_digit_pool("mnist", "test", limit=500)
    rng = np.random.default_rng(16)
    return [encode_png(write_number(pool, count, rng).image) for count in (3, 4)]


@pytest.fixture
async def app_transport(make_settings) -> AsyncIterator[httpx.ASGITransport]:
    """The app with the fixture model, started, as an httpx transport."""
    app = create_app(make_settings(api_keys=API_KEY))
    async with LifespanManager(app, startup_timeout=STARTUP_TIMEOUT_SECONDS) as manager:
        yield httpx.ASGITransport(app=manager.app)


async def answers_of(transport: httpx.AsyncBaseTransport, path: str, files: list[str | bytes]) -> list[dict]:
    """What `path` answers a plain request for each file: the JSON body and the status."""
    headers = {"X-API-Key": API_KEY}
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as raw:
        responses = [
            await raw.post(
                path, files={"file": ("image", file if isinstance(file, bytes) else Path(file).read_bytes())}
            )
            for file in files
        ]
    return [{**response.json(), "status": response.status_code} for response in responses]


def assert_same_prediction(result: Prediction | ImageError, answer: dict) -> None:
    if answer["status"] != 200:
        assert isinstance(result, ImageError)
        assert (result.status_code, result.code, result.detail) == (
            answer["status"],
            answer["code"],
            answer["detail"],
        )
        return
    assert isinstance(result, Prediction)
    assert (result.digit, result.unsure, result.reason) == (
        answer["digit"],
        answer["unsure"],
        answer["reason"],
    )
    assert result.confidence == pytest.approx(answer["confidence"], abs=1e-5)
    assert result.model_version == answer["model_version"] == "1"


async def test_the_async_clients_predictions_are_the_services_answers(app_transport, image_files):
    async with AsyncClient(BASE_URL, api_key=API_KEY, transport=app_transport) as client:
        results = await client.predict_many(image_files, batch_size=3)
    answers = await answers_of(app_transport, "/predict", image_files)
    assert [result.file for result in results] == image_files
    for result, answer in zip(results, answers, strict=True):
        assert_same_prediction(result, answer)
    assert [result.code for result in results[-2:]] == ["no_digit_found", "unsupported_image_type"]


async def test_a_lone_unreadable_image_raises_the_services_code_and_detail(app_transport, image_files):
    async with AsyncClient(BASE_URL, api_key=API_KEY, transport=app_transport) as client:
        with pytest.raises(ServiceError) as refused:
            await client.predict(image_files[-2])
    (answer,) = await answers_of(app_transport, "/predict", [image_files[-2]])
    assert (refused.value.status_code, refused.value.code) == (422, "no_digit_found")
    assert refused.value.detail == answer["detail"]


async def test_the_async_client_reads_numbers_as_the_service_does(app_transport, number_images, image_files):
    async with AsyncClient(BASE_URL, api_key=API_KEY, transport=app_transport) as client:
        single = await client.read(number_images[0])
        batch = await client.read_many([*number_images, image_files[-2]], batch_size=2)
    answers = await answers_of(app_transport, "/read", number_images)
    assert isinstance(single, Reading) and (single.text, single.unsure) == (batch[0].text, batch[0].unsure)
    for reading, answer in zip(batch, answers, strict=False):
        assert (reading.text, reading.unsure, reading.reason) == (
            answer["text"],
            answer["unsure"],
            answer["reason"],
        )
        assert [(digit.box.x, digit.box.width) for digit in reading.digits] == [
            (digit["box"]["x"], digit["box"]["width"]) for digit in answer["digits"]
        ]
    assert isinstance(batch[2], ImageError) and batch[2].code == "no_digit_found"


async def test_a_client_without_the_services_key_is_refused_with_its_code(app_transport, image_files):
    async with AsyncClient(BASE_URL, transport=app_transport) as client:
        with pytest.raises(ServiceError) as refused:
            await client.predict_many(image_files)
    assert (refused.value.status_code, refused.value.code) == (401, "unauthorized")


class CountingTransport(httpx.AsyncBaseTransport):
    """Passes requests on to another transport, counting them."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.request_count = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.request_count += 1
        return await self.inner.handle_async_request(request)


async def test_a_service_not_ready_yet_is_asked_again_then_reported(make_settings, image_files):
    # The app without its lifespan answers 503 `not_ready`, as a replica does while it starts.
    transport = CountingTransport(httpx.ASGITransport(app=create_app(make_settings())))
    retry = RetryPolicy(max_attempts=3, default_wait_seconds=0.0, max_wait_seconds=0.1)
    async with AsyncClient(BASE_URL, transport=transport, retry=retry) as client:
        with pytest.raises(ServiceError) as refused:
            await client.predict(image_files[0])
    assert (refused.value.status_code, refused.value.code) == (503, "not_ready")
    assert transport.request_count == 3


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The real service process (`python -m app`) with the fixture model."""
    log_path = tmp_path_factory.mktemp("client") / "service.log"
    with running_service(free_port(), {"DIGITSERVE_MODEL_DIR": str(models_dir)}, log_path) as running:
        yield running


def test_the_blocking_client_reads_through_the_real_server(server, image_files, number_images):
    with Client(server.base_url) as client:
        predictions = client.predict_many(image_files, batch_size=4)
        single = client.predict(image_files[0])
        reading = client.read(number_images[1])
    for path, result in zip(image_files[:6], predictions, strict=False):
        answer = httpx.post(f"{server.base_url}/predict", files={"file": Path(path).read_bytes()}).json()
        assert_same_prediction(result, {**answer, "status": 200})
    # The model's float arithmetic differs by a few ulps between batch sizes: compared as answers.
    assert (single.digit, single.confidence) == (
        predictions[0].digit,
        pytest.approx(predictions[0].confidence),
    )
    assert [result.code for result in predictions[6:]] == ["no_digit_found", "unsupported_image_type"]
    read_answer = httpx.post(f"{server.base_url}/read", files={"file": number_images[1]}).json()
    assert reading.text == read_answer["text"] and len(reading.digits) == len(read_answer["digits"])


def test_the_client_loads_neither_tensorflow_nor_the_service():
    script = (
        "import sys, digitserve.client; print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert not {"tensorflow", "keras", "app", "digits", "fastapi"} & set(loaded)
