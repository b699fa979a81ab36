"""load_emnist_digits reads EMNIST Digits from a folder and turns its transposed images upright."""

from __future__ import annotations

import numpy as np
import pytest

from training.datasets.digit_set import DatasetError
from training.datasets.emnist import EMNIST_PAGE_URL, EMNIST_SPLIT_FILES, load_emnist_digits

pytestmark = pytest.mark.unit


def _upright_seven() -> np.ndarray:
    """(28, 28) uint8: a '7' in MNIST orientation: a bar along the top, a stroke down the right side."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:7, 6:22] = 255
    image[7:24, 19:22] = 200
    return image


@pytest.fixture
def emnist_folder(tmp_path, write_idx):
    """A folder with the four EMNIST Digits files, every image stored transposed as EMNIST stores it."""
    upright = np.stack([_upright_seven(), np.fliplr(_upright_seven())])
    for split, (images_name, labels_name) in EMNIST_SPLIT_FILES.items():
        write_idx(tmp_path / images_name, upright.transpose(0, 2, 1), is_gzip=split == "train")
        write_idx(tmp_path / labels_name, np.array([7, 1], dtype=np.uint8))
    return tmp_path


def test_load_emnist_digits_transposes_images_to_mnist_orientation(emnist_folder):
    source = load_emnist_digits([emnist_folder])

    assert source.name == "emnist-digits"
    assert (source.train.name, source.test.name) == ("emnist-digits/train", "emnist-digits/test")
    for digits in (source.train, source.test):
        np.testing.assert_array_equal(digits.images[0], _upright_seven())
        # The top bar is a row of ink, not a column: the stored (transposed) layout would fail this.
        assert digits.images[0, 5, 6:22].min() == 255 and digits.images[0, 6:22, 5].max() == 0
        np.testing.assert_array_equal(digits.labels, [7, 1])
        assert digits.images.flags.c_contiguous


def test_load_emnist_digits_names_missing_files_and_where_to_get_them(tmp_path, emnist_folder):
    (emnist_folder / "emnist-digits-test-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError) as caught:
        load_emnist_digits([tmp_path / "elsewhere", emnist_folder])
    message = str(caught.value)
    assert "emnist-digits-test-labels-idx1-ubyte.gz not found" in message
    assert "emnist-digits-train" not in message
    assert str(emnist_folder) in message and EMNIST_PAGE_URL in message
    assert "--dataset emnist-digits=PATH" in message


def test_load_emnist_digits_without_folders_says_so(tmp_path):
    with pytest.raises(DatasetError, match=r"not found in \(no folder given\)"):
        load_emnist_digits([])
