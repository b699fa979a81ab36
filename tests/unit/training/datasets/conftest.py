"""Fixture writers for the loader tests: tiny IDX files and digit arrays made on the spot."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def encode_idx(array: np.ndarray) -> bytes:
    """uint8 array -> IDX bytes: magic 00 00 08 <ndim>, big-endian uint32 sizes, C-order values."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


@pytest.fixture
def write_idx() -> Callable[..., Path]:
    """Returns write(path, array, *, is_gzip=True) -> path, writing `array` as an IDX file."""

    def write(path: Path, array: np.ndarray, *, is_gzip: bool = True) -> Path:
        payload = encode_idx(array)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(payload) if is_gzip else payload)
        return path

    return write


@pytest.fixture
def make_digits() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """Returns make(count, seed=0) -> (images (count, 28, 28) uint8, labels (count,) uint8 cycling 0..9)."""

    def make(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        return images, labels

    return make
