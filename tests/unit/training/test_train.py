"""Training batches give each digit its one-hot target and each non-digit outlier the uniform one,
shuffled together; validation batches hold digits only."""

from __future__ import annotations

import numpy as np
import pytest

from digits.contract import NUM_CLASSES
from training.config import RealtimeAugmentConfig, TrainConfig
from training.datasets import DigitSet
from training.train import AugmentedBatches, TrainingBatches

pytestmark = pytest.mark.unit

OUTLIER_LEVEL = 255  # outlier images are filled with it; digit i with 10 * label + 5, so rows tell apart


@pytest.fixture
def config() -> TrainConfig:
    # Without warps, a batch's images are the stored ones and each row can be traced to its source.
    unwarped = RealtimeAugmentConfig(enable_rotation=False, enable_shift=False, enable_zoom=False)
    return TrainConfig(batch_size=16, realtime_augment=unwarped)


def marked_digits(count: int) -> DigitSet:
    labels = np.arange(count) % NUM_CLASSES
    images = np.broadcast_to((10 * labels + 5).astype(np.uint8)[:, None, None], (count, 28, 28)).copy()
    return DigitSet("marked", images, labels)


def outlier_images(count: int) -> np.ndarray:
    return np.full((count, 28, 28), OUTLIER_LEVEL, dtype=np.uint8)


def whole_epoch(batches: AugmentedBatches) -> tuple[np.ndarray, np.ndarray]:
    pairs = [batches[index] for index in range(len(batches))]
    return np.concatenate([images for images, _ in pairs]), np.concatenate([targets for _, targets in pairs])


def test_outlier_rows_get_the_uniform_target_and_digit_rows_their_one_hot_label(config):
    batches = AugmentedBatches(marked_digits(50), config, is_training=True, outlier_images=outlier_images(12))

    images, targets = whole_epoch(batches)

    levels = np.rint(images[:, 0, 0, 0] * 255).astype(int)
    is_outlier = levels == OUTLIER_LEVEL
    assert len(images) == 62 and is_outlier.sum() == 12
    np.testing.assert_array_equal(targets[is_outlier], np.full((12, NUM_CLASSES), 0.1, dtype=np.float32))
    expected_one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[(levels[~is_outlier] - 5) // 10]
    np.testing.assert_array_equal(targets[~is_outlier], expected_one_hot)
    assert targets.dtype == np.float32 and np.allclose(targets.sum(axis=1), 1.0)


def test_outliers_are_shuffled_in_among_the_digits(config):
    batches = AugmentedBatches(
        marked_digits(200), config, is_training=True, outlier_images=outlier_images(40)
    )

    images, _ = whole_epoch(batches)

    positions = np.flatnonzero(np.rint(images[:, 0, 0, 0] * 255) == OUTLIER_LEVEL)
    assert positions.min() < 40 and positions.max() >= 200  # neither all first nor all last


def test_without_outliers_the_batches_are_the_digits_alone(config):
    for outliers in (None, outlier_images(0)):
        batches = AugmentedBatches(marked_digits(30), config, is_training=True, outlier_images=outliers)

        images, targets = whole_epoch(batches)

        assert len(images) == 30 and set(np.unique(targets)) == {0.0, 1.0}


def test_validation_holds_digits_only_and_training_and_clean_batches_the_outliers(config):
    digits = marked_digits(40)
    batches = TrainingBatches.from_digits(digits, digits, marked_digits(20), config, outlier_images(8))

    validation_images, validation_targets = whole_epoch(batches.validation)
    _, training_targets = whole_epoch(batches.training)
    _, clean_targets = whole_epoch(batches.clean)

    assert len(validation_images) == 20 and set(np.unique(validation_targets)) == {0.0, 1.0}
    for targets in (training_targets, clean_targets):
        assert np.count_nonzero(np.all(targets == np.float32(0.1), axis=1)) == 8


def test_clean_batches_hold_outliers_in_the_training_mix_spread_among_the_digits(config):
    augmented, originals = marked_digits(200), marked_digits(100)  # one static copy per image
    batches = TrainingBatches.from_digits(augmented, originals, marked_digits(20), config, outlier_images(40))

    clean_images, clean_targets = whole_epoch(batches.clean)

    is_outlier = np.all(clean_targets == np.float32(0.1), axis=1)
    assert is_outlier.sum() == 20  # 40 outliers for 200 training images: 20 for the 100 clean ones
    positions = np.flatnonzero(is_outlier)
    assert positions.min() < 20 and positions.max() >= 100  # mixed in, not all at the end
    again, _ = whole_epoch(
        TrainingBatches.from_digits(augmented, originals, marked_digits(20), config, outlier_images(40)).clean
    )
    np.testing.assert_array_equal(clean_images, again)  # the same order every time: seeded


def test_given_targets_replace_the_one_hot_labels_in_training_batches_only(config):
    digits = marked_digits(40)
    soft = np.full((40, NUM_CLASSES), 0.05, dtype=np.float32)
    soft[np.arange(40), digits.labels] = 0.55  # each row its own label's 0.55, the rest 0.05
    batches = TrainingBatches.from_digits(
        digits, digits, marked_digits(20), config, outlier_images(8), train_targets=soft
    )

    training_images, training_targets = whole_epoch(batches.training)
    _, validation_targets = whole_epoch(batches.validation)

    levels = np.rint(training_images[:, 0, 0, 0] * 255).astype(int)
    is_digit = levels != OUTLIER_LEVEL
    expected = np.full((is_digit.sum(), NUM_CLASSES), 0.05, dtype=np.float32)
    expected[np.arange(is_digit.sum()), (levels[is_digit] - 5) // 10] = 0.55  # travelled with its image
    np.testing.assert_array_equal(training_targets[is_digit], expected)
    assert np.all(training_targets[~is_digit] == np.float32(0.1))  # outliers stay uniform
    assert set(np.unique(validation_targets)) == {0.0, 1.0}  # validation compares with the labels alone


def test_targets_of_another_length_than_the_digits_are_refused(config):
    with pytest.raises(ValueError, match=r"30 digits, targets of shape \(29, 10\)"):
        AugmentedBatches(
            marked_digits(30), config, is_training=True, digit_targets=np.zeros((29, NUM_CLASSES), np.float32)
        )
