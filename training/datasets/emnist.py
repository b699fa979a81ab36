"""EMNIST Digits IDX files -> `DigitSource` "emnist-digits": images (N, 28, 28) uint8, MNIST-oriented.

EMNIST stores each image transposed (rows are columns) relative to MNIST, because it was exported
from a column-major array; transposing back is all it needs, since its digits were normalized with
MNIST's own recipe. There is no small official download (the files ship inside a 500+ MB archive),
so the files must be in a local folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.datasets.digit_set import DatasetError, DigitSet, DigitSource
from training.datasets.idx import find_idx_file, read_idx_pair

EMNIST_PAGE_URL = "https://www.nist.gov/itl/products-and-services/emnist-dataset"
EMNIST_SPLIT_FILES = {
    "train": ("emnist-digits-train-images-idx3-ubyte.gz", "emnist-digits-train-labels-idx1-ubyte.gz"),
    "test": ("emnist-digits-test-images-idx3-ubyte.gz", "emnist-digits-test-labels-idx1-ubyte.gz"),
}


def load_emnist_digits(paths: Sequence[Path]) -> DigitSource:
    """Folders holding the four EMNIST Digits files -> `DigitSource` "emnist-digits".

    Args:
        paths: folders searched in order for each file (gzip or unpacked).

    Returns:
        `DigitSource` "emnist-digits" with "emnist-digits/train" (240000 for the full set) and
        "emnist-digits/test" (40000): images (N, 28, 28) uint8 white ink on black in MNIST's
        orientation, labels (N,) int64 in 0..9.

    Raises:
        DatasetError: a file is missing (the message names the files, the folders and where to get
            them) or invalid (see `read_idx`).
    """
    file_names = [name for pair in EMNIST_SPLIT_FILES.values() for name in pair]
    located = {name: find_idx_file(name, paths) for name in file_names}
    missing = [name for name, path in located.items() if path is None]
    if missing:
        searched = ", ".join(str(path) for path in paths) or "(no folder given)"
        raise DatasetError(
            f"EMNIST Digits files missing: {', '.join(missing)} not found in {searched}. Download the "
            f"'gzip' archive from {EMNIST_PAGE_URL}, put the emnist-digits-* files in one folder and "
            f"pass --dataset emnist-digits=PATH."
        )
    splits = {}
    for split, (images_name, labels_name) in EMNIST_SPLIT_FILES.items():
        stored = read_idx_pair(located[images_name], located[labels_name], f"emnist-digits/{split}")
        splits[split] = transpose_to_mnist_orientation(stored)
    return DigitSource(name="emnist-digits", train=splits["train"], test=splits["test"])


def transpose_to_mnist_orientation(digits: DigitSet) -> DigitSet:
    """`DigitSet` as stored by EMNIST (N, 28, 28) -> the same digits with rows and columns swapped."""
    images = np.ascontiguousarray(digits.images.transpose(0, 2, 1))
    return DigitSet(name=digits.name, images=images, labels=digits.labels)
