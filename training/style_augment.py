"""A canonical digit (28, 28) uint8 -> the same digit as a real scan or photo might show it: thicker or
thinner strokes, a slant, a low-resolution binarized scan.

Model 4 misread European and personal styles (CVL test, unseen writers): thick marker strokes,
low-resolution binarized scans, slanted hands. These transforms make copies that look like them; the
static augmenter (`training.augment`) places them among its other transforms, and the augmentation
grid shows each applied alone. Each is a pure function of the image and its drawn parameters.
"""

from __future__ import annotations

from typing import Any

import albumentations
import cv2
import numpy as np

from digits.canonicalize import canonicalize_digit
from training.config import StaticAugmentConfig

INK_LEVEL = 128  # a pixel at or above it counts as ink when an erosion's loss is measured


def change_stroke_width(image: np.ndarray, kernel_side_pixels: int) -> np.ndarray:
    """Thickens (dilation, a marker) or thins (erosion, a pencil) the strokes of a white-on-black digit.

    Args:
        image: (28, 28) uint8 in [0, 255], white ink on black.
        kernel_side_pixels: side of the square dilation kernel, 2 or more; 0 thins instead.

    Returns:
        (28, 28) uint8 in [0, 255]. Thinning takes about one pixel off every stroke (a 2x2 erosion;
        MNIST strokes are 2-3 pixels wide, so anything larger erases them); when it would leave less
        than half of the ink pixels the image is returned unchanged, so a thin digit is never erased.
    """
    if kernel_side_pixels:
        return cv2.dilate(image, np.ones((kernel_side_pixels, kernel_side_pixels), dtype=np.uint8))
    thinner = cv2.erode(image, np.ones((2, 2), dtype=np.uint8))
    if np.count_nonzero(thinner >= INK_LEVEL) * 2 < np.count_nonzero(image >= INK_LEVEL):
        return image
    return thinner


def simulate_low_resolution_scan(image: np.ndarray, side_pixels: int) -> np.ndarray:
    """Shrinks a digit to `side_pixels`, binarizes it (Otsu) and normalizes it back the way serving would.

    Args:
        image: (28, 28) uint8 in [0, 255], white ink on black.
        side_pixels: side of the square low-resolution scan, below 28.

    Returns:
        (28, 28) uint8 in [0, 255], background 0; the image unchanged if binarizing leaves no ink.
    """
    small = cv2.resize(image, (side_pixels, side_pixels), interpolation=cv2.INTER_AREA)
    _, binary = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if not binary.any():
        return image
    # The serving routine, which enlarges a small scan linearly: the copy looks as such a scan will.
    return canonicalize_digit(binary)


class StrokeWidthChange(albumentations.ImageOnlyTransform):
    """`change_stroke_width` for albumentations: thicker or thinner, with even odds."""

    def __init__(self, max_kernel_side_pixels: int = 3, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.max_kernel_side_pixels = max_kernel_side_pixels

    def get_params(self) -> dict[str, Any]:
        thicker_side_pixels = self.py_random.randint(2, self.max_kernel_side_pixels)
        return {"kernel_side_pixels": thicker_side_pixels if self.py_random.random() < 0.5 else 0}

    def apply(self, img: np.ndarray, kernel_side_pixels: int, **params: Any) -> np.ndarray:
        return change_stroke_width(img, kernel_side_pixels)


class LowResolutionScan(albumentations.ImageOnlyTransform):
    """`simulate_low_resolution_scan` for albumentations, the side drawn from a range."""

    def __init__(self, min_side_pixels: int = 10, max_side_pixels: int = 16, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.min_side_pixels = min_side_pixels
        self.max_side_pixels = max_side_pixels

    def get_params(self) -> dict[str, Any]:
        return {"side_pixels": self.py_random.randint(self.min_side_pixels, self.max_side_pixels)}

    def apply(self, img: np.ndarray, side_pixels: int, **params: Any) -> np.ndarray:
        return simulate_low_resolution_scan(img, side_pixels)


def build_style_transforms(
    config: StaticAugmentConfig, is_forced: bool = False
) -> dict[str, albumentations.BasicTransform]:
    """The enabled style transforms (real scans and photos), by the name a sample grid shows.

    Args:
        config: which style transforms run, how often and how strongly.
        is_forced: every transform fires (probability 1), for samples.

    Returns:
        Name -> transform taking (28, 28) uint8 and returning the same shape and dtype.
    """
    transforms: dict[str, albumentations.BasicTransform] = {}
    if config.enable_stroke_width:
        transforms["stroke width"] = StrokeWidthChange(
            config.stroke_width_max_kernel_pixels, p=1.0 if is_forced else config.stroke_width_probability
        )
    if config.enable_slant:
        transforms["slant"] = albumentations.Affine(
            shear={"x": (-config.slant_degrees, config.slant_degrees), "y": (0.0, 0.0)},
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            p=1.0 if is_forced else config.slant_probability,
        )
    if config.enable_low_resolution_scan:
        transforms["low-res scan"] = LowResolutionScan(
            config.low_resolution_scan_min_side_pixels,
            config.low_resolution_scan_max_side_pixels,
            p=1.0 if is_forced else config.low_resolution_scan_probability,
        )
    return transforms


def sample_style_transforms(
    image: np.ndarray, config: StaticAugmentConfig, seed: int
) -> dict[str, np.ndarray]:
    """One example of each enabled style transform applied alone, for the augmentation grid.

    Args:
        image: (28, 28) uint8 in [0, 255], white ink on black.
        config: which style transforms are enabled and their ranges (their probabilities are ignored).
        seed: makes the examples reproducible.

    Returns:
        Transform name -> (28, 28) uint8 in [0, 255], in the order the augmenter applies them.
    """
    return {
        name: albumentations.Compose([transform], seed=seed)(image=image)["image"]
        for name, transform in build_style_transforms(config, is_forced=True).items()
    }
