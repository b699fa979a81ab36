"""Fixtures shared by every layer of the test pyramid."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as stream:
        raw = stream.read()
    dimensions = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dimensions).reshape(shape)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """`../shared/data`: MNIST test, 10k of MNIST train, USPS (read-only, never copied)."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.fail(f"the shared data folder {SHARED_DATA_DIR} is missing; tests need it (see README)")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def mnist_test_samples(shared_data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test set: images (10000, 28, 28) uint8 white-on-black and labels (10000,) uint8."""
    images = _read_idx(shared_data_dir / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = _read_idx(shared_data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")
    return images, labels
