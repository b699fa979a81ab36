"""canonicalize_digit reproduces MNIST's own normalization: 20-pixel box, mass at the center."""

from __future__ import annotations

import numpy as np
import pytest

from digits.canonicalize import canonicalize_digit
from digits.errors import NoDigitFoundError

pytestmark = pytest.mark.unit


def test_canonicalize_is_identity_on_mnist(mnist_test_samples):
    images, _ = mnist_test_samples
    unchanged = sum(np.array_equal(canonicalize_digit(image), image) for image in images[:1000])
    assert unchanged >= 995


def test_canonicalize_fits_longer_side_in_20_pixels_keeping_aspect():
    ink = np.zeros((300, 200), dtype=np.uint8)
    ink[50:250, 80:120] = 255  # a 200x40 bar
    canonical = canonicalize_digit(ink)
    rows = np.flatnonzero(canonical.any(axis=1))
    columns = np.flatnonzero(canonical.any(axis=0))
    assert canonical.shape == (28, 28) and canonical.dtype == np.uint8
    assert rows[-1] - rows[0] + 1 == 20
    assert columns[-1] - columns[0] + 1 == 4


def test_canonicalize_centers_mass_wherever_the_digit_was():
    ink = np.zeros((100, 100), dtype=np.uint8)
    ink[2:30, 60:75] = 200  # far off-center in the source
    canonical = canonicalize_digit(ink).astype(float)
    grid = np.arange(28)
    center_row = canonical.sum(axis=1) @ grid / canonical.sum()
    center_column = canonical.sum(axis=0) @ grid / canonical.sum()
    assert abs(center_row - 14) <= 0.5 and abs(center_column - 14) <= 0.5


def test_canonicalize_enlarges_small_digits():
    ink = np.zeros((10, 10), dtype=np.uint8)
    ink[3:8, 4:6] = 255
    canonical = canonicalize_digit(ink)
    assert np.flatnonzero(canonical.any(axis=1)).size == 20


def test_canonicalize_rejects_blank_image():
    with pytest.raises(NoDigitFoundError):
        canonicalize_digit(np.zeros((28, 28), dtype=np.uint8))


def test_canonicalize_rejects_non_uint8_input():
    with pytest.raises(ValueError, match="uint8"):
        canonicalize_digit(np.zeros((28, 28), dtype=np.float32))
