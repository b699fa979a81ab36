"""The model folder: integer version folders, the highest served unless one is named, one card file."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits.errors import ModelLoadError
from digits.model_store import (
    MODEL_CARD_FILE_NAME,
    hash_saved_model,
    next_version,
    read_model_card,
    resolve_version_dir,
    write_model_card,
)

pytestmark = pytest.mark.unit


def make_version(model_dir: Path, name: str, content: bytes = b"graph") -> Path:
    version_dir = model_dir / name
    version_dir.mkdir(parents=True)
    (version_dir / "saved_model.pb").write_bytes(content)
    return version_dir


def test_the_highest_integer_version_is_resolved_unless_one_is_named(tmp_path):
    for name in ("2", "10", "9"):
        make_version(tmp_path, name)
    (tmp_path / "latest").mkdir()  # not an integer: ignored
    assert resolve_version_dir(tmp_path) == tmp_path / "10"
    assert resolve_version_dir(tmp_path, "2") == tmp_path / "2"


def test_a_version_folder_itself_resolves_to_itself(tmp_path):
    version_dir = make_version(tmp_path, "4")
    assert resolve_version_dir(version_dir) == version_dir


@pytest.mark.parametrize(
    ("layout", "version", "message"),
    [
        ((), None, "does not exist"),
        (("models",), None, "no integer version folder"),
        (("models/3",), None, "holds no saved_model.pb"),
        (("models/3",), "4", "holds no saved_model.pb"),
    ],
    ids=["missing folder", "no versions", "version without graph", "unknown version"],
)
def test_a_missing_model_is_a_model_load_error_naming_the_folder(tmp_path, layout, version, message):
    for folder in layout:
        (tmp_path / folder).mkdir(parents=True)
    with pytest.raises(ModelLoadError, match=message):
        resolve_version_dir(tmp_path / "models", version)


def test_next_version_is_one_above_the_highest_and_1_in_an_empty_or_missing_folder(tmp_path):
    assert next_version(tmp_path / "missing") == 1
    assert next_version(tmp_path) == 1
    make_version(tmp_path, "3")
    make_version(tmp_path, "12")
    assert next_version(tmp_path) == 13


def test_a_card_written_is_read_back_and_a_folder_without_one_reads_empty(tmp_path):
    assert read_model_card(tmp_path) == {}
    path = write_model_card(tmp_path, {"version": 5, "datasets": ["mnist"]})
    assert path == tmp_path / MODEL_CARD_FILE_NAME
    assert read_model_card(tmp_path) == {"version": 5, "datasets": ["mnist"]}


def test_the_saved_model_hash_is_the_sha256_of_its_graph_file(tmp_path):
    version_dir = make_version(tmp_path, "1", b"abc")
    assert hash_saved_model(version_dir) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
