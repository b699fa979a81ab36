"""A `--dataset` argument ("NAME" or "NAME=PATH[:PATH...]") -> `DatasetSpec` -> loaded `DigitSource`.

The one place that knows every dataset name and its default location under the cache folder, so the
CLI, the config and the model card all speak of datasets by the same names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from training.datasets.cvl import load_cvl
from training.datasets.digit_set import DatasetError, DigitSet, DigitSource
from training.datasets.emnist import load_emnist_digits
from training.datasets.folder import load_folder
from training.datasets.mnist import load_mnist
from training.datasets.usps import USPS_FILE_NAME, load_usps

if TYPE_CHECKING:
    from training.config import TrainConfig

DATASET_NAMES = ("mnist", "emnist-digits", "usps", "cvl", "folder")
# Datasets read from one file or tree; the others search several folders in order.
SINGLE_PATH_DATASET_NAMES = ("usps", "cvl", "folder")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset by name, with the user's paths (empty: the default location in the cache folder)."""

    name: str
    paths: tuple[Path, ...] = ()

    def __str__(self) -> str:
        if not self.paths:
            return self.name
        return f"{self.name}={os.pathsep.join(str(path) for path in self.paths)}"


def parse_dataset_spec(spec: str) -> DatasetSpec:
    """A spec, "NAME" or "NAME=PATH[<os.pathsep>PATH...]" -> `DatasetSpec` (paths with "~" expanded).

    Raises:
        DatasetError: the name is not one of `DATASET_NAMES` (the message lists them), a path is
            empty, or the dataset's path count is wrong ("folder" needs one, "usps" takes at most one).
    """
    name, has_paths, path_text = spec.strip().partition("=")
    name = name.strip()
    if name not in DATASET_NAMES:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    path_texts = path_text.split(os.pathsep) if has_paths else []
    if any(not text.strip() for text in path_texts):
        raise DatasetError(f"dataset spec {spec!r} has an empty path; use NAME or NAME=PATH{os.pathsep}PATH")
    parsed = DatasetSpec(name=name, paths=tuple(Path(text.strip()).expanduser() for text in path_texts))
    _check_path_count(parsed)
    return parsed


def _check_path_count(spec: DatasetSpec) -> None:
    if spec.name == "folder" and not spec.paths:
        raise DatasetError("dataset 'folder' needs a path: --dataset folder=PATH (digit folders 0..9 in it)")
    if spec.name in SINGLE_PATH_DATASET_NAMES and len(spec.paths) > 1:
        raise DatasetError(f"dataset {spec.name!r} takes one path, got {len(spec.paths)}: {spec}")


def load_source(spec: DatasetSpec, cache_dir: Path, *, allow_download: bool = True) -> DigitSource:
    """`DatasetSpec` + cache folder -> the loaded `DigitSource` (images (N, 28, 28) uint8, labels int64).

    Without paths, each dataset is looked for at its default location: `cache_dir/mnist` (downloaded
    there if missing), `cache_dir/emnist-digits`, `cache_dir/usps/usps.h5`, `cache_dir/cvl`.

    Raises:
        DatasetError: a given path does not exist, the spec is invalid, or the loader fails.
    """
    _check_path_count(spec)
    missing = [str(path) for path in spec.paths if not path.exists()]
    if missing:
        raise DatasetError(f"dataset {spec.name!r}: {', '.join(missing)} does not exist")
    cache_dir = Path(cache_dir)
    if spec.name == "mnist":
        return load_mnist(spec.paths, cache_dir / "mnist", allow_download=allow_download)
    if spec.name == "emnist-digits":
        return load_emnist_digits(spec.paths or (cache_dir / "emnist-digits",))
    if spec.name == "usps":
        return load_usps(spec.paths[0] if spec.paths else cache_dir / "usps" / USPS_FILE_NAME)
    if spec.name == "cvl":
        return load_cvl(spec.paths[0] if spec.paths else cache_dir / "cvl")
    if spec.name == "folder":
        return load_folder(spec.paths[0])
    raise DatasetError(f"unknown dataset {spec.name!r}; valid names: {', '.join(DATASET_NAMES)}")


def load_sources(
    specs: Sequence[str], cache_dir: Path, *, allow_download: bool, keep_per_split: int | None = None
) -> list[DigitSource]:
    """`--dataset` arguments -> their loaded sources; `keep_per_split` (a smoke test) cuts each split to
    its first images."""
    sources = [
        load_source(parse_dataset_spec(spec), cache_dir, allow_download=allow_download) for spec in specs
    ]
    if keep_per_split is None:
        return sources
    return [
        replace(source, train=_head(source.train, keep_per_split), test=_head(source.test, keep_per_split))
        for source in sources
    ]


def load_configured_sources(config: TrainConfig) -> list[DigitSource]:
    """A run's `--dataset` arguments -> its sources; with --quick, each split cut to a few hundred."""
    keep = config.quick_samples_per_split if config.quick else None
    return load_sources(
        config.datasets, config.cache_dir, allow_download=config.allow_download, keep_per_split=keep
    )


def _head(digits: DigitSet | None, count: int) -> DigitSet | None:
    return None if digits is None else DigitSet(digits.name, digits.images[:count], digits.labels[:count])
