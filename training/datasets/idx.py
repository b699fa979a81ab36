"""IDX file (gzip or plain) -> np.ndarray uint8 of the shape its header declares; pairs -> `DigitSet`.

IDX is the format of MNIST and EMNIST: two zero bytes, a dtype code (0x08 = unsigned byte), the number
of dimensions, one big-endian uint32 per dimension, then the values in C order. Every way a file can be
wrong (not gzip after all, a foreign header, a short or long payload) becomes a `DatasetError` that names
the file, so a bad download is reported where it happened rather than as a reshape error in training.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from digits.contract import IMAGE_SHAPE, NUM_CLASSES
from training.datasets.digit_set import DatasetError, DigitSet

GZIP_MAGIC = b"\x1f\x8b"
UNSIGNED_BYTE_TYPE_CODE = 0x08
MAX_DIMENSIONS = 4
# A corrupt header can claim terabytes; refuse before allocating (full MNIST train is 47 MB).
MAX_PAYLOAD_BYTES = 2**32


def read_idx(path: Path) -> np.ndarray:
    """IDX file (gzip-compressed or plain, detected by its magic bytes) -> uint8 array.

    Args:
        path: the file.

    Returns:
        uint8 array of the shape in the header, e.g. (N, 28, 28) for images, (N,) for labels.

    Raises:
        DatasetError: unreadable file, corrupt gzip stream, wrong magic or dtype code, an absurd
            dimension count, or a payload shorter or longer than the header declares.
    """
    path = Path(path)
    try:
        with path.open("rb") as raw_stream:
            is_gzip = raw_stream.read(2) == GZIP_MAGIC
        opener = gzip.open if is_gzip else open
        with opener(path, "rb") as stream:
            return _read_idx_stream(stream, path)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DatasetError(
            f"{path}: corrupt gzip stream ({error}); delete the file and fetch it again"
        ) from error
    except OSError as error:
        raise DatasetError(f"{path}: cannot read the file ({error})") from error


def _read_idx_stream(stream: BinaryIO, path: Path) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (magic bytes {magic.hex()!r}, expected 0000 08 nn)")
    if magic[2] != UNSIGNED_BYTE_TYPE_CODE:
        raise DatasetError(
            f"{path}: IDX dtype code 0x{magic[2]:02x} is not supported, digit data must be unsigned "
            f"bytes (0x{UNSIGNED_BYTE_TYPE_CODE:02x})"
        )
    dimensions = magic[3]
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        raise DatasetError(
            f"{path}: IDX header declares {dimensions} dimensions, expected 1..{MAX_DIMENSIONS}"
        )
    header = stream.read(4 * dimensions)
    if len(header) < 4 * dimensions:
        raise DatasetError(f"{path}: truncated IDX header ({len(header)} of {4 * dimensions} size bytes)")
    shape = tuple(int.from_bytes(header[4 * i : 4 * i + 4], "big") for i in range(dimensions))
    expected_bytes = int(np.prod(shape, dtype=np.int64))
    if expected_bytes > MAX_PAYLOAD_BYTES:
        raise DatasetError(f"{path}: IDX header declares shape {shape}, over {MAX_PAYLOAD_BYTES} bytes")
    payload = stream.read(expected_bytes)
    if len(payload) != expected_bytes:
        raise DatasetError(
            f"{path}: truncated IDX payload: header shape {shape} needs {expected_bytes} bytes, "
            f"the file holds {len(payload)}"
        )
    if stream.read(1):
        raise DatasetError(f"{path}: IDX file has data after the {expected_bytes} bytes of shape {shape}")
    # A copy, because an array over immutable bytes is read-only and in-place augmentation would fail.
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape).copy()


def read_idx_pair(images_path: Path, labels_path: Path, name: str) -> DigitSet:
    """An IDX images file and its IDX labels file -> `DigitSet`.

    Args:
        images_path: IDX file of shape (N, 28, 28).
        labels_path: IDX file of shape (N,), values 0..9.
        name: the set's name, e.g. "mnist/train".

    Returns:
        `DigitSet` with images (N, 28, 28) uint8 as stored and labels (N,) int64.

    Raises:
        DatasetError: either file is invalid (see `read_idx`), the shapes are not those of digits,
            the counts differ, or a label is outside 0..9.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE[:2]:
        raise DatasetError(f"{name}: {images_path} holds shape {images.shape}, expected (N, 28, 28) images")
    if labels.ndim != 1:
        raise DatasetError(f"{name}: {labels_path} holds shape {labels.shape}, expected (N,) labels")
    if len(images) != len(labels):
        raise DatasetError(
            f"{name}: {images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DatasetError(f"{name}: {labels_path} holds label {labels.max()}, expected digits 0..9")
    return DigitSet(name=name, images=images, labels=labels.astype(np.int64))


def find_idx_file(filename: str, folders: Sequence[Path]) -> Path | None:
    """A file name such as "t10k-images-idx3-ubyte.gz" -> its first match in `folders`, or None.

    The uncompressed name (without ".gz") is accepted too, since users often unpack the archives;
    `read_idx` reads either.
    """
    names = [filename] if not filename.endswith(".gz") else [filename, filename.removesuffix(".gz")]
    for folder in folders:
        for candidate_name in names:
            candidate = Path(folder) / candidate_name
            if candidate.is_file():
                return candidate
    return None
