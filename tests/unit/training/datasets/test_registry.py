"""parse_dataset_spec reads --dataset arguments; load_source sends each spec to its loader."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from training.datasets.digit_set import DatasetError
from training.datasets.registry import DATASET_NAMES, DatasetSpec, load_source, parse_dataset_spec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", DATASET_NAMES[:3])
def test_parse_dataset_spec_accepts_a_bare_name(name):
    assert parse_dataset_spec(f" {name} ") == DatasetSpec(name=name, paths=())


def test_parse_dataset_spec_splits_paths_on_the_os_path_separator(tmp_path):
    spec = parse_dataset_spec(f"mnist={tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    assert spec == DatasetSpec("mnist", (tmp_path / "a", tmp_path / "b"))
    assert str(spec) == f"mnist={tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"


def test_parse_dataset_spec_expands_the_home_folder():
    assert parse_dataset_spec("folder=~/digits").paths == (Path.home() / "digits",)


def test_parse_dataset_spec_rejects_an_unknown_name_listing_the_valid_ones():
    with pytest.raises(
        DatasetError, match=r"unknown dataset 'kmnist'; valid names: mnist, emnist-digits, usps, cvl, folder"
    ):
        parse_dataset_spec("kmnist=/data")


@pytest.mark.parametrize("spec", ["mnist=", f"mnist=/a{os.pathsep}{os.pathsep}/b"])
def test_parse_dataset_spec_rejects_empty_paths(spec):
    with pytest.raises(DatasetError, match="has an empty path"):
        parse_dataset_spec(spec)


def test_parse_dataset_spec_requires_a_path_for_folder():
    with pytest.raises(DatasetError, match=r"'folder' needs a path"):
        parse_dataset_spec("folder")


def test_parse_dataset_spec_rejects_several_paths_for_usps():
    with pytest.raises(DatasetError, match=r"'usps' takes one path, got 2"):
        parse_dataset_spec(f"usps=/a.h5{os.pathsep}/b.h5")


def test_load_source_rejects_a_path_that_does_not_exist(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset 'mnist': .*typo does not exist"):
        load_source(DatasetSpec("mnist", (tmp_path / "typo",)), tmp_path / "cache")


def test_load_source_reads_mnist_from_given_folders(shared_data_dir, tmp_path):
    spec = parse_dataset_spec(
        f"mnist={shared_data_dir / 'mnist-train-10k'}{os.pathsep}{shared_data_dir / 'mnist'}"
    )
    source = load_source(spec, tmp_path / "cache", allow_download=False)
    assert (source.name, len(source.train), len(source.test)) == ("mnist", 10000, 10000)


def test_load_source_looks_in_the_cache_folder_by_default(tmp_path):
    with pytest.raises(DatasetError, match=rf"Put these files in {tmp_path / 'cache' / 'mnist'}"):
        load_source(parse_dataset_spec("mnist"), tmp_path / "cache", allow_download=False)
    with pytest.raises(DatasetError, match=rf"not found in {tmp_path / 'cache' / 'emnist-digits'}"):
        load_source(parse_dataset_spec("emnist-digits"), tmp_path / "cache")
    with pytest.raises(DatasetError, match=rf"USPS file {tmp_path / 'cache' / 'usps' / 'usps.h5'} not found"):
        load_source(parse_dataset_spec("usps"), tmp_path / "cache")


def test_load_source_reads_usps_from_the_default_location(shared_data_dir, tmp_path):
    (tmp_path / "usps").mkdir()
    (tmp_path / "usps" / "usps.h5").symlink_to(shared_data_dir / "usps" / "usps.h5")
    source = load_source(parse_dataset_spec("usps"), tmp_path)
    assert (source.name, len(source.train), len(source.test)) == ("usps", 7291, 2007)


def test_load_source_reads_a_folder_tree(tmp_path):
    import cv2

    image = np.full((40, 30), 255, dtype=np.uint8)
    cv2.line(image, (15, 5), (15, 35), 0, 4)
    (tmp_path / "digits" / "1").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "digits" / "1" / "one.png"), image)
    source = load_source(parse_dataset_spec(f"folder={tmp_path / 'digits'}"), tmp_path / "cache")
    assert (source.name, len(source.train), source.test) == ("folder", 1, None)
    assert source.train.labels.tolist() == [1]


def test_load_source_requires_a_path_for_a_folder_spec_built_directly(tmp_path):
    with pytest.raises(DatasetError, match=r"'folder' needs a path"):
        load_source(DatasetSpec("folder"), tmp_path)
