"""A tiny Keras classifier with batch normalization, and its data, for the weight-choice tests."""

from __future__ import annotations

import keras
import numpy as np


def tiny_model() -> keras.Model:
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="dense")(inputs)
    hidden = keras.layers.BatchNormalization(name="bn")(hidden)
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(hidden)
    model = keras.Model(inputs, outputs)
    compile_tiny_model(model, "sgd")
    return model


def compile_tiny_model(model: keras.Model, optimizer: str | keras.optimizers.Optimizer) -> None:
    # Compiled as training.train.compile_model compiles the digit model: with its "accuracy" metric.
    model.compile(
        optimizer=optimizer,
        loss="categorical_crossentropy",
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


class Batches(keras.utils.PyDataset):
    def __init__(self, inputs: np.ndarray, targets: np.ndarray, batch_size: int) -> None:
        super().__init__()
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size

    def __len__(self) -> int:
        return len(self.inputs) // self.batch_size

    def __getitem__(self, index: int):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.inputs[rows], self.targets[rows]


def fitted_tiny_model(sample_count: int, batch_size: int) -> tuple[keras.Model, Batches]:
    """A tiny model fitted (seeded) to tell the sign of the first of 4 normal inputs; and its data."""
    keras.utils.set_random_seed(0)
    model = tiny_model()
    compile_tiny_model(model, keras.optimizers.Adam(0.05))
    inputs = np.random.default_rng(1).normal(size=(sample_count, 4)).astype("float32")
    targets = np.eye(2, dtype="float32")[(inputs[:, 0] > 0).astype(int)]
    batches = Batches(inputs, targets, batch_size=batch_size)
    model.fit(batches, epochs=40, verbose=0)
    return model, batches
