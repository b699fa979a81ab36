"""MNIST's four IDX files -> `DigitSource` "mnist": images (N, 28, 28) uint8 white-on-black, labels int64.

Each file is looked for in the user's folders in order, then in the cache, then downloaded from the
mirrors with its official sha256. Files found in a user folder are not checksum-checked, since they may
be a legitimate subset (e.g. 10k of the 60k training digits), but they are validated structurally by
`read_idx`. MNIST is the reference normalization, so its images are used as stored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from training.datasets.digit_set import DatasetError, DigitSource
from training.datasets.download import DownloadError, fetch_file
from training.datasets.idx import find_idx_file, read_idx_pair

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
