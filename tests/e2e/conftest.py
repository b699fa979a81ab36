"""The real stack for end-to-end tests: Docker engine, `docker-compose build` and `up -d`, health;
and, for the browser tests, a real uvicorn service and Debian's Chromium (one of each per module).

`compose_stack` builds the image from this checkout and starts the `digitserve` service once per
session, published on a free loopback port; `running_stack` hands it to each test, restarting the
service if an earlier test stopped it. `down -v` runs at the end, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from testkit.images import encode_png
from testkit.model_fixture import export_fixture_model
from testkit.server import free_port, running_service
from testkit.shared_data import REPO_ROOT
from tests.e2e.web_browser import CHROMIUM_FLAGS

INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-test-deps.sh"
PROJECT_NAME = "digitserve-e2e"
SERVICE = "digitserve"
INSTALL_TIMEOUT_SECONDS = 900
# A cold build downloads TensorFlow (~250 MB) and installs it on 2 cores.
BUILD_TIMEOUT_SECONDS = 1800
HEALTHY_TIMEOUT_SECONDS = 240
# The label every stage of the Dockerfile carries.
IMAGE_LABEL = "io.digitserve.image"


def docker_binary() -> str:
    """Debian's client matches the API of the engine that ../shared/tools/docker-engine starts."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


