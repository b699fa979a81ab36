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

import albumentations
import keras
import numpy as np

from training.config import RealtimeAugmentConfig, StaticAugmentConfig
from training.style_augment import build_style_transforms


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
