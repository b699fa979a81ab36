"""Augmentation keeps shapes, dtypes and value ranges, changes images, and each flag turns a step off."""

from __future__ import annotations

import numpy as np
import pytest

from training.augment import augment_offline, build_realtime_augmenter, build_static_augmenter
from training.config import RealtimeAugmentConfig, StaticAugmentConfig
from training.style_augment import (
    INK_LEVEL,
    change_stroke_width,
    sample_style_transforms,
    simulate_low_resolution_scan,
)

pytestmark = pytest.mark.unit

STYLE_FLAGS = ("enable_stroke_width", "enable_low_resolution_scan", "enable_slant")
EVERY_FLAG = (
    "enable_elastic",
    "enable_noise",
    "enable_coarse_dropout",
    "enable_brightness_contrast",
    "enable_inversion",
    *STYLE_FLAGS,
)


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
        "StrokeWidthChange",
        "Affine",
        "ElasticTransform",
        "LowResolutionScan",
        "CoarseDropout",
        "RandomBrightnessContrast",
        "GaussNoise",
        "InvertImg",
    ]
    none = StaticAugmentConfig(**dict.fromkeys(EVERY_FLAG, False))
    assert list(build_static_augmenter(none, seed=0).transforms) == []


@pytest.mark.parametrize(
    ("flag", "transform_name"),
    [
        ("enable_stroke_width", "StrokeWidthChange"),
        ("enable_low_resolution_scan", "LowResolutionScan"),
        ("enable_slant", "Affine"),
    ],
)
def test_each_style_flag_off_removes_only_its_transform(flag, transform_name):
    names = [
        type(t).__name__ for t in build_static_augmenter(StaticAugmentConfig(**{flag: False}), 0).transforms
    ]
    assert transform_name not in names and len(names) == 7


def test_inversion_flips_polarity_when_it_fires(digits):
    images, _ = digits
    only_inversion = StaticAugmentConfig(
        **dict.fromkeys(EVERY_FLAG, False) | {"enable_inversion": True}, inversion_probability=1.0
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


def vertical_bar(width_pixels: int) -> np.ndarray:
    """A "1": a vertical stroke 20 pixels tall, centered, white on black."""
    image = np.zeros((28, 28), dtype=np.uint8)
    left = 14 - width_pixels // 2
    image[4:24, left : left + width_pixels] = 255
    return image


def count_ink_pixels(image: np.ndarray) -> int:
    return int(np.count_nonzero(image >= INK_LEVEL))


def test_thickening_adds_ink(digits):
    images, _ = digits
    for kernel_side_pixels in (2, 3, 4):
        thicker = change_stroke_width(images[0], kernel_side_pixels)
        assert thicker.shape == (28, 28) and thicker.dtype == np.uint8
        assert count_ink_pixels(thicker) > count_ink_pixels(images[0])


def test_thinning_removes_ink_but_not_all_of_a_thin_stroke():
    bar = vertical_bar(width_pixels=3)
    thinner = change_stroke_width(bar, 0)
    assert thinner.shape == (28, 28) and thinner.dtype == np.uint8
    assert 0 < count_ink_pixels(thinner) < count_ink_pixels(bar)


def test_thinning_leaves_a_one_pixel_stroke_alone():
    hairline = vertical_bar(width_pixels=1)
    assert np.array_equal(change_stroke_width(hairline, 0), hairline)


def test_low_resolution_scan_keeps_shape_dtype_and_a_black_background(digits):
    images, _ = digits
    for side_pixels in (10, 16):
        scans = np.stack([simulate_low_resolution_scan(image, side_pixels) for image in images])
        assert scans.shape == images.shape and scans.dtype == np.uint8
        assert ((scans == 0).mean(axis=(1, 2)) > 0.5).all()
        assert not scans[:, :3, :3].any() and not scans[:, -3:, -3:].any()
        assert not np.array_equal(scans, images)


def test_low_resolution_scan_binarizes_a_faint_digit_to_full_ink(digits):
    images, _ = digits
    faint = images[0] // 4
    assert faint.max() < 64
    assert simulate_low_resolution_scan(faint, 12).max() == 255


def high_frequency_energy_fraction(image: np.ndarray, side_pixels: int) -> float:
    """Share of the image's spectral energy above the Nyquist frequency of a `side_pixels` scan."""
    energy = np.abs(np.fft.fft2(image.astype(np.float64))) ** 2
    frequencies = np.abs(np.fft.fftfreq(28))
    nyquist = side_pixels / (2 * 28)
    is_high = (frequencies[:, None] > nyquist) | (frequencies[None, :] > nyquist)
    return float(energy[is_high].sum() / energy.sum())


def test_low_resolution_scan_loses_the_detail_finer_than_its_pixels(digits):
    images, _ = digits
    scans = [simulate_low_resolution_scan(image, 10) for image in images]
    original = np.mean([high_frequency_energy_fraction(image, 10) for image in images])
    scanned = np.mean([high_frequency_energy_fraction(scan, 10) for scan in scans])
    assert scanned < 0.6 * original


def column_centroid(rows: np.ndarray) -> float:
    return float((rows.sum(axis=0) * np.arange(rows.shape[1])).sum() / rows.sum())


def test_slant_shifts_rows_in_proportion_to_their_height():
    bar = vertical_bar(width_pixels=2)
    config = StaticAugmentConfig(
        enable_stroke_width=False, enable_low_resolution_scan=False, slant_degrees=15.0
    )
    shifts = []
    for seed in range(20):
        slanted = sample_style_transforms(bar, config, seed)["slant"]
        assert slanted.shape == (28, 28) and slanted.dtype == np.uint8
        assert np.array_equal(slanted.any(axis=1), bar.any(axis=1))  # rows stay, nothing leaves the frame
        top, middle, bottom = (
            column_centroid(slanted[rows]) for rows in (slice(4, 8), slice(12, 16), slice(20, 24))
        )
        assert middle - top == pytest.approx(bottom - middle, abs=0.1)
        shifts.append(bottom - top)
    largest_shift = np.tan(np.radians(15.0)) * 16
    assert max(np.abs(shifts)) <= largest_shift + 0.1
    assert min(shifts) < -1.0 and max(shifts) > 1.0


def test_style_samples_show_each_enabled_transform_reproducibly(digits):
    images, _ = digits
    samples = sample_style_transforms(images[0], StaticAugmentConfig(), seed=3)
    assert list(samples) == ["stroke width", "slant", "low-res scan"]
    for sample in samples.values():
        assert sample.shape == (28, 28) and sample.dtype == np.uint8
    again = sample_style_transforms(images[0], StaticAugmentConfig(), seed=3)
    assert all(np.array_equal(samples[name], again[name]) for name in samples)
    assert not np.array_equal(samples["low-res scan"], images[0])
    only_slant = StaticAugmentConfig(enable_stroke_width=False, enable_low_resolution_scan=False)
    assert list(sample_style_transforms(images[0], only_slant, seed=3)) == ["slant"]


def test_style_transforms_alone_are_reproducible_for_a_seed(digits):
    images, labels = digits
    config = StaticAugmentConfig(
        **dict.fromkeys(EVERY_FLAG, False) | dict.fromkeys(STYLE_FLAGS, True),
        stroke_width_probability=1.0,
        low_resolution_scan_probability=0.5,
        slant_probability=0.5,
    )
    first, _ = augment_offline(images, labels, config, seed=5)
    second, _ = augment_offline(images, labels, config, seed=5)
    other, _ = augment_offline(images, labels, config, seed=6)
    assert np.array_equal(first, second) and not np.array_equal(first, other)
    assert not np.array_equal(first[64:], images)
