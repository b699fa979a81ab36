"""USPS `usps.h5` (16x16 floats in [0, 1]) -> `DigitSource` "usps": images (N, 28, 28) uint8, labels int64.

USPS digits fill their whole 16x16 frame, whereas MNIST's sit in a 20x20 box centered by mass inside
28x28; they go through `canonicalize_digit`, the same routine the service applies to uploads, so the
model never learns two framings of a digit.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from digits.canonicalize import canonicalize_digit
from digits.errors import NoDigitFoundError
from training.datasets.digit_set import DatasetError, DigitSet, DigitSource

USPS_FILE_NAME = "usps.h5"
USPS_SIDE_PIXELS = 16
USPS_SOURCE_HINT = (
    "the common HDF5 packaging of USPS (groups train/ and test/, each with data (n, 256) floats in "
    "[0, 1] and target (n,) ints), e.g. the 'usps-dataset' on Kaggle"
)


def load_usps(path: Path) -> DigitSource:
    """`usps.h5`, or a folder holding it -> `DigitSource` "usps".

    Args:
        path: the HDF5 file, or a folder with `usps.h5` in it.

    Returns:
        `DigitSource` "usps" with "usps/train" (7291 for the full set) and "usps/test" (2007):
        images (N, 28, 28) uint8 in [0, 255], white ink on black, MNIST-normalized; labels (N,)
        int64 in 0..9.

    Raises:
        DatasetError: the file is missing or not HDF5, a key is missing, a shape or value range is
            wrong, or an image is blank; the message names the file.
    """
    path = Path(path)
    file_path = path / USPS_FILE_NAME if path.is_dir() else path
    if not file_path.is_file():
        raise DatasetError(f"USPS file {file_path} not found; put {USPS_SOURCE_HINT} there")
    try:
        with h5py.File(file_path, "r") as h5_file:
            splits = {split: _read_split(h5_file, split, file_path) for split in ("train", "test")}
    except OSError as error:
        raise DatasetError(
            f"{file_path}: cannot read it as HDF5 ({error}); expected {USPS_SOURCE_HINT}"
        ) from error
    return DigitSource(name="usps", train=splits["train"], test=splits["test"])


def _read_split(h5_file: h5py.File, split: str, file_path: Path) -> DigitSet:
    """One split's `data` (n, 256) and `target` (n,) -> canonical `DigitSet` "usps/<split>"."""
    data, target = (_read_dataset(h5_file, f"{split}/{key}", file_path) for key in ("data", "target"))
    _check_split(data, target, split, file_path)
    images = np.rint(data * 255.0).astype(np.uint8).reshape(-1, USPS_SIDE_PIXELS, USPS_SIDE_PIXELS)
    return DigitSet(
        name=f"usps/{split}",
        images=_canonicalize_all(images, f"{file_path}: '{split}/data'"),
        labels=target.astype(np.int64),
    )


def _read_dataset(h5_file: h5py.File, key: str, file_path: Path) -> np.ndarray:
    dataset = h5_file.get(key)
    if not isinstance(dataset, h5py.Dataset):
        raise DatasetError(f"{file_path}: key '{key}' is missing; expected {USPS_SOURCE_HINT}")
    return np.asarray(dataset[()])


def _check_split(data: np.ndarray, target: np.ndarray, split: str, file_path: Path) -> None:
    """Raises DatasetError unless data is (n, 256) numbers in [0, 1] and target (n,) integers in 0..9."""
    pixels_per_image = USPS_SIDE_PIXELS * USPS_SIDE_PIXELS
    if data.dtype.kind not in "fiu" or target.dtype.kind not in "iu":
        raise DatasetError(
            f"{file_path}: '{split}/data' is {data.dtype} and '{split}/target' {target.dtype}, "
            f"expected floats and integers"
        )
    if data.ndim != 2 or data.shape[1] != pixels_per_image or target.shape != (len(data),):
        raise DatasetError(
            f"{file_path}: '{split}/data' has shape {data.shape} and '{split}/target' {target.shape}, "
            f"expected (n, {pixels_per_image}) and (n,)"
        )
    if data.size and not (np.isfinite(data).all() and data.min() >= 0.0 and data.max() <= 1.0):
        raise DatasetError(f"{file_path}: '{split}/data' has values outside [0, 1]")
    if target.size and (target.min() < 0 or target.max() > 9):
        raise DatasetError(f"{file_path}: '{split}/target' has labels outside 0..9")


def _canonicalize_all(images: np.ndarray, description: str) -> np.ndarray:
    """(N, 16, 16) uint8 -> (N, 28, 28) uint8 through `canonicalize_digit`, one image at a time."""
    canonical = np.empty((len(images), 28, 28), dtype=np.uint8)
    for index, image in enumerate(images):
        try:
            canonical[index] = canonicalize_digit(image)
        except NoDigitFoundError as error:
            raise DatasetError(f"{description} image {index} is blank ({error})") from error
    return canonical
