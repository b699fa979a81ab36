"""load_mnist finds each official file in the user's folders, then the cache, then the mirrors."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from training.datasets import mnist
from training.datasets.digit_set import DatasetError
from training.datasets.mnist import MNIST_SHA256, load_mnist

pytestmark = pytest.mark.unit

TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def write_split(write_idx, make_digits):
    """Returns write(folder, split_files, count, seed) -> (images, labels) written under MNIST's names."""

    def write(folder, split_files, count, seed=0):
        images, labels = make_digits(count, seed)
        write_idx(folder / split_files[0], images)
        write_idx(folder / split_files[1], labels)
        return images, labels

    return write


def test_load_mnist_reads_splits_from_separate_folders_without_checksums(tmp_path, write_split):
    train_images, train_labels = write_split(tmp_path / "train-subset", TRAIN_FILES, 12, seed=1)
    test_images, test_labels = write_split(tmp_path / "test", TEST_FILES, 8, seed=2)

    source = load_mnist(
        [tmp_path / "train-subset", tmp_path / "test"], tmp_path / "cache", allow_download=False
    )

    assert source.name == "mnist"
    assert (source.train.name, len(source.train)) == ("mnist/train", 12)
    assert (source.test.name, len(source.test)) == ("mnist/test", 8)
    np.testing.assert_array_equal(source.train.images, train_images)  # already canonical: untouched
    np.testing.assert_array_equal(source.test.images, test_images)
    np.testing.assert_array_equal(source.train.labels, train_labels)
    np.testing.assert_array_equal(source.test.labels, test_labels)
    assert source.train.labels.dtype == np.int64


def test_load_mnist_prefers_the_first_folder_holding_a_file(tmp_path, write_split):
    write_split(tmp_path / "first", TRAIN_FILES, 3)
    write_split(tmp_path / "second", TRAIN_FILES, 5)
    write_split(tmp_path / "second", TEST_FILES, 4)
    source = load_mnist([tmp_path / "first", tmp_path / "second"], tmp_path / "cache", allow_download=False)
    assert (len(source.train), len(source.test)) == (3, 4)


def test_load_mnist_offline_names_the_missing_files_and_the_folder_to_put_them_in(tmp_path, write_split):
    write_split(tmp_path / "given", TEST_FILES, 4)
    cache_dir = tmp_path / "cache" / "mnist"
    with pytest.raises(DatasetError) as caught:
        load_mnist([tmp_path / "given"], cache_dir, allow_download=False)
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz" in message
    assert "t10k" not in message.split(" are not in ")[0]
    assert f"Put these files in {cache_dir}" in message
    assert "--dataset mnist=PATH" in message


def test_load_mnist_reports_unreachable_mirrors_with_the_same_advice(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "MNIST_MIRROR_URLS", ((tmp_path / "no-mirror").as_uri() + "/",))
    with pytest.raises(
        DatasetError, match=r"MNIST files missing: train-images.*could not be fetched.*mnist=PATH"
    ):
        load_mnist([], tmp_path / "cache")


def test_load_mnist_downloads_missing_files_into_the_cache_with_checksums(tmp_path, write_split, monkeypatch):
    mirror = tmp_path / "mirror"
    write_split(mirror, TRAIN_FILES, 6)
    write_split(mirror, TEST_FILES, 2)
    checksums = {name: hashlib.sha256((mirror / name).read_bytes()).hexdigest() for name in MNIST_SHA256}
    monkeypatch.setattr(mnist, "MNIST_MIRROR_URLS", (mirror.as_uri() + "/",))
    monkeypatch.setattr(mnist, "MNIST_SHA256", checksums)
    cache_dir = tmp_path / "cache"

    source = load_mnist([], cache_dir)

    assert (len(source.train), len(source.test)) == (6, 2)
    assert sorted(path.name for path in cache_dir.iterdir()) == sorted(MNIST_SHA256)
    shutil.rmtree(mirror)  # a second load comes from the verified cache alone
    assert len(load_mnist([], cache_dir).train) == 6


def test_load_mnist_refuses_cached_file_with_wrong_checksum(tmp_path, write_split):
    cache_dir = tmp_path / "cache"
    write_split(cache_dir, TRAIN_FILES, 3)
    write_split(tmp_path / "given", TEST_FILES, 3)
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz: cached file has sha256"):
        load_mnist([tmp_path / "given"], cache_dir, allow_download=False)


def test_load_mnist_rejects_structurally_broken_user_file(tmp_path, write_split, write_idx):
    write_split(tmp_path / "given", TRAIN_FILES, 3)
    write_split(tmp_path / "given", TEST_FILES, 3)
    write_idx(tmp_path / "given" / TEST_FILES[1], np.zeros(2, dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"mnist/test: .* holds 3 images but .* holds 2 labels"):
        load_mnist([tmp_path / "given"], tmp_path / "cache", allow_download=False)


def test_load_mnist_reads_the_shared_data(shared_data_dir, tmp_path):
    source = load_mnist(
        [shared_data_dir / "mnist-train-10k", shared_data_dir / "mnist"],
        tmp_path / "cache",
        allow_download=False,
    )
    assert (len(source.train), len(source.test)) == (10000, 10000)
    assert source.train.images.dtype == np.uint8 and source.train.images.shape[1:] == (28, 28)
    assert set(np.unique(source.test.labels)) == set(range(10))
    # White ink on black: the border of an MNIST digit is background.
    assert source.test.images[:, 0, :].max() == 0 and source.test.images.max() == 255


def test_official_checksums_match_the_shared_test_files(shared_data_dir):
    for name in TEST_FILES:
        actual = hashlib.sha256((shared_data_dir / "mnist" / name).read_bytes()).hexdigest()
        assert actual == MNIST_SHA256[name]


def test_the_full_shared_training_set_is_read_and_recognized_as_the_official_content(
    shared_data_dir, tmp_path, caplog
):
    # The shared .gz files are re-compressed: their bytes differ from the official .gz, their content not.
    with caplog.at_level("INFO", logger="training.datasets.mnist"):
        source = load_mnist([shared_data_dir / "mnist"], tmp_path / "cache", allow_download=False)
    assert (len(source.train), len(source.test)) == (60000, 10000)
    for name in (*TRAIN_FILES, *TEST_FILES):
        assert f"{name}: the official MNIST content (uncompressed sha256 verified)" in caplog.text


def test_a_users_subset_is_used_and_said_not_to_be_the_official_file(tmp_path, write_split, caplog):
    write_split(tmp_path / "mine", TRAIN_FILES, 12)
    write_split(tmp_path / "mine", TEST_FILES, 8)
    with caplog.at_level("INFO", logger="training.datasets.mnist"):
        source = load_mnist([tmp_path / "mine"], tmp_path / "cache", allow_download=False)
    assert len(source.train) == 12
    assert caplog.text.count("not the official MNIST file (a subset or another copy)") == 4


def test_an_unpacked_official_file_is_recognized_as_well(shared_data_dir, tmp_path, caplog):
    import gzip

    folder = tmp_path / "unpacked"
    folder.mkdir()
    for name in TEST_FILES:
        (folder / name.removesuffix(".gz")).write_bytes(
            gzip.decompress((shared_data_dir / "mnist" / name).read_bytes())
        )
    for name in TRAIN_FILES:
        shutil.copy(shared_data_dir / "mnist-train-10k" / name, folder / name)
    with caplog.at_level("INFO", logger="training.datasets.mnist"):
        load_mnist([folder], tmp_path / "cache", allow_download=False)
    assert caplog.text.count("the official MNIST content") == 2  # the test files; the 10k subset is not
