"""load_usps reads the usps.h5 packaging and frames its 16x16 digits the way MNIST frames its own."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from digits.canonicalize import canonicalize_digit
from training.datasets.digit_set import DatasetError
from training.datasets.usps import load_usps

pytestmark = pytest.mark.unit


def _square_digits(count: int) -> np.ndarray:
    """(count, 256) float32 in [0, 1]: 16x16 frames filled by a ring, like USPS digits fill theirs."""
    frame = np.zeros((16, 16), dtype=np.float32)
    frame[0:16, 2:14] = 1.0
    frame[3:13, 5:11] = 0.0
    frame[0, 2] = 0.5
    return np.tile(frame.reshape(1, 256), (count, 1))


def _longer_ink_side_pixels(images: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N,) the longer side of each image's ink bounding box."""
    sides = []
    for axis in (2, 1):
        has_ink = images.any(axis=axis)
        first = has_ink.argmax(axis=1)
        last = has_ink.shape[1] - 1 - has_ink[:, ::-1].argmax(axis=1)
        sides.append(last - first + 1)
    return np.maximum(*sides)


def _write_usps(path, *, train_count=3, test_count=2, **overrides):
    arrays = {
        "train/data": _square_digits(train_count),
        "train/target": np.arange(train_count, dtype=np.int32) % 10,
        "test/data": _square_digits(test_count),
        "test/target": np.arange(test_count, dtype=np.int32) % 10,
    }
    arrays.update(overrides)
    with h5py.File(path, "w") as h5_file:
        for key, value in arrays.items():
            if value is not None:
                h5_file[key] = value
    return path


def test_load_usps_canonicalizes_16x16_digits_into_mnist_frames(tmp_path):
    source = load_usps(_write_usps(tmp_path / "usps.h5"))

    assert source.name == "usps"
    assert (source.train.name, len(source.train), source.test.name, len(source.test)) == (
        "usps/train",
        3,
        "usps/test",
        2,
    )
    stored = np.rint(_square_digits(1)[0] * 255).astype(np.uint8).reshape(16, 16)
    assert stored[0, 2] == 128  # round(x * 255), not truncation
    np.testing.assert_array_equal(source.train.images[0], canonicalize_digit(stored))
    rows = np.flatnonzero(source.train.images[0].any(axis=1))
    assert rows[-1] - rows[0] + 1 == 20  # the longer side now spans MNIST's 20-pixel box
    np.testing.assert_array_equal(source.train.labels, [0, 1, 2])
    assert source.train.labels.dtype == np.int64 and source.train.images.dtype == np.uint8


def test_load_usps_accepts_the_folder_holding_usps_h5(tmp_path):
    _write_usps(tmp_path / "usps.h5")
    assert len(load_usps(tmp_path).test) == 2


@pytest.mark.parametrize("missing_key", ["train/data", "test/target"])
def test_load_usps_names_a_missing_key(tmp_path, missing_key):
    path = _write_usps(tmp_path / "usps.h5", **{missing_key: None})
    with pytest.raises(DatasetError, match=rf"usps\.h5: key '{missing_key}' is missing"):
        load_usps(path)


def test_load_usps_rejects_images_that_are_not_16x16(tmp_path):
    path = _write_usps(tmp_path / "usps.h5", **{"train/data": np.zeros((3, 784), dtype=np.float32)})
    with pytest.raises(DatasetError, match=r"'train/data' has shape \(3, 784\).*expected \(n, 256\)"):
        load_usps(path)


def test_load_usps_rejects_label_count_mismatch(tmp_path):
    path = _write_usps(tmp_path / "usps.h5", **{"test/target": np.zeros(5, dtype=np.int32)})
    with pytest.raises(DatasetError, match=r"'test/target' \(5,\)"):
        load_usps(path)


def test_load_usps_rejects_pixels_outside_unit_range(tmp_path):
    path = _write_usps(tmp_path / "usps.h5", **{"train/data": _square_digits(3) * 2 - 1})
    with pytest.raises(DatasetError, match=r"'train/data' has values outside \[0, 1\]"):
        load_usps(path)


def test_load_usps_rejects_labels_outside_digits(tmp_path):
    path = _write_usps(tmp_path / "usps.h5", **{"train/target": np.array([1, 2, 10], dtype=np.int32)})
    with pytest.raises(DatasetError, match=r"'train/target' has labels outside 0..9"):
        load_usps(path)


def test_load_usps_rejects_text_labels(tmp_path):
    path = _write_usps(tmp_path / "usps.h5", **{"train/target": np.array([b"1", b"2", b"3"])})
    with pytest.raises(DatasetError, match=r"expected floats and integers"):
        load_usps(path)


def test_load_usps_names_a_blank_image(tmp_path):
    blank_second = _square_digits(3)
    blank_second[1] = 0.0
    path = _write_usps(tmp_path / "usps.h5", **{"train/data": blank_second})
    with pytest.raises(DatasetError, match=r"usps\.h5: 'train/data' image 1 is blank"):
        load_usps(path)


def test_load_usps_rejects_a_file_that_is_not_hdf5(tmp_path):
    path = tmp_path / "usps.h5"
    path.write_bytes(b"not an hdf5 file")
    with pytest.raises(DatasetError, match=r"usps\.h5: cannot read it as HDF5"):
        load_usps(path)


def test_load_usps_reports_a_missing_file_and_what_to_put_there(tmp_path):
    with pytest.raises(DatasetError, match=r"USPS file .*usps\.h5 not found; put the common HDF5 packaging"):
        load_usps(tmp_path)


def test_load_usps_reads_the_shared_data(shared_data_dir):
    source = load_usps(shared_data_dir / "usps" / "usps.h5")

    assert (len(source.train), len(source.test)) == (7291, 2007)
    for digits in (source.train, source.test):
        assert digits.images.dtype == np.uint8 and digits.images.shape[1:] == (28, 28)
        assert digits.images.max() == 255
        assert (_longer_ink_side_pixels(digits.images) == 20).all()  # MNIST's 20-pixel box
        assert set(np.unique(digits.labels)) == set(range(10))
