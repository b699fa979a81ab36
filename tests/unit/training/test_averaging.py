"""Weight averaging keeps the running mean of epoch-end weights and is adopted only if it validates better."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.unit.training.tiny_keras import Batches, fitted_tiny_model, tiny_model
from training.averaging import WeightAveraging, adopt_average_if_better, recalibrate_batch_norm

pytestmark = pytest.mark.unit


def test_averaging_keeps_the_mean_of_epoch_end_weights_from_the_start_epoch():
    model = tiny_model()
    averaging = WeightAveraging(start_epoch=2)
    averaging.set_model(model)
    for epoch, value in enumerate([10.0, 1.0, 2.0, 6.0]):
        for variable in model.trainable_weights:
            variable.assign(np.full(variable.shape, value, dtype="float32"))
        averaging.on_epoch_end(epoch)
    assert averaging.epochs_averaged == 3
    for average in averaging.averaged_weights:
        assert np.allclose(average, 3.0)  # mean of 1, 2, 6; epoch 1 (10.0) left out


def test_recalibration_sets_moving_statistics_to_the_data_mean():
    model = tiny_model()
    inputs = np.random.default_rng(0).normal(5.0, 2.0, size=(256, 4)).astype("float32")
    batches = Batches(inputs, np.eye(2, dtype="float32")[np.zeros(256, dtype=int)], batch_size=32)
    recalibrate_batch_norm(model, batches, max_batches=8)
    dense_outputs = keras.Model(model.input, model.get_layer("dense").output)(inputs).numpy()
    assert np.allclose(model.get_layer("bn").moving_mean.numpy(), dense_outputs.mean(axis=0), atol=0.05)
    assert model.get_layer("bn").momentum == 0.99  # restored afterwards


@pytest.fixture
def trained_model_and_batches():
    model, batches = fitted_tiny_model(sample_count=64, batch_size=32)
    # Precondition: clearly better than the uniform guess (log 2 = 0.69) that all-zero weights give.
    assert model.evaluate(batches, verbose=0) < 0.3
    return model, batches


def zero_average(model: keras.Model) -> WeightAveraging:
    averaging = WeightAveraging(start_epoch=1)
    averaging.set_model(model)
    averaging.epochs_averaged = 1
    averaging.averaged_weights = [np.zeros(v.shape, dtype="float32") for v in model.trainable_weights]
    return averaging


def test_average_is_rejected_when_it_validates_worse_and_the_best_weights_stay(trained_model_and_batches):
    model, batches = trained_model_and_batches
    best = [weights.copy() for weights in model.get_weights()]
    outcome = adopt_average_if_better(model, zero_average(model), batches, batches)
    assert outcome["adopted"] is False and outcome["val_loss_averaged"] > outcome["val_loss_best_epoch"]
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), best, strict=True))


def test_average_is_adopted_when_it_validates_better(trained_model_and_batches):
    model, batches = trained_model_and_batches
    good = [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_weights]
    averaging = zero_average(model)
    averaging.averaged_weights = good
    for variable in model.trainable_weights:
        variable.assign(np.zeros(variable.shape, dtype="float32"))
    outcome = adopt_average_if_better(model, averaging, batches, batches)
    assert outcome["adopted"] is True
    for variable, expected in zip(model.trainable_weights, good, strict=True):
        assert np.array_equal(keras.ops.convert_to_numpy(variable), expected)
