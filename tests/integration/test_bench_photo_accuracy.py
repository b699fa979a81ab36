"""`python -m bench.photo_accuracy`: the same photos of test digits sent to this checkout's service and to
a baseline commit's (a temporary git worktree), accuracy side by side, and the worktree removed after."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration


def worktrees() -> list[str]:
    listing = subprocess.run(["git", "worktree", "list"], cwd=REPO_ROOT, capture_output=True, text=True)
    return listing.stdout.splitlines()


def test_this_checkout_against_itself_loses_nothing_and_leaves_no_worktree(tmp_path: Path, models_dir: Path):
    before = worktrees()
    arguments = ["--baseline-ref", "HEAD", "--set", "mnist", "--limit", "9", "--model-dir", str(models_dir)]
    arguments += ["--json-out", str(tmp_path / "photos.json"), "--log-dir", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "bench.photo_accuracy", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [row] = json.loads((tmp_path / "photos.json").read_text())["sets"]
    assert row["photos"] == 9 and row["baseline_percent"] == row["this_percent"]
    assert "met" in result.stdout.splitlines()[-1]
    assert worktrees() == before
