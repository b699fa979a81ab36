"""MNIST digit (28, 28) uint8 white-on-black -> (S, S, 3) uint8 BGR "phone photo" of it written on paper.

Tests and the benchmark use these renderings to check that `preprocess_image` turns what users really
upload (dark pen on slightly off-white paper, off-center, unevenly lit, noisy, a little blurred,
JPEG-compressed) back into something that looks like the MNIST digit it came from. Every random choice
comes from the caller's generator, so a seed reproduces an image exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

MNIST_SIZE_PIXELS = 28


def _illumination_field(size_pixels: int, rng: np.random.Generator) -> np.ndarray:
    """(S, S) float32 multiplier in about [0.5, 1.0]: a linear falloff plus one soft shadow."""
    grid = np.linspace(-1.0, 1.0, size_pixels, dtype=np.float32)
    rows, columns = np.meshgrid(grid, grid, indexing="ij")
    angle = rng.uniform(0.0, 2.0 * np.pi)
    # A lamp or window to one side: brightness falls off linearly across the page.
    falloff = rng.uniform(0.1, 0.3) * (np.cos(angle) * columns + np.sin(angle) * rows + 1.0) / 2.0
    # The phone or the hand casts a wide, soft shadow somewhere on the page.
    shadow_row, shadow_column = rng.uniform(-1.0, 1.0, size=2)
    shadow_width = rng.uniform(0.5, 0.9)
    distance_squared = (rows - shadow_row) ** 2 + (columns - shadow_column) ** 2
    shadow = rng.uniform(0.05, 0.2) * np.exp(-distance_squared / (2.0 * shadow_width**2))
    return (1.0 - falloff - shadow).astype(np.float32)


def render_photo_like(digit: np.ndarray, rng: np.random.Generator, size_pixels: int = 300) -> np.ndarray:
    """MNIST digit (28, 28) uint8 white-on-black -> (size, size, 3) uint8 BGR photo of it on paper.

    The digit is enlarged 5-8x (less if `size_pixels` is too small), placed off-center, drawn in a
    dark pen colour on off-white paper, lit unevenly (a gradient and a soft shadow), blurred slightly
    and given sensor noise. Callers JPEG-encode the result (`testkit.images.encode_jpeg`) to add
    compression artifacts.

    Args:
        digit: (28, 28) uint8, white ink on black, as in MNIST.
        rng: the source of every random choice.
        size_pixels: side of the square photo.

    Returns:
        (size_pixels, size_pixels, 3) uint8 BGR, dark ink on light paper.
    """
    scale = min(rng.uniform(5.0, 8.0), size_pixels / MNIST_SIZE_PIXELS)
    enlarged_pixels = max(1, int(MNIST_SIZE_PIXELS * scale))
    enlarged = cv2.resize(digit, (enlarged_pixels, enlarged_pixels), interpolation=cv2.INTER_CUBIC)
    top, left = rng.integers(0, size_pixels - enlarged_pixels + 1, size=2)
    ink_coverage = np.zeros((size_pixels, size_pixels), dtype=np.float32)
    ink_coverage[top : top + enlarged_pixels, left : left + enlarged_pixels] = enlarged / 255.0
    ink_coverage = np.clip(ink_coverage, 0.0, 1.0)[..., None]

    paper_bgr = rng.uniform(205.0, 245.0) - rng.uniform(0.0, 12.0, size=3)
    pen_bgr = rng.uniform(15.0, 70.0, size=3) + np.array([rng.uniform(0.0, 50.0), 0.0, 0.0])
    page = paper_bgr * (1.0 - ink_coverage) + pen_bgr * ink_coverage
    page *= _illumination_field(size_pixels, rng)[..., None]
    page = cv2.GaussianBlur(page.astype(np.float32), (0, 0), rng.uniform(0.6, 1.4))
    page += rng.normal(0.0, rng.uniform(2.0, 7.0), size=page.shape)
    return np.clip(np.rint(page), 0, 255).astype(np.uint8)
