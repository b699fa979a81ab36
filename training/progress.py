"""A fitting model's epochs -> one log line each: its metrics, its learning rate and its wall time.

Keras's own progress output is off (`verbose=0`): beside these lines it would say every epoch twice.
At a terminal a batch counter shows a long epoch moves, erased before the epoch's line.
"""

from __future__ import annotations

import logging
import time
from typing import TextIO

import keras

logger = logging.getLogger(__name__)


# The metrics of an epoch's line, in this order; any others follow them, sorted.
EPOCH_LINE_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def format_epoch_line(
    epoch: int, epochs: int, logs: dict[str, float], learning_rate: float, seconds: float
) -> str:
    """The one line of an epoch, e.g. "epoch 3/40: loss=0.1234 accuracy=0.9612 val_loss=0.0456
    val_accuracy=0.9871 learning_rate=1.00e-03 time=63.2s" (epoch 1-based; the learning rate once, the
    one the epoch trained with, even where Keras puts it among the metrics)."""
    metrics = {name: value for name, value in logs.items() if name not in ("learning_rate", "lr")}
    names = [name for name in EPOCH_LINE_METRICS if name in metrics]
    names += sorted(set(metrics) - set(names))
    shown = " ".join(f"{name}={float(metrics[name]):.4f}" for name in names)
    return f"epoch {epoch}/{epochs}: {shown} learning_rate={learning_rate:.2e} time={seconds:.1f}s"


class EpochLog(keras.callbacks.Callback):
    """One log line per epoch (`format_epoch_line`): the only per-epoch output, Keras's own is off."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started_at = time.perf_counter()
        # Read before the epoch: ReduceLROnPlateau lowers it at the end of the epoch, for the next one.
        self.learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self.started_at
        epochs = int(self.params.get("epochs") or epoch + 1)
        logger.info(format_epoch_line(epoch + 1, epochs, logs or {}, self.learning_rate, seconds))


class BatchProgress(keras.callbacks.Callback):
    """At a terminal, "epoch 3/40: batch 120/176" on one line that each batch rewrites and the epoch's
    end erases, so that a long epoch shows it moves and leaves only its log line behind."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        self.stream.write(f"\repoch {self.epoch}/{epochs}: batch {batch + 1}/{steps}")
        self.stream.flush()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.stream.write("\r\x1b[K")  # back to the line's start and erase it
        self.stream.flush()
