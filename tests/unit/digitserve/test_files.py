"""Paths on the command line -> the image files to read: files as given, folders searched recursively."""

from __future__ import annotations

import pytest

from digitserve.files import PathProblemError, find_images

pytestmark = pytest.mark.unit


@pytest.fixture
def scans(tmp_path):
    """A folder of scans: images at two depths, a text file, a hidden folder and a hidden file."""
    for relative in [
        "b.png",
        "a.JPG",
        "sub/c.webp",
        "sub/deeper/d.tiff",
        "notes.txt",
        ".cache/e.png",
        ".f.png",
    ]:
        path = tmp_path / "scans" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path / "scans"


def test_a_folder_gives_its_images_recursively_in_sorted_order_without_hidden_ones(scans):
    assert find_images([str(scans)]) == [
        str(scans / "a.JPG"),
        str(scans / "b.png"),
        str(scans / "sub" / "c.webp"),
        str(scans / "sub" / "deeper" / "d.tiff"),
    ]


def test_a_file_is_read_whatever_its_name_and_each_path_once(scans):
    notes, image = str(scans / "notes.txt"), str(scans / "b.png")
    assert find_images([notes, image, str(scans / "sub"), image]) == [
        notes,
        image,
        str(scans / "sub" / "c.webp"),
        str(scans / "sub" / "deeper" / "d.tiff"),
    ]


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(PathProblemError, match="nowhere.png: no such file or folder"):
        find_images([str(tmp_path / "nowhere.png")])


def test_a_folder_without_images_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(PathProblemError, match="empty: the folder holds no image"):
        find_images([str(tmp_path / "empty")])
