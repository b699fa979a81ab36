"""--teacher: each training image's target is its one-hot label blended with the mean of the teachers'
probabilities for it; a teacher is a .keras checkpoint or an exported model's folder, others refused."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from digits.contract import NUM_CLASSES, to_model_inputs
from training.distill import distilled_targets, teacher_probabilities
from training.export import export_savedmodel
from training.model import build_model
from training.weights import InitialWeightsError, require_checkpoints

pytestmark = pytest.mark.unit


def seeded_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return build_model()


def some_images(count: int = 12) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)


def test_the_targets_are_the_mean_of_the_teachers_probabilities(tmp_path: Path):
    first, second = seeded_model(1), seeded_model(2)
    first.save(tmp_path / "first.keras")
    export_savedmodel(second, tmp_path / "digits" / "6")
    images = some_images()
    inputs = to_model_inputs(images)
    expected = (first.predict(inputs, verbose=0) + second.predict(inputs, verbose=0)) / 2

    probabilities = teacher_probabilities((tmp_path / "first.keras", tmp_path / "digits" / "6"), images)

    assert probabilities.shape == (12, NUM_CLASSES) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_the_teacher_weight_blends_one_hot_labels_with_the_teachers_probabilities():
    labels = np.array([3, 7])
    teachers = np.array([[0.0] * 3 + [0.6, 0.4] + [0.0] * 5, [0.1] * 10], dtype=np.float32)
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]

    np.testing.assert_array_equal(distilled_targets(labels, teachers, 0.0), one_hot)
    np.testing.assert_allclose(distilled_targets(labels, teachers, 1.0), teachers)
    blended = distilled_targets(labels, teachers, 0.25)
    np.testing.assert_allclose(blended, 0.75 * one_hot + 0.25 * teachers, rtol=1e-6)
    assert blended.dtype == np.float32
    np.testing.assert_allclose(blended.sum(axis=1), 1.0, rtol=1e-6)
    assert blended[0, 3] == pytest.approx(0.9) and blended[0, 4] == pytest.approx(0.1)


def test_a_teacher_of_another_architecture_is_refused_by_name(tmp_path: Path):
    inputs = keras.Input((28, 28, 1))
    keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs))).save(tmp_path / "other.keras")

    with pytest.raises(InitialWeightsError, match=r"--teacher .*other\.keras: not a checkpoint of this"):
        teacher_probabilities((tmp_path / "other.keras",), some_images())


def test_a_missing_teacher_is_refused_naming_the_flag(tmp_path: Path):
    (tmp_path / "digits" / "6").mkdir(parents=True)

    with pytest.raises(InitialWeightsError, match=r"--teacher .*nowhere\.keras does not exist"):
        require_checkpoints((tmp_path / "nowhere.keras",), flag="--teacher")
    with pytest.raises(InitialWeightsError, match=r"--teacher .*6 is a folder without saved_model\.pb"):
        require_checkpoints((tmp_path / "digits" / "6",), flag="--teacher")
