"""Digit datasets: each loader turns one source's files into canonical `DigitSet`s.

The loaders and the `--dataset` registry live in their own modules (`training.datasets.registry`),
imported on demand: they pull in h5py and the service's image pipeline, which the light types below
do not need.
"""

from training.datasets.combine import TrainValidationSplit, held_out_test_sets, split_train_validation
from training.datasets.digit_set import DatasetError, DigitSet, DigitSource

__all__ = [
    "DatasetError",
    "DigitSet",
    "DigitSource",
    "TrainValidationSplit",
    "held_out_test_sets",
    "split_train_validation",
]
