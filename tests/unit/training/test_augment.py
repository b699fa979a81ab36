"""Augmentation keeps shapes, dtypes and value ranges, changes images, and each flag turns a step off."""

from __future__ import annotations

import numpy as np
import pytest

from training.augment import augment_offline, build_realtime_augmenter, build_static_augmenter
from training.config import RealtimeAugmentConfig, StaticAugmentConfig

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def digits(mnist_test_samples):
    images, labels = mnist_test_samples
    return images[:64], labels[:64].astype(np.int64)


def test_offline_augmentation_appends_copies_with_the_same_labels(digits):
    images, labels = digits
    augmented, augmented_labels = augment_offline(
        images, labels, StaticAugmentConfig(copies_per_image=2), seed=1
    )
    assert augmented.shape == (192, 28, 28) and augmented.dtype == np.uint8
    assert np.array_equal(augmented[:64], images)
    assert np.array_equal(augmented_labels, np.tile(labels, 3))
    assert not np.array_equal(augmented[64:128], images)


def test_offline_augmentation_is_reproducible_for_a_seed(digits):
    images, labels = digits
    config = StaticAugmentConfig(copies_per_image=1)
    first, _ = augment_offline(images, labels, config, seed=7)
    second, _ = augment_offline(images, labels, config, seed=7)
    assert np.array_equal(first, second)


def test_offline_augmentation_with_zero_copies_returns_the_input(digits):
    images, labels = digits
    augmented, augmented_labels = augment_offline(
        images, labels, StaticAugmentConfig(copies_per_image=0), seed=1
    )
    assert augmented is images and augmented_labels is labels


def test_static_augmenter_has_one_transform_per_enabled_flag():
    every = build_static_augmenter(StaticAugmentConfig(), seed=0)
    assert [type(t).__name__ for t in every.transforms] == [
        "ElasticTransform",
        "CoarseDropout",
        "RandomBrightnessContrast",
        "GaussNoise",
        "InvertImg",
    ]
    none = StaticAugmentConfig(
        enable_elastic=False,
        enable_noise=False,
        enable_coarse_dropout=False,
        enable_brightness_contrast=False,
        enable_inversion=False,
    )
    assert list(build_static_augmenter(none, seed=0).transforms) == []


def test_inversion_flips_polarity_when_it_fires(digits):
    images, _ = digits
    only_inversion = StaticAugmentConfig(
        enable_elastic=False,
        enable_noise=False,
        enable_coarse_dropout=False,
        enable_brightness_contrast=False,
        inversion_probability=1.0,
    )
    augmenter = build_static_augmenter(only_inversion, seed=0)
    assert np.array_equal(augmenter(image=images[0])["image"], 255 - images[0])


def test_realtime_augmenter_keeps_shape_dtype_and_range(digits):
    images, _ = digits
    batch = (images.astype("float32") / 255.0)[..., np.newaxis]
    warped = np.asarray(build_realtime_augmenter(RealtimeAugmentConfig(), seed=0)(batch, training=True))
    assert warped.shape == batch.shape and warped.dtype == np.float32
    assert warped.min() >= -1e-6 and warped.max() <= 1.0 + 1e-6
    assert not np.allclose(warped, batch)


def test_realtime_augmenter_is_identity_outside_training(digits):
    images, _ = digits
    batch = (images.astype("float32") / 255.0)[..., np.newaxis]
    augmenter = build_realtime_augmenter(RealtimeAugmentConfig(), seed=0)
    assert np.allclose(np.asarray(augmenter(batch, training=False)), batch)


def test_realtime_augmenter_without_warps_has_no_layers():
    config = RealtimeAugmentConfig(enable_rotation=False, enable_shift=False, enable_zoom=False)
    assert build_realtime_augmenter(config, seed=0).layers == []
