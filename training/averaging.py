"""Weights of the last epochs -> their average (stochastic weight averaging), if it validates better.

Averaging the weights visited at a low, constant learning rate lands nearer the middle of a wide
minimum than any single epoch's weights, which usually generalizes a little better (Izmailov et al.,
2018). It is still one model of the same architecture: no ensemble, no extra inference cost. The
batch-norm statistics of averaged weights are stale, so they are re-estimated on training batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import keras
import numpy as np

logger = logging.getLogger(__name__)


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


def validation_loss(model: keras.Model, validation_batches: keras.utils.PyDataset) -> float:
    """The loss Keras reports as val_loss (cross-entropy plus the weight penalties) on these batches."""
    return float(model.evaluate(validation_batches, verbose=0, return_dict=True)["loss"])


def adopt_if_better(
    model: keras.Model, change: Callable[[], None], validation_batches: keras.utils.PyDataset, what: str
) -> tuple[float, float, bool]:
    """Applies `change` to the model's weights and keeps it only if it lowers the validation loss.

    Args:
        change: modifies the model's weights in place.
        what: names the change in the log line.

    Returns:
        The validation loss before and after the change, and whether the change was kept.
    """
    weights = model.get_weights()
    loss_before = validation_loss(model, validation_batches)
    change()
    loss_after = validation_loss(model, validation_batches)
    is_adopted = loss_after < loss_before
    if not is_adopted:
        model.set_weights(weights)
    logger.info(
        "%s: val_loss %.4f -> %.4f (%s)",
        what,
        loss_before,
        loss_after,
        "adopted" if is_adopted else "not adopted",
    )
    return loss_before, loss_after, is_adopted


def adopt_average_if_better(
    model: keras.Model,
    averaging: WeightAveraging,
    recalibration_batches: keras.utils.PyDataset,
    validation_batches: keras.utils.PyDataset,
) -> dict[str, float | int | bool]:
    """Swaps in the averaged weights when they lower the validation loss; otherwise changes nothing.

    Args:
        recalibration_batches: training batches to re-estimate the batch-norm statistics on, all of
            them (un-augmented batches come unshuffled: a first few could hold one source only).

    Returns:
        What happened, for the model card: epochs averaged, both validation losses, whether adopted.
    """
    if averaging.averaged_weights is None:
        return {"epochs_averaged": 0, "adopted": False}

    def swap_in_the_average() -> None:
        for variable, average in zip(model.trainable_weights, averaging.averaged_weights, strict=True):
            variable.assign(average)
        recalibrate_batch_norm(model, recalibration_batches, len(recalibration_batches))

    best_loss, averaged_loss, is_adopted = adopt_if_better(
        model,
        swap_in_the_average,
        validation_batches,
        f"weight averaging over {averaging.epochs_averaged} epochs",
    )
    return {
        "epochs_averaged": averaging.epochs_averaged,
        "val_loss_best_epoch": round(best_loss, 5),
        "val_loss_averaged": round(averaged_loss, 5),
        "adopted": is_adopted,
    }
