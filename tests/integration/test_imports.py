"""Importing one side of the tree does not load the other's heavy dependencies, in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
IMPORT_TIMEOUT_SECONDS = 120


def modules_loaded_by(module: str) -> set[str]:
    script = f"import sys, {module}; print('\\n'.join(sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_SECONDS,
        check=True,
    )
    return {name.split(".")[0] for name in completed.stdout.split()}


def test_the_http_routes_load_no_tensorflow():
    assert "tensorflow" not in modules_loaded_by("app.api.routes.predict")


def test_the_training_run_loads_no_web_framework():
    assert not {"fastapi", "starlette"} & modules_loaded_by("training.run")


def test_the_shared_contract_loads_neither_side():
    assert not {"tensorflow", "keras", "fastapi", "app", "training"} & modules_loaded_by("digits.contract")
