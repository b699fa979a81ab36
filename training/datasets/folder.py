"""A folder of labelled image files -> `DigitSource`: images (N, 28, 28) uint8 white-on-black, labels int64.

Layouts: `root/<digit>/**/*.png` (everything is training data), or `root/train/<digit>/...` with an
optional `root/test/<digit>/...` for an explicit held-out split. Each file goes through the service's
own `prepare_digit` (decode and preprocess), so training sees exactly what the API would feed the model
for that upload (photos, scans, dark-on-light or light-on-dark alike). Files are read in sorted order,
so the same tree always gives the same arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from app.pipeline.image_header import DecodeLimits
from app.pipeline.prepare import prepare_digit
from digits.errors import DigitServeError
from training.datasets.digit_set import DatasetError, DigitSet, DigitSource

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SPLIT_FOLDER_NAMES = ("train", "test")
DIGIT_FOLDER_NAMES = tuple(str(digit) for digit in range(10))
MAX_REPORTED_FAILURES = 10
WriterRule = Callable[[Path], str]  # an image file's path -> who wrote it


def load_folder(root: Path, name: str = "folder") -> DigitSource:
    """`root` with digit folders 0..9 (or train/ and test/ holding them) -> `DigitSource` `name`.

    Args:
        root: the tree's top folder.
        name: the source's name; its sets are "<name>/train" and "<name>/test".

    Returns:
        `DigitSource` with `train` and, for the split layout with a test/ folder, `test` (else None):
        images (N, 28, 28) uint8 in [0, 255], white ink on black, MNIST-normalized; labels (N,) int64.

    Raises:
        DatasetError: `root` is not a folder, a folder is not named 0..9 (or train/test), the tree
            holds no image, or files cannot be read, decoded or hold no digit (each file named).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{name}: {root} is not a folder of digit images")
    subfolders = _visible_subfolders(root)
    if any(folder.name in SPLIT_FOLDER_NAMES for folder in subfolders):
        unexpected = [folder.name for folder in subfolders if folder.name not in SPLIT_FOLDER_NAMES]
        if unexpected or not (root / "train").is_dir():
            raise DatasetError(
                f"{name}: {root} mixes split folders with {unexpected or 'no train/'}; use either digit "
                f"folders 0..9 or train/ (and test/) holding digit folders"
            )
        test_root = root / "test"
        test = load_digit_tree(test_root, f"{name}/test") if test_root.is_dir() else None
        return DigitSource(name=name, train=load_digit_tree(root / "train", f"{name}/train"), test=test)
    return DigitSource(name=name, train=load_digit_tree(root, f"{name}/train"), test=None)


def _visible_subfolders(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith("."))


def load_digit_tree(root: Path, set_name: str, writer_of: WriterRule | None = None) -> DigitSet:
    """`root/<digit>/**/<image>` -> `DigitSet` `set_name`, files in sorted order, each file's path
    (as given under `root`) kept in `origins`.

    `writer_of` reads a file's writer from its path (raising DatasetError if it cannot); None: the
    set has no writers.
    """
    files = list_labelled_files(root, set_name)
    images, writers, failures = [], [], []
    for path, _ in files:
        try:
            if writer_of is not None:
                writers.append(writer_of(path))
            images.append(read_digit_file(path))
        except DatasetError as error:
            failures.append(str(error))
    if failures:
        shown = "; ".join(failures[:MAX_REPORTED_FAILURES])
        hidden_count = len(failures) - MAX_REPORTED_FAILURES
        more = f" (and {hidden_count} more)" if hidden_count > 0 else ""
        raise DatasetError(f"{set_name}: {len(failures)} of {len(files)} files unusable: {shown}{more}")
    labels = np.array([label for _, label in files], dtype=np.int64)
    writer_ids = np.array(writers, dtype=str) if writer_of is not None else None
    origins = np.array([str(path) for path, _ in files], dtype=str)
    return DigitSet(set_name, np.stack(images), labels, writers=writer_ids, origins=origins)


def list_labelled_files(root: Path, set_name: str) -> list[tuple[Path, int]]:
    """`root` -> sorted (image path, digit) pairs from its digit folders; hidden files are skipped."""
    digit_folders = _visible_subfolders(root)
    bad_names = [folder.name for folder in digit_folders if folder.name not in DIGIT_FOLDER_NAMES]
    if bad_names:
        raise DatasetError(
            f"{set_name}: folders {', '.join(bad_names)} in {root} are not digits; each folder must be "
            f"named 0..9 after the digit its images show"
        )
    files_per_folder = {
        folder: [
            path
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
        ]
        for folder in digit_folders
    }
    if not any(files_per_folder.values()):
        raise DatasetError(
            f"{set_name}: no images in {root}; expected files ({', '.join(sorted(IMAGE_SUFFIXES))}) in "
            f"folders named 0..9"
        )
    empty = [str(folder) for folder, paths in files_per_folder.items() if not paths]
    if empty:
        # Most likely a copy that went wrong: training on nine digits would go unnoticed until serving.
        raise DatasetError(
            f"{set_name}: digit folder {', '.join(empty)} holds no image "
            f"({', '.join(sorted(IMAGE_SUFFIXES))}); remove it or fill it"
        )
    return [(path, int(folder.name)) for folder, paths in files_per_folder.items() for path in paths]


def read_digit_file(path: Path) -> np.ndarray:
    """An image file -> (28, 28) uint8 canonical digit, exactly as the service preprocesses an upload.

    Raises:
        DatasetError: the file cannot be read, is not a decodable image of a supported type and size,
            or holds no digit; the message names the file and the reason.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"{path}: unreadable file ({error.strerror or error})") from error
    try:
        return prepare_digit(data, DecodeLimits()).canonical
    except DigitServeError as error:
        raise DatasetError(f"{path}: {error.code.replace('_', ' ')} ({error.detail})") from error
