"""Canonical digits (N, 28, 28) uint8 in [0, 255] -> model input (N, 28, 28, 1) float32 in [0, 1].

The model contract, written once: the canonical digit's size, the model's input shape and scale, and
its number of classes. Training (its batches, the model's input layer, evaluation) and serving (the
batcher's inputs, the output check) both ask this module, so that neither can feed the model a digit
scaled or shaped differently from the other.
"""

from __future__ import annotations

import numpy as np

CANVAS_SIZE_PIXELS = 28
# The model's input: one grey channel. Its output: one probability per digit 0-9.
IMAGE_SHAPE = (CANVAS_SIZE_PIXELS, CANVAS_SIZE_PIXELS, 1)
NUM_CLASSES = 10
# The model's input is the ink level divided by this: uint8 0..255 onto [0, 1].
INK_LEVEL_MAX = 255.0


def to_model_inputs(canonical_digits: np.ndarray) -> np.ndarray:
    """Canonical digits -> the model's input batch.

    Args:
        canonical_digits: (N, 28, 28) uint8 in [0, 255], white ink on black, MNIST-normalized.

    Returns:
        (N, 28, 28, 1) float32 in [0, 1].

    Raises:
        ValueError: not a uint8 array of (N, 28, 28) (a programming error, not bad user input).
    """
    if canonical_digits.ndim != 3 or canonical_digits.shape[1:] != IMAGE_SHAPE[:2]:
        raise ValueError(f"expected (N, 28, 28) uint8 digits, got shape {canonical_digits.shape}")
    if canonical_digits.dtype != np.uint8:
        raise ValueError(f"expected (N, 28, 28) uint8 digits, got dtype {canonical_digits.dtype}")
    return (canonical_digits.astype(np.float32) / np.float32(INK_LEVEL_MAX))[..., np.newaxis]


def to_model_input(canonical_digit: np.ndarray) -> np.ndarray:
    """One (28, 28) uint8 canonical digit -> (28, 28, 1) float32 in [0, 1], one row of a batch."""
    if canonical_digit.ndim != 2:
        raise ValueError(f"expected a (28, 28) uint8 digit, got shape {canonical_digit.shape}")
    return to_model_inputs(canonical_digit[np.newaxis])[0]
