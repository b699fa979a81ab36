"""read_idx reads MNIST's IDX format, gzip or plain, and names the file whenever one is malformed."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from training.datasets.digit_set import DatasetError
from training.datasets.idx import find_idx_file, read_idx, read_idx_pair

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("is_gzip", [True, False], ids=["gzip", "plain"])
def test_read_idx_round_trips_images_and_labels(tmp_path, write_idx, make_digits, is_gzip):
    images, labels = make_digits(7)
    images_path = write_idx(tmp_path / "images-idx3-ubyte", images, is_gzip=is_gzip)
    labels_path = write_idx(tmp_path / "labels-idx1-ubyte", labels, is_gzip=is_gzip)

    read_images, read_labels = read_idx(images_path), read_idx(labels_path)

    assert read_images.dtype == np.uint8 and read_images.shape == (7, 28, 28)
    assert read_images.flags.writeable
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)


def test_read_idx_detects_gzip_by_magic_bytes_not_by_name(tmp_path, write_idx, make_digits):
    images, _ = make_digits(2)
    misnamed = write_idx(tmp_path / "plain-looking-name", images, is_gzip=True)
    np.testing.assert_array_equal(read_idx(misnamed), images)


def test_read_idx_rejects_corrupt_gzip_naming_the_file(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(b"\x1f\x8b" + b"this is not deflate data at all")
    with pytest.raises(DatasetError, match=r"broken\.gz: corrupt gzip"):
        read_idx(path)


def test_read_idx_rejects_gzip_cut_short(tmp_path, write_idx, make_digits):
    images, _ = make_digits(50)
    path = write_idx(tmp_path / "cut.gz", images)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DatasetError, match=r"cut\.gz: corrupt gzip"):
        read_idx(path)


def test_read_idx_rejects_wrong_magic(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DatasetError, match=r"not-idx: not an IDX file"):
        read_idx(path)


def test_read_idx_rejects_non_byte_dtype_code(tmp_path):
    path = tmp_path / "floats-idx"
    path.write_bytes(bytes([0, 0, 0x0D, 1]) + (1).to_bytes(4, "big") + bytes(4))
    with pytest.raises(DatasetError, match=r"floats-idx: IDX dtype code 0x0d is not supported"):
        read_idx(path)


@pytest.mark.parametrize("dimensions", [0, 9])
def test_read_idx_rejects_absurd_dimension_count(tmp_path, dimensions):
    path = tmp_path / "odd-idx"
    path.write_bytes(bytes([0, 0, 0x08, dimensions]) + bytes(64))
    with pytest.raises(DatasetError, match=rf"odd-idx: IDX header declares {dimensions} dimensions"):
        read_idx(path)


def test_read_idx_rejects_truncated_payload(tmp_path, write_idx, make_digits):
    images, _ = make_digits(3)
    path = tmp_path / "short-idx"
    path.write_bytes(gzip.compress(write_idx(tmp_path / "full", images, is_gzip=False).read_bytes()[:-10]))
    with pytest.raises(DatasetError, match=r"short-idx: truncated IDX payload.*needs 2352 bytes.*holds 2342"):
        read_idx(path)


def test_read_idx_rejects_truncated_header(tmp_path):
    path = tmp_path / "header-idx"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + bytes(5))
    with pytest.raises(DatasetError, match=r"header-idx: truncated IDX header"):
        read_idx(path)


def test_read_idx_rejects_trailing_data(tmp_path, write_idx, make_digits):
    images, _ = make_digits(2)
    path = write_idx(tmp_path / "long-idx", images, is_gzip=False)
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DatasetError, match=r"long-idx: IDX file has data after"):
        read_idx(path)


def test_read_idx_rejects_header_claiming_terabytes_before_reading(tmp_path):
    path = tmp_path / "huge-idx"
    sizes = b"".join((60000).to_bytes(4, "big") for _ in range(3))
    path.write_bytes(bytes([0, 0, 0x08, 3]) + sizes)
    with pytest.raises(DatasetError, match=r"huge-idx: IDX header declares shape"):
        read_idx(path)


def test_read_idx_reports_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"absent-idx: cannot read the file"):
        read_idx(tmp_path / "absent-idx")


def test_read_idx_pair_builds_digit_set_with_int64_labels(tmp_path, write_idx, make_digits):
    images, labels = make_digits(5)
    digits = read_idx_pair(
        write_idx(tmp_path / "images", images), write_idx(tmp_path / "labels", labels), "tiny/train"
    )
    assert digits.name == "tiny/train" and len(digits) == 5
    assert digits.labels.dtype == np.int64
    np.testing.assert_array_equal(digits.labels, labels)


def test_read_idx_pair_rejects_count_mismatch(tmp_path, write_idx, make_digits):
    images, labels = make_digits(5)
    images_path = write_idx(tmp_path / "images", images)
    labels_path = write_idx(tmp_path / "labels", labels[:4])
    with pytest.raises(
        DatasetError, match=r"tiny/train: .*images holds 5 images but .*labels holds 4 labels"
    ):
        read_idx_pair(images_path, labels_path, "tiny/train")


def test_read_idx_pair_rejects_images_that_are_not_28x28(tmp_path, write_idx):
    images_path = write_idx(tmp_path / "images", np.zeros((2, 16, 16), dtype=np.uint8))
    labels_path = write_idx(tmp_path / "labels", np.zeros(2, dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"holds shape \(2, 16, 16\), expected \(N, 28, 28\)"):
        read_idx_pair(images_path, labels_path, "tiny/train")


def test_read_idx_pair_rejects_swapped_files(tmp_path, write_idx, make_digits):
    images, labels = make_digits(2)
    images_path = write_idx(tmp_path / "images", images)
    labels_path = write_idx(tmp_path / "labels", labels)
    with pytest.raises(DatasetError, match=r"expected \(N, 28, 28\) images"):
        read_idx_pair(labels_path, images_path, "tiny/train")


def test_read_idx_pair_rejects_labels_above_nine(tmp_path, write_idx, make_digits):
    images, _ = make_digits(2)
    images_path = write_idx(tmp_path / "images", images)
    labels_path = write_idx(tmp_path / "labels", np.array([3, 12], dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"holds label 12, expected digits 0..9"):
        read_idx_pair(images_path, labels_path, "tiny/train")


def test_find_idx_file_searches_folders_in_order_and_accepts_unpacked_names(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    (second / "t10k-labels-idx1-ubyte.gz").write_bytes(b"x")
    (first / "t10k-labels-idx1-ubyte").write_bytes(b"x")
    (second / "t10k-images-idx3-ubyte.gz").write_bytes(b"x")

    assert find_idx_file("t10k-labels-idx1-ubyte.gz", [first, second]) == first / "t10k-labels-idx1-ubyte"
    assert find_idx_file("t10k-images-idx3-ubyte.gz", [first, second]) == second / "t10k-images-idx3-ubyte.gz"
    assert find_idx_file("train-images-idx3-ubyte.gz", [first, second]) is None
