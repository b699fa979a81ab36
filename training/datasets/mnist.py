"""MNIST's four IDX files -> `DigitSource` "mnist": images (N, 28, 28) uint8 white-on-black, labels int64.

Each file is looked for in the user's folders in order, then in the cache, then downloaded from the
mirrors with its official sha256. Files found in a user folder are not refused on their checksum, since
they may be a legitimate subset (e.g. 10k of the 60k training digits) or re-compressed copies (the
`.gz` bytes differ while the content is the official one): their *uncompressed* content is compared
with the official uncompressed sha256 and the log says which files are the official ones. Every file
is validated structurally by `read_idx`. MNIST is the reference normalization: images used as stored.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

from training.datasets.digit_set import DatasetError, DigitSource
from training.datasets.download import DownloadError, fetch_file
from training.datasets.idx import find_idx_file, read_idx_pair

logger = logging.getLogger(__name__)

MNIST_MIRROR_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
# sha256 of the official files' uncompressed bytes (the same for a re-compressed or unpacked copy).
MNIST_UNCOMPRESSED_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def load_mnist(paths: Sequence[Path], cache_dir: Path, *, allow_download: bool = True) -> DigitSource:
    """Folders holding MNIST files (any subset) + the cache folder -> `DigitSource` "mnist".

    Args:
        paths: folders searched in order for each official file name (or its unpacked name).
        cache_dir: folder where verified downloads are kept, e.g. `~/.cache/digitserve/mnist`.
        allow_download: False to fail instead of downloading what is not found.

    Returns:
        `DigitSource` named "mnist" with sets "mnist/train" (60000 for the full set) and "mnist/test"
        (10000): images (N, 28, 28) uint8 in [0, 255], white ink on black; labels (N,) int64 in 0..9.

    Raises:
        DatasetError: a file is corrupt, inconsistent or has the wrong checksum in the cache, or some
            files are nowhere and cannot be downloaded (the message lists them and where to put them).
    """
    located = _locate_files(paths, cache_dir, allow_download=allow_download)
    splits = {
        split: read_idx_pair(located[images_name], located[labels_name], f"mnist/{split}")
        for split, (images_name, labels_name) in MNIST_SPLIT_FILES.items()
    }
    return DigitSource(name="mnist", train=splits["train"], test=splits["test"])


def _locate_files(paths: Sequence[Path], cache_dir: Path, *, allow_download: bool) -> dict[str, Path]:
    """Maps each official file name to a local path: user folders first, then the cache or a download."""
    located: dict[str, Path] = {}
    for filename in MNIST_SHA256:
        found = find_idx_file(filename, paths)
        if found is not None:
            located[filename] = found
            _log_whether_official(filename, found)
    for filename, sha256 in MNIST_SHA256.items():
        if filename in located:
            continue
        urls = [mirror + filename for mirror in MNIST_MIRROR_URLS]
        try:
            located[filename] = fetch_file(filename, urls, sha256, cache_dir, allow_download=allow_download)
        except DownloadError as error:
            # Stop at the first failure: offline, each further file would only wait for its timeout.
            missing = [name for name in MNIST_SHA256 if name not in located]
            raise DatasetError(_missing_files_message(missing, paths, cache_dir, error)) from error
    return located


def uncompressed_sha256(path: Path) -> str:
    """An IDX file, gzip-compressed or not -> the sha256 of its uncompressed bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _log_whether_official(filename: str, path: Path) -> None:
    """Logs whether a user's file holds the official content (any compression) or something else."""
    try:
        is_official = uncompressed_sha256(path) == MNIST_UNCOMPRESSED_SHA256[filename]
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        return  # unreadable: read_idx names the file and the fault
    if is_official:
        logger.info("%s: the official MNIST content (uncompressed sha256 verified)", path)
    else:
        logger.warning("%s: not the official MNIST file (a subset or another copy); used as it is", path)


def _missing_files_message(
    missing: Sequence[str], paths: Sequence[Path], cache_dir: Path, error: DownloadError
) -> str:
    searched = ", ".join(str(path) for path in [*paths, cache_dir])
    return (
        f"MNIST files missing: {', '.join(missing)} are not in {searched} and could not be fetched "
        f"({error}). Put these files in {cache_dir} (they are checked against the official sha256), "
        f"or in a folder of your own and pass --dataset mnist=PATH (several folders: "
        f"mnist=PATH1{os.pathsep}PATH2)."
    )
