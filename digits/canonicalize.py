"""Ink image (H, W) uint8, white ink on black -> canonical digit (28, 28) uint8, MNIST's normalization.

This is the one normalization routine shared by training (every dataset loader) and serving (the last
step of `preprocess`), so the model never sees a digit framed differently from the ones it learned.

MNIST's recipe, reproduced here: the digit's bounding box is scaled, keeping its aspect ratio, so that
its longer side is 20 pixels; the result is placed in a 28x28 field so that its center of mass sits at
the field's center. The 4-pixel margin leaves room for the center-of-mass shift of lopsided digits
(a 7's mass sits high and right, so its box moves down and left). Applied to an MNIST image it is the
identity: MNIST digits already have a longer side of exactly 20 and a centered mass.
"""

from __future__ import annotations

import cv2
import numpy as np

from digits.contract import CANVAS_SIZE_PIXELS
from digits.errors import NoDigitFoundError

DIGIT_BOX_SIZE_PIXELS = 20


def fit_digit_in_box(ink: np.ndarray, box_size_pixels: int = DIGIT_BOX_SIZE_PIXELS) -> np.ndarray:
    """Crops the ink to its bounding box and scales it so the longer side is `box_size_pixels`.

    Args:
        ink: (H, W) uint8, white ink on a black (0) background; any pixel above 0 counts as ink.
        box_size_pixels: length of the longer side after scaling.

    Returns:
        (h, w) uint8 with max(h, w) == box_size_pixels and the aspect ratio kept (each side >= 1).

    Raises:
        NoDigitFoundError: the image holds no pixel above 0.
    """
    left, top, box_width, box_height = cv2.boundingRect(ink)  # of the pixels above 0
    if box_width == 0:
        raise NoDigitFoundError("no digit found: the image has no ink")
    cropped = ink[top : top + box_height, left : left + box_width]
    height, width = cropped.shape
    scale = box_size_pixels / max(height, width)
    if scale == 1.0:
        return np.ascontiguousarray(cropped)
    new_height = max(1, round(height * scale))
    new_width = max(1, round(width * scale))
    # INTER_AREA averages when shrinking (anti-aliasing, like MNIST's grey edges); it degrades to
    # nearest-neighbour when enlarging, where linear interpolation gives smoother strokes.
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(cropped, (new_width, new_height), interpolation=interpolation)


def center_by_mass(digit: np.ndarray, canvas_size_pixels: int = CANVAS_SIZE_PIXELS) -> np.ndarray:
    """Places `digit` on a black square canvas so that its center of mass is at the canvas center.

    Args:
        digit: (h, w) uint8 with h, w <= canvas_size_pixels and some ink.
        canvas_size_pixels: side of the square output.

    Returns:
        (canvas_size_pixels, canvas_size_pixels) uint8. The shift is rounded to whole pixels and
        clamped so that the digit is never cut off at the border.
    """
    height, width = digit.shape
    # OpenCV's spatial moments of a uint8 image are exact integer sums: m10 = sum(x * ink).
    moments = cv2.moments(digit)
    center_row, center_column = moments["m01"] / moments["m00"], moments["m10"] / moments["m00"]
    # MNIST puts the mass at (14.0, 14.0) in row/column index units, not at the geometric 13.5.
    middle = canvas_size_pixels / 2
    top = min(max(round(middle - center_row), 0), canvas_size_pixels - height)
    left = min(max(round(middle - center_column), 0), canvas_size_pixels - width)
    canvas = np.zeros((canvas_size_pixels, canvas_size_pixels), dtype=np.uint8)
    canvas[top : top + height, left : left + width] = digit
    return canvas


def canonicalize_digit(ink: np.ndarray) -> np.ndarray:
    """Normalizes an ink image the way MNIST was normalized.

    Args:
        ink: (H, W) uint8, white ink on a black (0) background, anything outside the digit already
            set to 0 (the caller removes specks and paper texture first).

    Returns:
        (28, 28) uint8 in [0, 255], the digit's longer side 20 pixels, center of mass at the center.

    Raises:
        NoDigitFoundError: the image holds no ink.
    """
    if ink.ndim != 2 or ink.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got shape {ink.shape} and dtype {ink.dtype}")
    return center_by_mass(fit_digit_in_box(ink))
