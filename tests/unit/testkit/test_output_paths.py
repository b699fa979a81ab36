"""Where a benchmark writes is checked when its arguments are parsed: a missing folder is made, a path
it cannot write is an argument error naming it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from testkit.output_paths import output_file, output_folder

pytestmark = pytest.mark.unit


def test_an_output_file_in_a_missing_folder_gets_the_folder(tmp_path: Path) -> None:
    path = output_file(str(tmp_path / "results" / "run3" / "figures.json"))

    assert path == tmp_path / "results" / "run3" / "figures.json"
    assert path.parent.is_dir()
    assert not path.exists()  # the benchmark writes it, at the end


def test_an_existing_output_file_is_accepted_for_overwriting(tmp_path: Path) -> None:
    (tmp_path / "figures.json").write_text("{}")

    assert output_file(str(tmp_path / "figures.json")) == tmp_path / "figures.json"


def test_an_output_file_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is a folder, not a file"):
        output_file(str(tmp_path))


def test_an_output_file_under_a_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder")

    with pytest.raises(argparse.ArgumentTypeError, match="notes.txt is a file, not a folder"):
        output_file(str(tmp_path / "notes.txt" / "figures.json"))


def test_an_output_folder_is_created_with_its_parents(tmp_path: Path) -> None:
    assert output_folder(str(tmp_path / "a" / "b")).is_dir()


def test_an_empty_output_file_name_is_refused_as_empty() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="an empty file name"):
        output_file("")


def test_an_output_folder_that_is_a_file_or_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file")

    with pytest.raises(argparse.ArgumentTypeError, match="is a file, not a folder"):
        output_folder(str(tmp_path / "notes.txt"))
    with pytest.raises(argparse.ArgumentTypeError, match="empty folder name"):
        output_folder("")
