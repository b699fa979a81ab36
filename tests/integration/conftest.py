"""Fixtures of the service's integration tests: a real small SavedModel, and the app running in process.

The model is built once per session (`testkit.model_fixture.export_fixture_model`, ~20-30 s on 2
CPU cores). Each test that needs the service starts its own app with its own settings under `LifespanManager`
(model load and warm-up: well under a second) and talks to it with httpx over ASGI, no sockets.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from app.api.deps import ServiceState
from app.main import create_app
from app.observability.logging import configure_logging, find_service_handler
from app.settings import Settings
from testkit.in_process_pool import InProcessDecodePool
from testkit.model_fixture import export_fixture_model

# The first 4 test images of each digit: 40 images, every class, chosen by position, not by result.
IMAGES_PER_DIGIT = 4
STARTUP_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory, shared_data_dir: Path) -> Path:
    """A model directory holding version `1/`: the real architecture trained one epoch on 10k digits."""
    directory = tmp_path_factory.mktemp("models") / "digits"
    export_fixture_model(shared_data_dir, directory)
    return directory


@pytest.fixture(scope="session")
def sample_indices(mnist_test_samples: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Indices into MNIST test: the first IMAGES_PER_DIGIT images of each digit, in index order."""
    _, labels = mnist_test_samples
    chosen = [np.flatnonzero(labels == digit)[:IMAGES_PER_DIGIT] for digit in range(10)]
    return np.sort(np.concatenate(chosen))


@dataclass
class RunningService:
    """An app started under its lifespan, a client bound to it, and its state (model, batcher, metrics)."""

    client: httpx.AsyncClient
    state: ServiceState

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Returns a metric sample's value from the app's registry (0 when the series does not exist)."""
        return self.state.metrics.registry.get_sample_value(name, labels or {}) or 0.0


@asynccontextmanager
async def run_service(settings: Settings) -> AsyncIterator[RunningService]:
    """Starts `create_app(settings)` under its lifespan and yields a client and the service state."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=STARTUP_TIMEOUT_SECONDS) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://digitserve.test") as client:
            # asgi-lifespan keeps the lifespan state in `_state`; it is what every request receives.
            yield RunningService(client=client, state=manager._state["service"])


@pytest.fixture
def make_settings(models_dir: Path) -> Callable[..., Settings]:
    """Returns a factory of settings pointing at the fixture model, with keyword overrides."""

    def make(**overrides) -> Settings:
        return Settings(**{"model_dir": models_dir, **overrides})

    return make


@pytest.fixture
async def service(make_settings: Callable[..., Settings]) -> AsyncIterator[RunningService]:
    """The service with default settings (batching on: up to 32 images, 5 ms wait)."""
    async with run_service(make_settings()) as running:
        yield running


@contextmanager
def service_log_lines() -> Iterator[io.StringIO]:
    """Redirects the service's log handler into a buffer for the duration."""
    configure_logging("INFO")
    handler = find_service_handler()
    stream = io.StringIO()
    previous_stream = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous_stream)


async def decode_in_this_process(service: RunningService, worker_count: int = 2) -> None:
    """Swaps the service's decode workers for threads of this process, for tests that hold or watch
    the decode stage from here (a worker process would not see their monkeypatched functions)."""
    await service.state.decode_pool.shutdown()
    service.state.decode_pool = InProcessDecodePool(worker_count)
