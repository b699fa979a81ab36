"""Weights of the last epochs -> their average (stochastic weight averaging), a final-weights candidate.

Averaging the weights visited at a low, constant learning rate lands nearer the middle of a wide
minimum than any single epoch's weights, which usually generalizes a little better (Izmailov et al.,
2018). It is still one model of the same architecture: no ensemble, no extra inference cost. The
batch-norm statistics of averaged weights are stale, so they are re-estimated on training batches.
training/weights.py keeps the average only if it validates best of the candidates.
"""

from __future__ import annotations

import keras
import numpy as np


class WeightAveraging(keras.callbacks.Callback):
    """Keeps the running mean of the trainable weights at the end of every epoch from `start_epoch` on.

    Args:
        start_epoch: first epoch (1-based) whose weights enter the average.
    """

    def __init__(self, start_epoch: int) -> None:
        super().__init__()
        self.start_epoch = start_epoch
        self.epochs_averaged = 0
        self.averaged_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 < self.start_epoch:
            return
        current = [keras.ops.convert_to_numpy(variable) for variable in self.model.trainable_weights]
        self.epochs_averaged += 1
        if self.averaged_weights is None:
            self.averaged_weights = current
            return
        # Running mean: avoids keeping every epoch's weights in memory.
        for average, weights in zip(self.averaged_weights, current, strict=True):
            average += (weights - average) / self.epochs_averaged


def recalibrate_batch_norm(model: keras.Model, batches: keras.utils.PyDataset, max_batches: int) -> None:
    """Re-estimates every BatchNormalization layer's moving mean and variance from training batches.

    Each batch gets the momentum k/(k+1), so the moving statistics end as the plain mean over the
    batches seen instead of an exponential average dominated by the last few.
    """
    norm_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    original_momenta = [layer.momentum for layer in norm_layers]
    try:
        for index in range(min(max_batches, len(batches))):
            for layer in norm_layers:
                layer.momentum = index / (index + 1)
            model(batches[index][0], training=True)
    finally:
        for layer, momentum in zip(norm_layers, original_momenta, strict=True):
            layer.momentum = momentum


def swap_in_average(model: keras.Model, averaging: WeightAveraging) -> None:
    """Sets the model's trainable weights to their average; the batch-norm statistics stay the last
    epoch's, stale for the average: `training.weights.score_weights` re-estimates them on clean batches.

    Args:
        averaging: holds `averaged_weights`, one array per trainable weight of the model.
    """
    for variable, average in zip(model.trainable_weights, averaging.averaged_weights, strict=True):
        variable.assign(average)
