"""Digit datasets: each loader turns one source's files into canonical `DigitSet`s."""

from training.datasets.digit_set import DatasetError, DigitSet, DigitSource

__all__ = ["DatasetError", "DigitSet", "DigitSource"]