@dataclass
class ComposeStack:
    """One compose project of this checkout, its service published on 127.0.0.1:`port`."""

    port: int
    environment: dict[str, str] = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def compose(
        self,
        *arguments: str,
        timeout: float = 300,
        check: bool = True,
        environment: dict[str, str] | None = None,
    ) -> str:
        """Runs `docker-compose ARGS` (v1, the CLI these machines have) and returns its stdout.

        Args:
            arguments: the command line after `docker-compose --project-name digitserve-e2e`.
            timeout: seconds before the command is killed.
            check: fail the test when it exits non-zero.
            environment: variables added to the stack's for this command only.
        """
        result = subprocess.run(
            ["docker-compose", "--project-name", PROJECT_NAME, *arguments],
            cwd=REPO_ROOT,
            env={**self.environment, **(environment or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"docker-compose {' '.join(arguments)} exited {result.returncode}:\n{result.stderr}")
        return result.stdout

    def docker(self, *arguments: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [docker_binary(), *arguments],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return result.stdout.strip()

    def prune_superseded_images(self, built_before: float, label_value: str = "digitserve") -> str:
        """Removes the untagged images labelled `label_value`, created before `built_before` (Unix time).

        Every build of an edited checkout leaves the previous image and its build stage untagged
        (~4 GB a run): without this, repeated test runs fill the disk. Images of the current run stay,
        so the next run's build still finds its dependency layers in the cache.
        """
        return self.docker(
            *("image", "prune", "--force", "--filter", f"label={IMAGE_LABEL}={label_value}"),
            *("--filter", f"until={int(built_before)}"),
            timeout=300,
        )

    def container_id(self) -> str:
        container = self.compose("ps", "-q", SERVICE).strip()
        assert container, f"no {SERVICE} container in project {PROJECT_NAME}"
        return container

    def container_state(self, template: str) -> str:
        return self.docker("inspect", "--format", template, self.container_id())

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "80", SERVICE, check=False)

    def wait_until_healthy(self) -> None:
        """Waits for Docker's HEALTHCHECK to pass, then for /readyz (model loaded) to answer 200."""
        deadline = time.monotonic() + HEALTHY_TIMEOUT_SECONDS
        status = ""
        while time.monotonic() < deadline:
            status = self.container_state("{{.State.Status}} {{.State.Health.Status}}")
            if status == "running healthy":
                break
            if status.split()[0] in {"exited", "dead"} or status.endswith("unhealthy"):
                pytest.fail(f"{SERVICE} is {status}:\n{self.logs()}")
            time.sleep(1)
        else:
            pytest.fail(f"{SERVICE} not healthy after {HEALTHY_TIMEOUT_SECONDS} s ({status}):\n{self.logs()}")
        response = httpx.get(f"{self.base_url}/readyz", timeout=5)
        assert response.status_code == 200, response.text

    def ensure_running(self) -> None:
        if self.container_state("{{.State.Status}}") != "running":
            self.compose("up", "-d", "--no-build", SERVICE)
        self.wait_until_healthy()


@pytest.fixture(scope="session")
def system_tools() -> None:
    """Docker engine, docker-compose, the local base image and Prometheus (installed if missing)."""
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS
    )
    if result.returncode != 0:
        pytest.fail(f"{INSTALL_SCRIPT.name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def compose_stack(system_tools) -> Iterator[ComposeStack]:
    if not any(path.name.isdigit() for path in (REPO_ROOT / "models" / "digits").glob("*")):
        pytest.fail("models/digits/<version>/ is missing: the image bakes the shipped model in")
    environment = {
        **os.environ,
        "DIGITSERVE_HOST_ADDRESS": "127.0.0.1",
        "DIGITSERVE_HOST_PORT": str(free_port()),
        # docker-py's classic builder, so the build needs neither BuildKit nor the buildx plugin.
        "COMPOSE_DOCKER_CLI_BUILD": "0",
        "DOCKER_BUILDKIT": "0",
    }
    stack = ComposeStack(port=int(environment["DIGITSERVE_HOST_PORT"]), environment=environment)
    session_started = time.time()
    stack.compose("down", "-v", "--remove-orphans", check=False)
    try:
        stack.compose("build", SERVICE, timeout=BUILD_TIMEOUT_SECONDS)
        stack.compose("up", "-d", "--no-build", SERVICE)
        stack.wait_until_healthy()
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", check=False)
        stack.prune_superseded_images(built_before=session_started)


@pytest.fixture
def running_stack(compose_stack: ComposeStack) -> ComposeStack:
    compose_stack.ensure_running()
    return compose_stack


@pytest.fixture(scope="session")
def digit_uploads(mnist_test_samples) -> list[tuple[bytes, int]]:
    """The first 16 MNIST test digits as (PNG bytes, label)."""
    images, labels = mnist_test_samples
    return [(encode_png(image), int(label)) for image, label in zip(images[:16], labels[:16], strict=True)]


# --- a real service and a real Chromium, for the browser tests (test_web_page, test_swagger_ui) -----

BROWSER_INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-browser.sh"
CHROMIUM = Path("/usr/bin/chromium")
SHIPPED_MODELS_DIR = REPO_ROOT / "models" / "digits"


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    """Debian's Chromium, installed by the project's own script when missing."""
    result = subprocess.run(
        ["bash", str(BROWSER_INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(
            f"{BROWSER_INSTALL_SCRIPT.name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def served_models_dir(tmp_path_factory: pytest.TempPathFactory, shared_data_dir: Path) -> Path:
    """models/digits when a trained version is there, else the integration tests' small real model."""
    if SHIPPED_MODELS_DIR.is_dir() and any(
        (version / "saved_model.pb").is_file()
        for version in SHIPPED_MODELS_DIR.iterdir()
        if version.name.isdigit()
    ):
        return SHIPPED_MODELS_DIR
    models_dir = tmp_path_factory.mktemp("web-models") / "digits"
    export_fixture_model(shared_data_dir, models_dir)
    return models_dir


@pytest.fixture(scope="module")
def base_url(served_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log_path = tmp_path_factory.mktemp("web-service") / "uvicorn.log"
    environment = {"DIGITSERVE_MODEL_DIR": str(served_models_dir), "DIGITSERVE_LOG_LEVEL": "WARNING"}
    with running_service(free_port(), environment, log_path) as server:
        yield server.base_url


@pytest.fixture(scope="module")
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # Playwright gives each launch a fresh, empty profile (its own --user-data-dir).
        browser = await playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_FLAGS
        )
        yield browser
        await browser.close()
