"""--initial-weights: one checkpoint's weights, or the mean of several (a uniform soup); a checkpoint is a
run's .keras file or an exported model's folder (a served version whose run is gone); others refused."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from training.export import export_savedmodel
from training.model import build_model
from training.weights import InitialWeightsError, load_initial_weights, require_checkpoints

pytestmark = pytest.mark.unit


def seeded_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = build_model()
    # Random batch-norm statistics too, so that their averaging is checked as well.
    model.set_weights([weights + np.float32(seed) for weights in model.get_weights()])
    return model


def save_checkpoint(path: Path, seed: int) -> list[np.ndarray]:
    model = seeded_model(seed)
    model.save(path)
    return model.get_weights()


def export_model(version_dir: Path, seed: int) -> list[np.ndarray]:
    model = seeded_model(seed)
    export_savedmodel(model, version_dir)
    return model.get_weights()


def test_one_checkpoint_gives_its_weights_exactly(tmp_path: Path):
    expected = save_checkpoint(tmp_path / "a.keras", seed=1)
    model = build_model()

    load_initial_weights(model, (tmp_path / "a.keras",))

    for loaded, saved in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(loaded, saved)


def test_several_checkpoints_give_the_mean_of_every_weight(tmp_path: Path):
    first = save_checkpoint(tmp_path / "a.keras", seed=1)
    second = save_checkpoint(tmp_path / "b.keras", seed=2)
    third = save_checkpoint(tmp_path / "c.keras", seed=3)
    model = build_model()

    load_initial_weights(model, (tmp_path / "a.keras", tmp_path / "b.keras", tmp_path / "c.keras"))

    for loaded, *saved in zip(model.get_weights(), first, second, third, strict=True):
        assert loaded.dtype == saved[0].dtype
        np.testing.assert_allclose(loaded, (saved[0] + saved[1] + saved[2]) / 3, rtol=1e-5, atol=1e-5)


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path: Path):
    inputs = keras.Input((28, 28, 1))
    keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs))).save(tmp_path / "other.keras")

    with pytest.raises(InitialWeightsError, match=r"other\.keras: not a checkpoint of this model"):
        load_initial_weights(build_model(), (tmp_path / "other.keras",))


def test_a_file_that_is_no_checkpoint_is_refused_by_name(tmp_path: Path):
    (tmp_path / "notes.keras").write_text("not a zip archive")

    with pytest.raises(InitialWeightsError, match=r"notes\.keras: not a checkpoint of this model"):
        load_initial_weights(build_model(), (tmp_path / "notes.keras",))


def test_a_missing_checkpoint_is_refused_by_name(tmp_path: Path):
    (tmp_path / "a.keras").write_text("present")

    with pytest.raises(InitialWeightsError, match=r"--initial-weights .*b\.keras does not exist"):
        require_checkpoints((tmp_path / "a.keras", tmp_path / "b.keras"))


def test_an_exported_model_folder_gives_the_weights_it_serves_exactly(tmp_path: Path):
    expected = export_model(tmp_path / "digits" / "7", seed=4)
    model = build_model()

    load_initial_weights(model, (tmp_path / "digits" / "7",))

    for loaded, exported in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(loaded, exported)


def test_an_exported_model_and_a_checkpoint_are_averaged_alike(tmp_path: Path):
    exported = export_model(tmp_path / "digits" / "7", seed=1)
    saved = save_checkpoint(tmp_path / "b.keras", seed=2)
    model = build_model()

    load_initial_weights(model, (tmp_path / "digits" / "7", tmp_path / "b.keras"))

    for loaded, first, second in zip(model.get_weights(), exported, saved, strict=True):
        np.testing.assert_allclose(loaded, (first + second) / 2, rtol=1e-5, atol=1e-5)


def test_an_exported_model_of_another_architecture_is_refused_by_name(tmp_path: Path):
    inputs = keras.Input((28, 28, 1), name="image")
    other = keras.Model(inputs, keras.layers.Dense(10, name="probs")(keras.layers.Flatten()(inputs)))
    export_savedmodel(other, tmp_path / "other")

    refusal = r"other: not a checkpoint of this model \(no weight block1a"
    with pytest.raises(InitialWeightsError, match=refusal):
        load_initial_weights(build_model(), (tmp_path / "other",))


def test_a_folder_that_holds_no_exported_model_is_refused_by_name(tmp_path: Path):
    (tmp_path / "digits" / "8").mkdir(parents=True)

    refusal = r"--initial-weights .*8 is a folder without saved_model\.pb"
    with pytest.raises(InitialWeightsError, match=refusal):
        require_checkpoints((tmp_path / "digits" / "8",))


def test_an_exported_model_without_tensorflow_is_refused_with_what_to_give_instead(tmp_path, monkeypatch):
    export_model(tmp_path / "digits" / "7", seed=1)
    model = build_model()
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as where only the JAX backend is installed

    with pytest.raises(
        InitialWeightsError, match=r"7: not a checkpoint .*needs TensorFlow; give its run's \.keras"
    ):
        load_initial_weights(model, (tmp_path / "digits" / "7",))
