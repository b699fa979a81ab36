"""Digits (N, 28, 28) uint8 -> more, harder digits: offline copies (albumentations) and online layers (Keras).

Two kinds of augmentation, for two reasons:
- Static, applied once before training: stroke width, slant, elastic distortion, low-resolution
  binarized scan, coarse dropout, brightness and contrast, noise, inversion. These are per-pixel and
  comparatively slow, so each image gets a fixed number of distorted copies up front instead of paying
  the cost every epoch. Each is a pure per-image function of the image and its drawn parameters.
- Real-time, redrawn for every batch: small rotations, shifts and zooms. These are cheap affine warps,
  and redrawing them each epoch is what keeps a small dataset from being memorized.
"""

from __future__ import annotations

from typing import Any

import albumentations
import cv2
import keras
import numpy as np

from digits.canonicalize import canonicalize_digit
from training.config import RealtimeAugmentConfig, StaticAugmentConfig

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


def build_static_augmenter(config: StaticAugmentConfig, seed: int) -> albumentations.Compose:
    """Builds the offline pipeline, one transform per enabled flag.

    Args:
        config: which transforms run, how often and how strongly.
        seed: seeds albumentations' own generator, so the copies are reproducible.

    Returns:
        A Compose taking `image=` (28, 28) uint8 and returning the same shape and dtype.
    """
    style = build_style_transforms(config)
    transforms = [style[name] for name in ("stroke width", "slant") if name in style]
    if config.enable_elastic:
        # Simard et al. (2003): a smooth random displacement field (sigma 4 px, scale ~34 px) mimics
        # the oscillations of a hand; it is the single most useful distortion for MNIST.
        transforms.append(albumentations.ElasticTransform(alpha=34.0, sigma=4.0, p=0.8))
    if "low-res scan" in style:
        # After the shape changes, before the noise and dropout a scanner adds to its binarized output.
        transforms.append(style["low-res scan"])
    if config.enable_coarse_dropout:
        # Small holes stand in for broken strokes and pen skips; filled black like the background.
        transforms.append(
            albumentations.CoarseDropout(
                num_holes_range=(1, 2), hole_height_range=(2, 4), hole_width_range=(2, 4), fill=0, p=0.3
            )
        )
    if config.enable_brightness_contrast:
        # Faint pencil strokes: only darken, because serving always delivers a background of exactly 0.
        transforms.append(
            albumentations.RandomBrightnessContrast(brightness_limit=(-0.2, 0.0), contrast_limit=0.2, p=0.5)
        )
    if config.enable_noise:
        transforms.append(albumentations.GaussNoise(std_range=(0.02, 0.08), p=0.2))
    if config.enable_inversion:
        transforms.append(albumentations.InvertImg(p=config.inversion_probability))
    return albumentations.Compose(transforms, seed=seed)


def augment_offline(
    images: np.ndarray, labels: np.ndarray, config: StaticAugmentConfig, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Appends `config.copies_per_image` distorted copies of every image.

    Args:
        images: (N, 28, 28) uint8 in [0, 255], white ink on black.
        labels: (N,) int labels of `images`.
        config: the static augmentation settings.
        seed: makes the copies reproducible.

    Returns:
        images (N * (1 + copies), 28, 28) uint8 and their labels: the originals first, then each copy
        round in the originals' order.
    """
    if config.copies_per_image == 0 or len(images) == 0:
        return images, labels
    augmenter = build_static_augmenter(config, seed)
    copies = [
        np.stack([augmenter(image=image)["image"] for image in images])
        for _ in range(config.copies_per_image)
    ]
    all_images = np.concatenate([images, *copies]).astype(np.uint8, copy=False)
    all_labels = np.concatenate([labels] * (1 + config.copies_per_image))
    return all_images, all_labels


def build_realtime_augmenter(config: RealtimeAugmentConfig, seed: int) -> keras.Sequential:
    """Builds the per-batch random affine warp from Keras 3 preprocessing layers (backend-agnostic).

    Args:
        config: which warps run and their ranges.
        seed: base seed of the layers' random generators.

    Returns:
        A Sequential taking (B, 28, 28, 1) float32 in [0, 1] and returning the same shape and range
        (fill with 0, the background, so warps never pull in a white border). It is the identity
        when every warp is disabled.
    """
    warp_layers: list[keras.Layer] = []
    if config.enable_rotation:
        warp_layers.append(
            keras.layers.RandomRotation(
                config.rotation_degrees / 360.0, fill_mode="constant", fill_value=0.0, seed=seed
            )
        )
    if config.enable_shift:
        warp_layers.append(
            keras.layers.RandomTranslation(
                config.shift_fraction,
                config.shift_fraction,
                fill_mode="constant",
                fill_value=0.0,
                seed=seed + 1,
            )
        )
    if config.enable_zoom:
        warp_layers.append(
            keras.layers.RandomZoom(
                (-config.zoom_fraction, config.zoom_fraction),
                fill_mode="constant",
                fill_value=0.0,
                seed=seed + 2,
            )
        )
    return keras.Sequential(warp_layers, name="realtime_augmenter")
