"""The learning rate's schedule: dropped on a plateau by default; with `--learning-rate-schedule cosine`,
annealed every epoch from `--learning-rate` to `--min-learning-rate` over `--epochs`."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from tests.unit.training.tiny_keras import Batches, compile_tiny_model, tiny_model
from training.config import TrainConfig, parse_args
from training.train import build_callbacks, cosine_learning_rate

pytestmark = pytest.mark.unit


def test_the_cosine_schedule_starts_at_the_rate_and_ends_at_the_minimum_on_the_last_epoch():
    rate = cosine_learning_rate(1e-3, 1e-5, epochs=28)
    rates = [rate(epoch, 0.0) for epoch in range(28)]
    assert rates[0] == pytest.approx(1e-3)
    assert rates[-1] == pytest.approx(1e-5)
    assert all(later < earlier for earlier, later in zip(rates, rates[1:], strict=False))


def test_the_cosine_schedule_is_halfway_between_the_ends_halfway_through_and_symmetric_about_it():
    rate = cosine_learning_rate(1e-3, 1e-5, epochs=5)
    assert rate(2, 0.0) == pytest.approx((1e-3 + 1e-5) / 2)
    # The cosine's halves mirror each other: what the first epochs lose, the last ones keep.
    assert rate(1, 0.0) - rate(2, 0.0) == pytest.approx(rate(2, 0.0) - rate(3, 0.0))


def test_a_one_epoch_run_trains_at_its_learning_rate():
    assert cosine_learning_rate(2.5e-4, 1e-5, epochs=1)(0, 0.0) == pytest.approx(2.5e-4)


def test_the_schedule_is_the_plateau_drop_unless_told_otherwise(tmp_path: Path):
    callbacks = build_callbacks(parse_args([]), tmp_path / "best.keras")
    assert parse_args([]).learning_rate_schedule == "plateau"
    assert any(isinstance(callback, keras.callbacks.ReduceLROnPlateau) for callback in callbacks)
    assert not any(isinstance(callback, keras.callbacks.LearningRateScheduler) for callback in callbacks)


def test_the_cosine_schedule_replaces_the_plateau_drop(tmp_path: Path):
    config = parse_args(["--learning-rate-schedule", "cosine"])
    callbacks = build_callbacks(config, tmp_path / "best.keras")
    assert any(isinstance(callback, keras.callbacks.LearningRateScheduler) for callback in callbacks)
    assert not any(isinstance(callback, keras.callbacks.ReduceLROnPlateau) for callback in callbacks)


def test_an_unknown_schedule_is_refused_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--learning-rate-schedule", "linear"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--learning-rate-schedule" in error and "cosine" in error


def test_a_cosine_run_trains_each_epoch_at_its_scheduled_rate_and_records_it(tmp_path: Path):
    config = TrainConfig(
        learning_rate=0.1, min_learning_rate=0.001, epochs=4, learning_rate_schedule="cosine"
    )
    model = tiny_model()
    compile_tiny_model(model, keras.optimizers.SGD(config.learning_rate))
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(64, 4)).astype("float32")
    targets = keras.utils.to_categorical(inputs[:, 0] > 0, 2)
    # Early stopping and the checkpoint watch the validation loss: give them one.
    history = model.fit(
        Batches(inputs, targets, 16),
        validation_data=Batches(inputs, targets, 16),
        epochs=config.epochs,
        callbacks=build_callbacks(config, tmp_path / "best.keras"),
        verbose=0,
    )
    schedule = cosine_learning_rate(0.1, 0.001, 4)
    assert history.history["learning_rate"] == pytest.approx([schedule(epoch, 0.0) for epoch in range(4)])
