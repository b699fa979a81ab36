"""Fixtures shared by every layer of the test pyramid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from testkit.shared_data import MNIST_FOLDER, SHARED_DATA_DIR, read_mnist


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """`../shared/data`: MNIST test, 10k of MNIST train, USPS (read-only, never copied)."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.fail(f"the shared data folder {SHARED_DATA_DIR} is missing; tests need it (see README)")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def mnist_test_samples(shared_data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test set: images (10000, 28, 28) uint8 white-on-black and labels (10000,) int64."""
    return read_mnist(shared_data_dir / MNIST_FOLDER, "test")


LAYER_MARKERS = frozenset({"unit", "integration", "e2e"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuses a test that belongs to no layer of the pyramid: `-m unit` and CI's selection need one."""
    unmarked = [
        item.nodeid for item in items if not LAYER_MARKERS & {mark.name for mark in item.iter_markers()}
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests without a unit, integration or e2e marker (set pytestmark): " + ", ".join(unmarked)
        )
