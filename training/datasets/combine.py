"""`DigitSource`s -> one shuffled train set and one validation set, stratified by (source, label), and
writer-disjoint where the source says who wrote each digit.

Stratifying by source as well as by label keeps every source at the same train/validation ratio, so a
small source (USPS next to MNIST) is not left out of validation by chance and validation accuracy
weighs the sources as training does. Where writers are known (CVL), whole writers go to validation:
a writer's other digits in training would make validation an easier test than new writers are, and
every choice (early stopping, the final weights) would favour memorizing hands. Test splits are never
mixed in: each stays a separate held-out set, so the evaluation can report accuracy per source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    sources: Sequence[DigitSource],
    validation_fraction: float = 0.1,
    seed: int = 42,
    repeats: Mapping[str, int] | None = None,
) -> TrainValidationSplit:
    """Every source's train split -> disjoint, shuffled train and validation sets.

    Args:
        sources: the loaded sources; those without a train split are skipped.
        validation_fraction: share of each (source, label) group that goes to validation, rounded
            per group, in (0, 1).
        seed: the same seed and sources give the same split, sample for sample.
        repeats: source name -> how many times its train images go into `train` (default 1); the
            split itself, and so `validation`, does not depend on it.

    Returns:
        `TrainValidationSplit` of `DigitSet`s: images (N, 28, 28) uint8, labels (N,) int64. A
        source with writers sends `validation_fraction` of its writers (at least one, at most all
        but one) to validation with all their digits; the others are stratified by label.

    Raises:
        ValueError: `validation_fraction` is not strictly between 0 and 1.
        DatasetError: no source has a non-empty train split.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be strictly between 0 and 1, got {validation_fraction}")
    train_sets = [
        (source.name, source.train) for source in sources if source.train is not None and len(source.train)
    ]
    if not train_sets:
        names = ", ".join(source.name for source in sources) or "none"
        raise DatasetError(f"no training data: none of the sources ({names}) has a non-empty train split")
    rng = np.random.default_rng(seed)
    repeats = repeats or {}
    train_parts, validation_parts = [], []
    for source_name, digits in train_sets:
        if digits.writers is None:
            train_indices, validation_indices = _stratified_indices(digits.labels, validation_fraction, rng)
        else:
            train_indices, validation_indices = _writer_disjoint_indices(
                digits.writers, validation_fraction, rng
            )
        train_parts.append(digits.select(np.tile(train_indices, repeats.get(source_name, 1))))
        validation_parts.append(digits.select(validation_indices))
    return TrainValidationSplit(
        train=_concatenate(train_parts, "combined/train", rng),
        validation=_concatenate(validation_parts, "combined/validation", rng),
    )


def _concatenate(parts: Sequence[DigitSet], name: str, rng: np.random.Generator) -> DigitSet:
    """Sets -> one, shuffled across them so that any prefix mixes labels and sources.

    Writers are kept only if every part has them (a writer ID is unique within its source only, so
    they are prefixed with the source's set name).
    """
    order = rng.permutation(sum(len(part) for part in parts))
    images = np.concatenate([part.images for part in parts])[order]
    labels = np.concatenate([part.labels for part in parts])[order]
    writers = None
    if all(part.writers is not None for part in parts):
        writers = np.concatenate([np.char.add(f"{part.name}:", part.writers) for part in parts])[order]
    return DigitSet(name, images, labels, writers)


def _writer_disjoint_indices(
    writers: np.ndarray, validation_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Writer per sample -> (train indices, validation indices): whole writers on each side.

    Writers are taken in a random order, each one that brings validation nearer to
    `validation_fraction` of the samples (so one prolific writer never takes it far past); at least one
    writer goes to validation (the smallest, if none was taken) and one stays for training.
    """
    names, inverse, counts = np.unique(writers, return_inverse=True, return_counts=True)
    if len(names) < 2:
        raise DatasetError(
            f"a writer-disjoint validation split needs digits of at least 2 writers, got {len(names)}"
        )
    target = validation_fraction * len(writers)
    is_validation_writer = np.zeros(len(names), dtype=bool)
    taken = 0
    for writer in rng.permutation(len(names)):
        if abs(taken + counts[writer] - target) < abs(taken - target):
            is_validation_writer[writer], taken = True, taken + counts[writer]
    if not is_validation_writer.any():
        is_validation_writer[np.argmin(counts)] = True
    if is_validation_writer.all():
        is_validation_writer[np.argmax(counts)] = False
    is_validation = is_validation_writer[inverse]
    return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)


def _stratified_indices(
    groups: np.ndarray, validation_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Group id (label) per sample -> (train indices, validation indices), `fraction` per group."""
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
