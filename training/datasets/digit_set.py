"""The common currency of the loaders: a named set of canonical digits and their labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits.contract import IMAGE_SHAPE, NUM_CLASSES


class DatasetError(Exception):
    """A dataset cannot be loaded: missing, corrupt or inconsistent files, or an unknown name.

    The message always names the dataset and the file at fault, and says what to do about it.
    The training CLI prints it and exits with a non-zero status.
    """


@dataclass(frozen=True)
class DigitSet:
    """Digits from one source and split, normalized like MNIST.

    Attributes:
        name: source and split, e.g. "mnist/test" or "usps/train".
        images: (N, 28, 28) uint8 in [0, 255], white ink on black, longer side 20 pixels, centered
            by center of mass (see `digits.canonicalize`).
        labels: (N,) int64 in [0, 9].
        writers: (N,) str, who wrote each digit, where the source says (CVL); None where it does not.
            A validation split keeps each writer on one side (`combine.split_train_validation`).
        origins: (N,) str, the file each digit was read from (folder and CVL trees); None where the
            digits come from one array file (MNIST IDX, USPS HDF5). Evaluation names each result by it.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    writers: np.ndarray | None = None
    origins: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != IMAGE_SHAPE[:2] or self.images.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: images must be (N, 28, 28) uint8, got {self.images.shape} {self.images.dtype}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"{self.name}: {len(self.images)} images, labels of shape {self.labels.shape}")
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= NUM_CLASSES):
            raise ValueError(f"{self.name}: labels must be in 0..9")
        if self.writers is not None and self.writers.shape != self.labels.shape:
            raise ValueError(f"{self.name}: {len(self.labels)} labels, writers of shape {self.writers.shape}")
        if self.origins is not None and self.origins.shape != self.labels.shape:
            raise ValueError(f"{self.name}: {len(self.labels)} labels, origins of shape {self.origins.shape}")

    def select(self, indices: np.ndarray, name: str | None = None) -> DigitSet:
        """The digits at `indices` (with their writers and origins), as a set named `name` (default: this
        name)."""
        writers = None if self.writers is None else self.writers[indices]
        origins = None if self.origins is None else self.origins[indices]
        return DigitSet(name or self.name, self.images[indices], self.labels[indices], writers, origins)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class DigitSource:
    """One dataset's splits: `train` feeds training and validation, `test` is held out for evaluation."""

    name: str
    train: DigitSet | None
    test: DigitSet | None
