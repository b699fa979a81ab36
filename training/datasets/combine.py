"""`DigitSource`s -> one shuffled train set and one validation set, stratified by (source, label).

Stratifying by source as well as by label keeps every source at the same train/validation ratio, so a
small source (USPS next to MNIST) is not left out of validation by chance and validation accuracy
weighs the sources as training does. Test splits are never mixed in: each stays a separate held-out
set, so the evaluation can report accuracy per source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from training.datasets.digit_set import DatasetError, DigitSet, DigitSource


@dataclass(frozen=True)
class TrainValidationSplit:
    """The combined training data: `train` (named "combined/train") feeds the optimizer, `validation`
    ("combined/validation") early stopping and checkpoint selection."""

    train: DigitSet
    validation: DigitSet


def split_train_validation(
    sources: Sequence[DigitSource], validation_fraction: float = 0.1, seed: int = 42
) -> TrainValidationSplit:
    """Every source's train split -> disjoint, shuffled train and validation sets.

    Args:
        sources: the loaded sources; those without a train split are skipped.
        validation_fraction: share of each (source, label) group that goes to validation, rounded
            per group, in (0, 1).
        seed: the same seed and sources give the same split, sample for sample.

    Returns:
        `TrainValidationSplit` of `DigitSet`s: images (N, 28, 28) uint8, labels (N,) int64.

    Raises:
        ValueError: `validation_fraction` is not strictly between 0 and 1.
        DatasetError: no source has a non-empty train split.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be strictly between 0 and 1, got {validation_fraction}")
    train_sets = [source.train for source in sources if source.train is not None and len(source.train)]
    if not train_sets:
        names = ", ".join(source.name for source in sources) or "none"
        raise DatasetError(f"no training data: none of the sources ({names}) has a non-empty train split")
    images = np.concatenate([digits.images for digits in train_sets])
    labels = np.concatenate([digits.labels for digits in train_sets])
    source_ids = np.concatenate([np.full(len(digits), index) for index, digits in enumerate(train_sets)])
    train_indices, validation_indices = _stratified_indices(
        source_ids * 10 + labels, validation_fraction, np.random.default_rng(seed)
    )
    return TrainValidationSplit(
        train=DigitSet("combined/train", images[train_indices], labels[train_indices]),
        validation=DigitSet("combined/validation", images[validation_indices], labels[validation_indices]),
    )


def _stratified_indices(
    groups: np.ndarray, validation_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Group id per sample -> (train indices, validation indices), each shuffled, `fraction` per group."""
    train_parts, validation_parts = [], []
    for group in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == group))
        validation_count = round(len(members) * validation_fraction)
        validation_parts.append(members[:validation_count])
        train_parts.append(members[validation_count:])
    # Shuffled across groups so that any prefix of either set mixes labels and sources.
    return rng.permutation(np.concatenate(train_parts)), rng.permutation(np.concatenate(validation_parts))


def held_out_test_sets(sources: Sequence[DigitSource]) -> list[DigitSet]:
    """Sources -> each one's own test split (e.g. "mnist/test", "usps/test"), skipping sources without one."""
    return [source.test for source in sources if source.test is not None and len(source.test)]
