"""The compose `train` profile -> `python -m training.run` in a container, data mounted read-only,
a new model version written into the host's models folder."""

from __future__ import annotations

import json

import pytest
import yaml

from testkit.shared_data import REPO_ROOT
from tests.e2e.conftest import BUILD_TIMEOUT_SECONDS

pytestmark = pytest.mark.e2e

TRAIN_TIMEOUT_SECONDS = 600


def test_train_profile_exports_a_model_version_into_the_host_models_folder(compose_stack, tmp_path):
    host_folders = {
        "DIGITSERVE_HOST_MODELS_DIR": str(tmp_path / "models"),
        "DIGITSERVE_HOST_RUNS_DIR": str(tmp_path / "runs"),
    }
    compose_stack.compose("--profile", "train", "build", "train", timeout=BUILD_TIMEOUT_SECONDS)
    # The shipped command, cut down to a smoke run: a few hundred images, one epoch (promoted into
    # the served folder only because the test asks for it: the service would refuse to serve it).
    command = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["train"]["command"]
    compose_stack.compose(
        *("--profile", "train", "run", "--rm", "train", *command, "--quick", "--allow-smoke-test"),
        timeout=TRAIN_TIMEOUT_SECONDS,
        environment=host_folders,
    )
    (version_dir,) = (tmp_path / "models" / "digits").iterdir()
    assert version_dir.name.isdigit()
    assert (version_dir / "saved_model.pb").is_file()
    card = json.loads((version_dir / "model_card.json").read_text())
    assert card["config"]["quick"] is True and card["smoke_test"] is True
    assert card["version"] == int(version_dir.name)
    # The run's reports land on the host as well.
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "model_card.json").is_file()
