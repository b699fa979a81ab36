"""The CVL single-digit tree -> `DigitSource` "cvl": canonical digits, labels, and who wrote each one.

CVL (Diem et al., ICDAR 2013 Competition on Handwritten Digit Recognition) is handwriting of students
of the Vienna University of Technology: `root/<split>/<digit>/<writer>-<a>-<b>.png`, split `train`
and `test` (the competition's training and validation splits: no writer is in both), dark ink on
light paper. Like a `folder` dataset, each file goes through the service's own decode and
preprocess, so training sees what an upload of that scan would give the model. Writer IDs are kept:
they make the validation split writer-disjoint (`combine.split_train_validation`), so that every
choice is made on writers the model has not seen, as the test set's are.

CVL is "freely available" from the TU Wien Computer Vision Lab with no download URL a loader could
check: it is read from a folder only.
"""

from __future__ import annotations

import re
from pathlib import Path

from training.datasets.digit_set import DatasetError, DigitSource
from training.datasets.folder import load_digit_tree

CVL_SPLIT_NAMES = ("train", "test")
# "<writer>-<a>-<b>.<ext>" (a few files of the shared copy carry a fourth part, "0227-08-01-01.png"):
# the writer ID is what comes before the first hyphen.
_FILE_NAME = re.compile(r"^(?P<writer>[A-Za-z0-9]+)(-\d+){2,}$")
CITATION = "Diem et al., ICDAR 2013 Competition on Handwritten Digit Recognition (CVL single digits)"


def writer_of(path: Path) -> str:
    """A CVL file's path -> its writer ID ("0169" for `0169-01-07.png` and `0169-01-07-02.png`).

    Raises:
        DatasetError: the file name is not `<writer>-<a>-<b>[-<c>...].<ext>` (the file named).
    """
    match = _FILE_NAME.match(path.stem)
    if match is None:
        raise DatasetError(
            f"{path}: a CVL file name must be <writer>-<number>-<number>[-<number>...] (e.g. "
            "0169-01-07.png), the writer ID first"
        )
    return match["writer"]


def load_cvl(root: Path) -> DigitSource:
    """`root` with train/ and test/, each holding digit folders 0..9 -> `DigitSource` "cvl".

    Returns:
        `DigitSource` with sets "cvl/train" and "cvl/test" (None if `root` has no test/): images
        (N, 28, 28) uint8 white on black, MNIST-normalized; labels (N,) int64; writers (N,) str.

    Raises:
        DatasetError: `root` or its train/ is missing, a folder is not a digit, a folder holds no
            image, a file is unreadable, holds no digit or has no writer ID in its name (each named).
    """
    root = Path(root)
    if not (root / "train").is_dir():
        raise DatasetError(
            f"cvl: {root / 'train'} is not a folder; expected the CVL single-digit tree "
            f"<root>/train/<digit>/<writer>-<a>-<b>.png (and <root>/test/...)"
        )
    sets = {
        split: load_digit_tree(root / split, f"cvl/{split}", writer_of)
        for split in CVL_SPLIT_NAMES
        if (root / split).is_dir()
    }
    return DigitSource(name="cvl", train=sets["train"], test=sets.get("test"))
