"""Runs a `python -m` command of the project as a user would: from the repository, TensorFlow quiet."""

from __future__ import annotations

import os
import subprocess
import sys

from testkit.shared_data import REPO_ROOT


def run_cli(module: str, *args: str, timeout_seconds: int = 600) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        env=environment,
    )
