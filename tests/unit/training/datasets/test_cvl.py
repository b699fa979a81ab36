"""load_cvl reads the CVL single-digit tree through the service's preprocessing and keeps who wrote
each digit; a file or folder that breaks the layout is named in a clear error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.pipeline.decode import decode_image
from app.pipeline.preprocess import preprocess_image
from training.datasets.cvl import load_cvl, writer_of
from training.datasets.digit_set import DatasetError
from training.datasets.registry import load_source, parse_dataset_spec

pytestmark = pytest.mark.unit


def _scan_of(digit: int) -> np.ndarray:
    """A 28x28 dark-on-light 'scan' of `digit`, as CVL stores them: the digit's strokes in dark ink."""
    image = np.full((28, 28), 235, dtype=np.uint8)
    cv2.putText(image, str(digit), (6, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 25, 2)
    return image


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


@pytest.fixture
def cvl_tree(tmp_path) -> Path:
    """train/: writers 0001 and 0002, test/: writer 0100; digits 0 and 1 each."""
    root = tmp_path / "cvl"
    for split, writers in (("train", ("0001", "0002")), ("test", ("0100",))):
        for writer in writers:
            for digit in (0, 1):
                _write(root / split / str(digit) / f"{writer}-0{digit}-03.png", _scan_of(digit))
    return root


def test_both_splits_are_read_like_the_service_with_their_writers(cvl_tree):
    source = load_cvl(cvl_tree)

    assert (source.name, source.train.name, source.test.name) == ("cvl", "cvl/train", "cvl/test")
    assert source.train.labels.tolist() == [0, 0, 1, 1]
    assert source.train.writers.tolist() == ["0001", "0002", "0001", "0002"]
    assert source.test.writers.tolist() == ["0100", "0100"]
    png = cv2.imencode(".png", _scan_of(1))[1].tobytes()
    expected = preprocess_image(decode_image(png)).canonical  # dark on light, inverted by the service
    np.testing.assert_array_equal(source.train.images[2], expected)
    assert source.train.images[:, 0, 0].max() == 0  # white ink on black, like MNIST


def test_the_registry_reads_cvl_from_a_path_or_from_the_cache(cvl_tree, tmp_path):
    from_path = load_source(parse_dataset_spec(f"cvl={cvl_tree}"), tmp_path / "cache")
    from_cache = load_source(parse_dataset_spec("cvl"), cvl_tree.parent)
    assert len(from_path.train) == len(from_cache.train) == 4


@pytest.mark.parametrize("file_name", ["0169-01-07.png", "ab12-3-4.jpg", "0227-08-01-01.png"])
def test_the_writer_is_the_first_part_of_the_file_name(file_name):
    assert writer_of(Path("cvl/train/3") / file_name) == file_name.split("-")[0]


def test_a_file_without_a_writer_id_is_named(cvl_tree):
    _write(cvl_tree / "train" / "1" / "scan.png", _scan_of(1))
    with pytest.raises(DatasetError, match=r"scan\.png: a CVL file name must be <writer>-<number>-<number>"):
        load_cvl(cvl_tree)


def test_an_unreadable_image_is_named(cvl_tree):
    (cvl_tree / "train" / "0" / "0003-00-01.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(
        DatasetError, match=r"cvl/train: 1 of 5 files unusable: .*0003-00-01\.png: undecodable image"
    ):
        load_cvl(cvl_tree)


def test_an_empty_digit_folder_is_named(cvl_tree):
    (cvl_tree / "train" / "7").mkdir()
    with pytest.raises(DatasetError, match=r"digit folder .*train/7 holds no image"):
        load_cvl(cvl_tree)


def test_a_folder_that_is_not_a_digit_is_named(cvl_tree):
    _write(cvl_tree / "train" / "12" / "0001-12-01.png", _scan_of(1))
    with pytest.raises(DatasetError, match="folders 12 in .* are not digits"):
        load_cvl(cvl_tree)


def test_a_tree_without_train_says_what_layout_it_expects(tmp_path):
    with pytest.raises(
        DatasetError, match=r"cvl: .*train is not a folder; expected the CVL single-digit tree"
    ):
        load_cvl(tmp_path)


def test_the_shared_cvl_tree_has_its_writers_on_one_side_only(shared_data_dir):
    cvl_root = shared_data_dir / "cvl"
    if not cvl_root.is_dir():
        pytest.fail(f"{cvl_root} is missing: the shared data must hold CVL (read ../shared/data/README)")
    writers = {
        split: {path.stem.split("-")[0] for path in (cvl_root / split).rglob("*.png")}
        for split in ("train", "test")
    }
    assert len(writers["train"]) == 67 and len(writers["test"]) == 60
    assert writers["train"].isdisjoint(writers["test"])
