"""Model folder on disk -> the version folder to serve, its model card and its identity (sha256).

The layout is TF-Serving's: integer-named version folders under one model folder
(`models/digits/1/`, `models/digits/2/` ...), each a SavedModel (`saved_model.pb`, `variables/`) with
its `model_card.json` beside it. Training writes this layout and serving and evaluation read it, all
through this module, so the file names and the version rule are written once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from digits.errors import ModelLoadError

SAVED_MODEL_FILE_NAME = "saved_model.pb"
MODEL_CARD_FILE_NAME = "model_card.json"
# True on the card of a model trained by `--quick` (a few hundred images, one epoch): a test of the
# training code, never a model to serve.
SMOKE_TEST_CARD_KEY = "smoke_test"


def holds_exported_model(folder: Path) -> bool:
    """Whether `folder` is one exported model (a version folder holding `saved_model.pb`)."""
    return (folder / SAVED_MODEL_FILE_NAME).is_file()


def list_versions(model_dir: Path) -> list[int]:
    """The integer version folders in `model_dir`, ascending (none if the folder does not exist)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(child.name) for child in model_dir.iterdir() if child.is_dir() and child.name.isdigit())


def next_version(model_dir: Path) -> int:
    """One above the highest version folder in `model_dir` (1 if there is none)."""
    return max(list_versions(model_dir), default=0) + 1


def resolve_version_dir(model_dir: Path, version: str | None = None) -> Path:
    """Finds the version folder to load.

    Args:
        model_dir: a folder of integer-named version folders, or one version folder itself (holding
            `saved_model.pb`), as a user evaluating a single export would give it.
        version: the version to load, or None for the highest integer version present.

    Returns:
        The version folder, holding `saved_model.pb`.

    Raises:
        ModelLoadError: the folder, the version or its `saved_model.pb` is missing.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(
            f"model directory {model_dir.resolve()} does not exist; train a model (`make train`) or "
            "name a folder holding integer version folders such as 1/ (the service: DIGITSERVE_MODEL_DIR)"
        )
    if version is None and holds_exported_model(model_dir):
        return model_dir
    if version is None:
        versions = list_versions(model_dir)
        if not versions:
            raise ModelLoadError(f"model directory {model_dir.resolve()} holds no integer version folder")
        version = str(versions[-1])
    version_dir = model_dir / version
    if not holds_exported_model(version_dir):
        raise ModelLoadError(f"{version_dir.resolve()} holds no {SAVED_MODEL_FILE_NAME}")
    return version_dir


def read_model_card(folder: Path) -> dict[str, Any]:
    """The parsed `model_card.json` of a version or run folder; empty when the folder has none."""
    card_path = folder / MODEL_CARD_FILE_NAME
    return json.loads(card_path.read_text()) if card_path.is_file() else {}


def write_model_card(folder: Path, card: dict[str, Any]) -> Path:
    """Writes `model_card.json` (sorted keys, indented) into a version or run folder; returns its path."""
    card_path = folder / MODEL_CARD_FILE_NAME
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card_path


def hash_saved_model(version_dir: Path) -> str:
    """The sha256 hex digest of the version's `saved_model.pb`: tells two exports of one version apart."""
    with (version_dir / SAVED_MODEL_FILE_NAME).open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def is_smoke_test(card: dict[str, Any]) -> bool:
    """Whether a model card marks a smoke-test model (a `--quick` run; cards before the mark say so in
    their config)."""
    return bool(card.get(SMOKE_TEST_CARD_KEY) or card.get("config", {}).get("quick"))
