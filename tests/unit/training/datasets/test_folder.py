"""load_folder reads a tree of digit folders through the service's own decode and preprocess stages."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.pipeline.decode import decode_image
from app.pipeline.preprocess import preprocess_image
from training.datasets.digit_set import DatasetError
from training.datasets.folder import load_folder

pytestmark = pytest.mark.unit


def _draw_one(is_dark_on_light: bool, height: int = 60, width: int = 45) -> np.ndarray:
    """(height, width) uint8: a slanted '1' stroke, black on white paper or white on black."""
    paper, ink = (255, 20) if is_dark_on_light else (0, 235)
    image = np.full((height, width), paper, dtype=np.uint8)
    cv2.line(image, (width // 2 + 6, 8), (width // 2 - 6, height - 8), ink, 6)
    return image


def _draw_zero(is_dark_on_light: bool) -> np.ndarray:
    paper, ink = (250, 10) if is_dark_on_light else (5, 245)
    image = np.full((64, 64), paper, dtype=np.uint8)
    cv2.ellipse(image, (32, 32), (14, 22), 0, 0, 360, ink, 5)
    return image


def _write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def digit_tree(tmp_path) -> Path:
    """root/0 and root/1, each with a dark-on-light PNG and a light-on-dark JPEG, plus files to skip."""
    root = tmp_path / "digits"
    for digit, draw in ((0, _draw_zero), (1, _draw_one)):
        _write_image(root / str(digit) / "b_dark_on_light.png", draw(True))
        _write_image(root / str(digit) / "a_light_on_dark.jpg", draw(False))
    (root / "1" / "notes.txt").write_text("not an image, skipped")
    (root / "1" / ".hidden.png").write_bytes(b"editor backup, skipped")
    (root / "README.md").write_text("files at the top are not digits")
    return root


def test_load_folder_preprocesses_like_the_service(digit_tree):
    source = load_folder(digit_tree, name="handwritten")

    assert (source.name, source.train.name, source.test) == ("handwritten", "handwritten/train", None)
    assert source.train.labels.tolist() == [0, 0, 1, 1]
    assert source.train.images.shape == (4, 28, 28) and source.train.images.dtype == np.uint8
    # Sorted file order: a_light_on_dark.jpg before b_dark_on_light.png in each digit folder.
    expected = preprocess_image(
        decode_image((digit_tree / "1" / "b_dark_on_light.png").read_bytes())
    ).canonical
    np.testing.assert_array_equal(source.train.images[3], expected)


def test_load_folder_gives_white_ink_on_black_for_either_polarity(digit_tree):
    images = load_folder(digit_tree).train.images
    for image in images:
        assert image[0, :].max() == 0 and image[:, 0].max() == 0  # black margin, as in MNIST
        assert image.max() > 200
    # The same '1' drawn in either polarity comes out nearly the same.
    difference = np.abs(images[2].astype(int) - images[3].astype(int))
    assert difference.mean() < 20


def test_load_folder_is_deterministic(digit_tree):
    first, second = load_folder(digit_tree), load_folder(digit_tree)
    np.testing.assert_array_equal(first.train.images, second.train.images)


def test_load_folder_reads_explicit_train_and_test_splits(tmp_path):
    root = tmp_path / "split"
    _write_image(root / "train" / "1" / "one.png", _draw_one(True))
    _write_image(root / "train" / "0" / "nested" / "zero.png", _draw_zero(True))
    _write_image(root / "test" / "0" / "zero.bmp", _draw_zero(False))
    source = load_folder(root)
    assert (source.train.name, source.train.labels.tolist()) == ("folder/train", [0, 1])
    assert (source.test.name, source.test.labels.tolist()) == ("folder/test", [0])


def test_load_folder_names_a_corrupt_file_and_the_reason(digit_tree):
    bad = digit_tree / "3" / "bad.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated")
    with pytest.raises(DatasetError, match=rf"folder/train: 1 of 5 files unusable: {bad}: undecodable image"):
        load_folder(digit_tree)


def test_load_folder_names_a_blank_image(digit_tree):
    blank = _write_image(digit_tree / "2" / "blank.png", np.full((30, 30), 255, dtype=np.uint8))
    with pytest.raises(DatasetError, match=rf"{blank}: no digit found"):
        load_folder(digit_tree)


def test_load_folder_rejects_a_folder_not_named_after_a_digit(digit_tree):
    _write_image(digit_tree / "seven" / "7.png", _draw_one(True))
    with pytest.raises(
        DatasetError, match=r"folders seven in .* are not digits; each folder must be named 0..9"
    ):
        load_folder(digit_tree)


def test_load_folder_rejects_a_tree_without_images(tmp_path):
    (tmp_path / "empty" / "4").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"folder/train: no images in .*empty"):
        load_folder(tmp_path / "empty")


def test_load_folder_rejects_split_folders_mixed_with_digit_folders(digit_tree):
    _write_image(digit_tree / "train" / "1" / "one.png", _draw_one(True))
    with pytest.raises(DatasetError, match=r"mixes split folders with \['0', '1'\]"):
        load_folder(digit_tree)


def test_load_folder_rejects_a_test_split_without_train(tmp_path):
    _write_image(tmp_path / "only-test" / "test" / "1" / "one.png", _draw_one(True))
    with pytest.raises(DatasetError, match=r"no train/"):
        load_folder(tmp_path / "only-test")


def test_load_folder_rejects_a_missing_root(tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere is not a folder of digit images"):
        load_folder(tmp_path / "nowhere")
