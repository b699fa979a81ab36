"""Which weights a run ends with: batch-norm statistics from clean images only if they validate better,
and a fine-tune never ends worse on validation than the weights it started from."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.unit.training.tiny_keras import Batches, fitted_tiny_model
from training.train import _keep_the_start_if_better, _recalibrate_if_better

pytestmark = pytest.mark.unit


@pytest.fixture
def model_and_clean_batches() -> tuple[keras.Model, Batches]:
    """A model fitted to clean inputs, whose batch-norm statistics were then spoiled (as augmented
    batches spoil them: the layer saw inputs shifted by +4)."""
    model, clean = fitted_tiny_model(sample_count=256, batch_size=64)
    shifted = Batches(clean.inputs + 4.0, clean.targets, batch_size=64)
    norm = model.get_layer("bn")
    norm.momentum = 0.0  # one batch sets the moving statistics
    model(shifted[0][0], training=True)
    norm.momentum = 0.99
    return model, clean


def test_statistics_from_clean_images_are_adopted_when_they_validate_better(model_and_clean_batches):
    model, clean = model_and_clean_batches

    outcome = _recalibrate_if_better(model, clean, clean)

    assert outcome["adopted"] is True
    assert outcome["val_loss_recalibrated"] < outcome["val_loss_trained_statistics"]
    assert outcome["val_loss"] == pytest.approx(float(model.evaluate(clean, verbose=0)), abs=1e-5)


def test_statistics_are_left_alone_when_the_new_ones_validate_worse(model_and_clean_batches):
    model, clean = model_and_clean_batches
    _recalibrate_if_better(model, clean, clean)  # good statistics now
    before = [weights.copy() for weights in model.get_weights()]
    unlike_validation = Batches(clean.inputs * 3.0 - 2.0, clean.targets, batch_size=64)

    outcome = _recalibrate_if_better(model, unlike_validation, clean)

    assert outcome["adopted"] is False and outcome["val_loss"] == outcome["val_loss_trained_statistics"]
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True))


def test_the_start_is_restored_when_fine_tuning_made_validation_worse(model_and_clean_batches):
    model, _ = model_and_clean_batches
    start = [weights.copy() for weights in model.get_weights()]
    model.set_weights([np.zeros_like(weights) for weights in start])

    assert _keep_the_start_if_better(model, start, {"val_loss_start": 0.1, "val_loss_end": 0.2}) is True

    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), start, strict=True))


def test_the_fine_tuned_weights_stay_when_they_validate_better(model_and_clean_batches):
    model, _ = model_and_clean_batches
    fine_tuned = [weights.copy() for weights in model.get_weights()]
    start = [np.zeros_like(weights) for weights in fine_tuned]

    assert _keep_the_start_if_better(model, start, {"val_loss_start": 0.2, "val_loss_end": 0.1}) is False

    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), fine_tuned, strict=True))
