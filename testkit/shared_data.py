"""Where the checkout and `../shared/data` are, and MNIST from there: images (N, 28, 28) uint8, labels int64.

The files are read with the training package's IDX reader (`training.datasets.idx`), so the tests and
the benchmark see exactly the arrays training sees, and a damaged file is reported by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.datasets.idx import read_idx_pair
from training.datasets.mnist import MNIST_SPLIT_FILES

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
MNIST_FOLDER = "mnist"
# 10k of the 60k MNIST training digits, under MNIST's own file names.
MNIST_TRAIN_10K_FOLDER = "mnist-train-10k"
MNIST_DIR = SHARED_DATA_DIR / MNIST_FOLDER
# `make train`'s datasets (the Makefile's TRAIN_DATASETS) as training.run flags: the validation split
# that chooses models follows them, their repeats and the seed (bench.read_validation writes numbers
# from it; tests/unit/training/test_make_train.py fails when the two drift apart).
RECIPE_DATASETS = [
    "--dataset", f"mnist={SHARED_DATA_DIR / 'mnist'}",
    "--dataset", f"usps={SHARED_DATA_DIR / 'usps' / 'usps.h5'}",
    "--dataset", f"cvl={SHARED_DATA_DIR / 'cvl'}",
    "--no-download", "--repeat", "cvl=3", "--static-copies", "1",
]  # fmt: skip


def read_mnist(folder: Path = MNIST_DIR, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """One split of MNIST from a folder holding its official IDX files.

    Args:
        folder: the folder, e.g. `MNIST_DIR` (both splits) or `mnist-train-10k/` ("train" only).
        split: "train" or "test".

    Returns:
        images (N, 28, 28) uint8 in [0, 255], white ink on black; labels (N,) int64 in 0..9.

    Raises:
        training.datasets.DatasetError: a file is missing, damaged or inconsistent with the other.
    """
    images_name, labels_name = MNIST_SPLIT_FILES[split]
    digits = read_idx_pair(folder / images_name, folder / labels_name, f"mnist/{split}")
    return digits.images, digits.labels
