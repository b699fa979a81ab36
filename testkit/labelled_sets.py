"""Labelled test sets -> the uploads a client sends and the canonical digits the model reads directly.

Each set holds, per image, the bytes `POST /predict` receives and the (28, 28) uint8 digit that the
model itself is scored on: MNIST and USPS are arrays, sent as PNGs of those arrays; a folder of files
(CVL test, or any `root/<digit>/` tree) is sent file by file, its original bytes, and scored by the
model as training reads it (`read_digit_file`), so a gap between the two is the HTTP path's own loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits.contract import CANVAS_SIZE_PIXELS
from testkit.images import encode_png
from testkit.shared_data import SHARED_DATA_DIR, read_mnist
from training.datasets.cvl import writer_of
from training.datasets.digit_set import DatasetError
from training.datasets.folder import list_labelled_files, read_digit_file
from training.datasets.usps import load_usps

SET_NAMES = ("mnist", "usps", "cvl")
FOLDER_SET_PREFIX = "folder="
USPS_PATH = SHARED_DATA_DIR / "usps" / "usps.h5"
CVL_TEST_DIR = SHARED_DATA_DIR / "cvl" / "test"


@dataclass(frozen=True)
class LabelledSet:
    """One test set, ready to send and to score.

    Attributes:
        name: "mnist", "usps", "cvl" or "folder=<path>".
        file_names: (N,) the name each upload declares.
        uploads: N file contents, sent as they are.
        labels: (N,) int64 in 0..9.
        model_images: (N, 28, 28) uint8 canonical digits the model is scored on; zeros where the file
            holds no readable digit (`has_model_image` False: the model is counted wrong there).
        has_model_image: (N,) bool.
        writers: (N,) str, who wrote each digit (CVL); None where the set does not say.
    """

    name: str
    file_names: list[str]
    uploads: list[bytes]
    labels: np.ndarray
    model_images: np.ndarray
    has_model_image: np.ndarray
    writers: np.ndarray | None = None


def check_set_name(name: str) -> str:
    """Returns `name` if it is one of SET_NAMES or "folder=PATH"; raises ValueError otherwise."""
    if name in SET_NAMES or (name.startswith(FOLDER_SET_PREFIX) and len(name) > len(FOLDER_SET_PREFIX)):
        return name
    raise ValueError(f"unknown set {name!r}: use one of {', '.join(SET_NAMES)} or {FOLDER_SET_PREFIX}PATH")


def load_labelled_set(name: str, limit: int) -> LabelledSet:
    """The set `name` (see `check_set_name`), at most `limit` images of it.

    MNIST and USPS keep their first `limit` images; a folder keeps `limit` files evenly spaced over its
    sorted list, so that every digit folder is represented.

    Raises:
        DatasetError: the set's files are missing or unreadable, or a folder is not a digit tree.
    """
    if name == "mnist":
        images, labels = read_mnist()
        return array_set(name, images[:limit], labels[:limit])
    if name == "usps":
        test = load_usps(USPS_PATH).test
        return array_set(name, test.images[:limit], test.labels[:limit])
    if name == "cvl":
        return folder_set(name, CVL_TEST_DIR, limit, is_cvl=True)
    return folder_set(name, Path(name.removeprefix(FOLDER_SET_PREFIX)), limit, is_cvl=False)


def array_set(name: str, images: np.ndarray, labels: np.ndarray) -> LabelledSet:
    """(N, 28, 28) uint8 digits -> a set sent as PNGs of them and scored on them as they are."""
    return LabelledSet(
        name=name,
        file_names=[f"{name}-{index}.png" for index in range(len(images))],
        uploads=[encode_png(image) for image in images],
        labels=np.asarray(labels, dtype=np.int64),
        model_images=images,
        has_model_image=np.ones(len(images), dtype=bool),
    )


def folder_set(name: str, root: Path, limit: int, is_cvl: bool) -> LabelledSet:
    """`root/<digit>/` image files -> a set sent as the files' bytes, scored as training reads them."""
    if not root.is_dir():
        raise DatasetError(f"{name}: {root} is not a folder of digit folders 0..9")
    files = list_labelled_files(root, name)
    if limit < len(files):
        files = [files[index] for index in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    model_images = np.zeros((len(files), CANVAS_SIZE_PIXELS, CANVAS_SIZE_PIXELS), dtype=np.uint8)
    has_model_image = np.zeros(len(files), dtype=bool)
    for index, (path, _) in enumerate(files):
        try:
            model_images[index] = read_digit_file(path)
            has_model_image[index] = True
        except DatasetError:
            pass  # the service answers such a file with an error too; both count it as wrong
    return LabelledSet(
        name=name,
        file_names=[path.name for path, _ in files],
        uploads=[path.read_bytes() for path, _ in files],
        labels=np.array([label for _, label in files], dtype=np.int64),
        model_images=model_images,
        has_model_image=has_model_image,
        writers=np.array([writer_of(path) for path, _ in files], dtype=str) if is_cvl else None,
    )


def worst_writers(writers: np.ndarray, is_correct: np.ndarray, count: int) -> list[dict]:
    """The `count` writers with the lowest accuracy (ties by writer ID): writer, images, accuracy %."""
    rows = [
        {
            "writer": str(writer),
            "images": int((writers == writer).sum()),
            "accuracy_percent": round(float(is_correct[writers == writer].mean() * 100), 2),
        }
        for writer in np.unique(writers)
    ]
    return sorted(rows, key=lambda row: (row["accuracy_percent"], row["writer"]))[:count]
