"""Weight averaging keeps the running mean of epoch-end weights and is adopted only if it validates better."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.averaging import WeightAveraging, adopt_average_if_better, recalibrate_batch_norm

pytestmark = pytest.mark.unit


def tiny_model() -> keras.Model:
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="dense")(inputs)
    hidden = keras.layers.BatchNormalization(name="bn")(hidden)
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    return model


class Batches(keras.utils.PyDataset):
    def __init__(self, inputs: np.ndarray, targets: np.ndarray, batch_size: int) -> None:
        super().__init__()
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size

    def __len__(self) -> int:
        return len(self.inputs) // self.batch_size

    def __getitem__(self, index: int):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.inputs[rows], self.targets[rows]


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
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")
    inputs = np.random.default_rng(1).normal(size=(64, 4)).astype("float32")
    targets = np.eye(2, dtype="float32")[(inputs[:, 0] > 0).astype(int)]
    batches = Batches(inputs, targets, batch_size=32)
    model.fit(batches, epochs=40, verbose=0)
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
