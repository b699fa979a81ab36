"""Weight averaging keeps the running mean of epoch-end weights; swapped in, it gets fresh batch-norm
statistics. Whether it is kept is the weight choice's to decide (test_final_weights.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.unit.training.tiny_keras import Batches, tiny_model
from training.averaging import WeightAveraging, recalibrate_batch_norm, swap_in_average

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


def test_swapping_in_the_average_sets_the_trainable_weights_and_leaves_the_statistics():
    model = tiny_model()
    statistics_before = model.get_layer("bn").moving_mean.numpy().copy()
    averaging = WeightAveraging(start_epoch=1)
    averaging.averaged_weights = [np.full(v.shape, 0.5, dtype="float32") for v in model.trainable_weights]

    swap_in_average(model, averaging)

    for variable in model.trainable_weights:
        assert np.array_equal(keras.ops.convert_to_numpy(variable), np.full(variable.shape, 0.5))
    # Re-estimating them is the weight choice's job, scored both ways (test_final_weights.py).
    assert np.array_equal(model.get_layer("bn").moving_mean.numpy(), statistics_before)
