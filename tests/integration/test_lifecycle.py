"""The model is loaded and warmed up before the service reports ready; shutdown withdraws readiness."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from digits.errors import ModelLoadError
from digits.model import DigitModel
from digits.model_store import resolve_version_dir
from testkit.images import encode_png
from testkit.server import free_port
from testkit.shared_data import REPO_ROOT
from tests.integration.conftest import STARTUP_TIMEOUT_SECONDS

pytestmark = pytest.mark.integration


async def test_without_lifespan_probes_say_alive_but_not_ready(make_settings):
    transport = httpx.ASGITransport(app=create_app(make_settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://digitserve.test") as client:
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")
        predicted = await client.post(
            "/predict", files={"file": ("x.png", encode_png(np.eye(28, dtype=np.uint8)))}
        )
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}
    assert ready.status_code == 503 and ready.json()["code"] == "not_ready"
    assert predicted.status_code == 503 and predicted.json()["code"] == "not_ready"


async def test_ready_after_start_up_and_not_ready_after_shutdown(make_settings):
    app = create_app(make_settings())
    manager = LifespanManager(app, startup_timeout=STARTUP_TIMEOUT_SECONDS)
    transport = httpx.ASGITransport(app=manager.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://digitserve.test") as client:
        async with manager:
            ready = await client.get("/readyz")
            state = manager._state["service"]
            model_info = state.metrics.registry.get_sample_value(
                "digitserve_model_info", {"version": "1", "sha256": state.model.sha256, "smoke_test": "false"}
            )
        after_shutdown = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {
        "status": "ready",
        "model_version": "1",
        "model_sha256": state.model.sha256,
        "model_smoke_test": False,
    }
    assert model_info == 1
    assert after_shutdown.status_code == 503 and after_shutdown.json()["code"] == "not_ready"
    assert not state.batcher.is_running


async def test_objects_alive_at_start_up_are_out_of_the_garbage_collectors_reach(make_settings):
    # A full collection walks every tracked object with the event loop stopped: TensorFlow's alone
    # cost ~220 ms, the tail of the latency under load (bench.overload).
    gc.unfreeze()
    try:
        async with LifespanManager(create_app(make_settings()), startup_timeout=STARTUP_TIMEOUT_SECONDS):
            frozen = gc.get_freeze_count()
            tracked = len(gc.get_objects())
    finally:
        gc.unfreeze()
    assert frozen > 10 * tracked  # left to collect: what requests make, not what start-up made


async def test_start_up_fails_fast_when_the_model_dir_is_missing(make_settings, tmp_path):
    app = create_app(make_settings(model_dir=tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        async with LifespanManager(app, startup_timeout=STARTUP_TIMEOUT_SECONDS):
            pass


def run_python_m_app(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m app` on a free port with DIGITSERVE_* `environment`, to its exit."""
    return subprocess.run(
        [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=REPO_ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT_SECONDS,
    )


def test_python_m_app_without_a_model_exits_3_with_one_line_and_the_traceback_only_at_debug(tmp_path):
    missing = tmp_path / "nowhere"
    stopped = run_python_m_app({"DIGITSERVE_MODEL_DIR": str(missing), "DIGITSERVE_LOG_LEVEL": "WARNING"})
    assert stopped.returncode == 3
    (line,) = stopped.stderr.splitlines()
    assert "ERROR" in line and f"cannot start: model directory {missing} does not exist" in line
    debugged = run_python_m_app({"DIGITSERVE_MODEL_DIR": str(missing), "DIGITSERVE_LOG_LEVEL": "DEBUG"})
    assert debugged.returncode == 3 and "Traceback (most recent call last)" in debugged.stderr


@pytest.fixture
def smoke_test_models_dir(models_dir, tmp_path):
    """A model folder whose version 2, the highest, is marked a smoke test (as `--quick` marks it)."""
    shutil.copytree(models_dir / "1", tmp_path / "digits" / "1")
    shutil.copytree(models_dir / "1", tmp_path / "digits" / "2")
    card = {
        **json.loads((models_dir / "1" / "model_card.json").read_text()),
        "version": 2,
        "smoke_test": True,
    }
    (tmp_path / "digits" / "2" / "model_card.json").write_text(json.dumps(card))
    return tmp_path / "digits"


async def test_a_smoke_test_model_is_refused_at_start_up_with_what_to_do(
    make_settings, smoke_test_models_dir
):
    app = create_app(make_settings(model_dir=smoke_test_models_dir))
    with pytest.raises(
        ModelLoadError, match="version 2 .* is a smoke test .* DIGITSERVE_ALLOW_SMOKE_TEST_MODEL"
    ):
        async with LifespanManager(app, startup_timeout=STARTUP_TIMEOUT_SECONDS):
            pass
    # Another version of the same folder is served as ever.
    async with LifespanManager(
        create_app(make_settings(model_dir=smoke_test_models_dir, model_version="1")),
        startup_timeout=STARTUP_TIMEOUT_SECONDS,
    ) as manager:
        assert manager._state["service"].model.version == "1"


async def test_a_smoke_test_model_is_served_when_allowed_and_says_so(
    make_settings, smoke_test_models_dir, caplog
):
    settings = make_settings(model_dir=smoke_test_models_dir, allow_smoke_test_model=True)
    app = create_app(settings)
    manager = LifespanManager(app, startup_timeout=STARTUP_TIMEOUT_SECONDS)
    transport = httpx.ASGITransport(app=manager.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://digitserve.test") as client:
        async with manager:
            ready = (await client.get("/readyz")).json()
            metrics = (await client.get("/metrics")).text
    assert ready["model_version"] == "2" and ready["model_smoke_test"] is True
    assert 'smoke_test="true",version="2"} 1.0' in metrics
    (ready_log,) = [record for record in caplog.records if record.getMessage() == "ready"]
    assert ready_log.fields["model_version"] == "2" and ready_log.fields["smoke_test"] is True


def test_highest_integer_version_is_served_unless_one_is_set(models_dir, tmp_path):
    shutil.copytree(models_dir / "1", tmp_path / "2")
    shutil.copytree(models_dir / "1", tmp_path / "10")
    (tmp_path / "latest").mkdir()  # not an integer: ignored
    assert resolve_version_dir(tmp_path).name == "10"
    assert resolve_version_dir(tmp_path, "2").name == "2"
    with pytest.raises(ModelLoadError, match="holds no saved_model.pb"):
        resolve_version_dir(tmp_path, "3")
    with pytest.raises(ModelLoadError, match="no integer version"):
        resolve_version_dir(tmp_path / "latest")


def test_model_loads_with_its_version_hash_and_card(models_dir):
    model = DigitModel.load(models_dir)
    probabilities = model.predict_batch(np.zeros((3, 28, 28, 1), dtype=np.float32))
    assert model.version == "1"
    assert len(model.sha256) == 64
    assert model.card == json.loads((models_dir / "1" / "model_card.json").read_text())
    assert probabilities.shape == (3, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
