"""(model, train/validation DigitSets, TrainConfig) -> trained model + History, on a GPU or the CPU.

Backend-agnostic Keras 3: the same code trains under TensorFlow, JAX or PyTorch. Only the choice of
distribution strategy looks at the backend, because `tf.distribute` exists only for TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from pathlib import Path

import keras
import numpy as np

from digits.contract import NUM_CLASSES, to_model_inputs
from training.augment import build_realtime_augmenter
from training.averaging import (
    WeightAveraging,
    adopt_average_if_better,
    adopt_if_better,
    recalibrate_batch_norm,
)
from training.config import TrainConfig
from training.datasets import DigitSet

logger = logging.getLogger(__name__)


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled batches (B, 28, 28, 1) float32 in [0, 1] with one-hot labels (B, 10), warped afresh."""

    def __init__(self, digits: DigitSet, config: TrainConfig, *, is_training: bool) -> None:
        super().__init__()
        self.images = digits.images
        self.labels = keras.utils.to_categorical(digits.labels, NUM_CLASSES).astype("float32")
        self.batch_size = config.batch_size
        self.is_training = is_training
        self.random = np.random.default_rng(config.effective_augment_seed)
        self.order = np.arange(len(self.images))
        self.augmenter = (
            build_realtime_augmenter(config.realtime_augment, config.effective_augment_seed)
            if is_training
            else None
        )
        if is_training:
            self.random.shuffle(self.order)

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        batch = to_model_inputs(self.images[rows])
        if self.augmenter is not None and self.augmenter.layers:
            warped = self.augmenter(batch, training=True)
            batch = np.clip(keras.ops.convert_to_numpy(warped), 0.0, 1.0)
        return batch, self.labels[rows]

    def on_epoch_end(self) -> None:
        if self.is_training:
            self.random.shuffle(self.order)


class EpochLog(keras.callbacks.Callback):
    """One log line per epoch with every metric, the learning rate and the epoch's wall time."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started_at = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        metrics = " ".join(f"{name}={value:.4f}" for name, value in sorted(logs.items()))
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        elapsed_seconds = time.perf_counter() - self.started_at
        logger.info("epoch %d: %s lr=%.2e time=%.1fs", epoch + 1, metrics, learning_rate, elapsed_seconds)


def describe_hardware() -> tuple[str, contextlib.AbstractContextManager]:
    """Picks where to train and says so.

    Returns:
        A human description ("2 GPUs (MirroredStrategy)", "1 GPU", "CPU") and the context manager
        under which the model must be built and compiled (a strategy scope, or a no-op).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) > 1:
            strategy = tf.distribute.MirroredStrategy()
            return f"{len(gpus)} GPUs, MirroredStrategy (tensorflow)", strategy.scope()
        return ("1 GPU (tensorflow)" if gpus else "CPU (tensorflow)"), contextlib.nullcontext()
    if backend == "jax":
        import jax

        devices = jax.devices()
        return f"{len(devices)} x {devices[0].platform.upper()} (jax)", contextlib.nullcontext()
    if backend == "torch":
        import torch

        device = "GPU" if torch.cuda.is_available() else "CPU"
        return f"{device} (torch)", contextlib.nullcontext()
    return f"{backend}", contextlib.nullcontext()


def compile_model(model: keras.Model, config: TrainConfig) -> None:
    """Adam with gradient clipping, categorical cross-entropy with optional label smoothing."""
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.gradient_clip_norm),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def build_callbacks(config: TrainConfig, checkpoint_path: Path) -> list[keras.callbacks.Callback]:
    """Early stopping on validation loss (restoring the best weights), checkpointing, LR on plateau."""
    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=config.early_stopping_patience_epochs,
            restore_best_weights=True,
        ),
        keras.callbacks.ModelCheckpoint(str(checkpoint_path), monitor="val_loss", save_best_only=True),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=config.reduce_lr_factor,
            patience=config.reduce_lr_patience_epochs,
            min_lr=config.min_learning_rate,
        ),
        EpochLog(),
    ]


def train(
    model: keras.Model,
    train_digits: DigitSet,
    original_digits: DigitSet,
    validation_digits: DigitSet,
    config: TrainConfig,
    checkpoint_path: Path,
) -> tuple[keras.callbacks.History, dict]:
    """Fits a compiled model; on return it holds the weights that validated best of: the best epoch,
    the average of the last epochs (with `config.average_last_epochs`), and, when fine-tuning, the
    weights it started from. `checkpoint_path` then holds those weights too.

    Batch-norm layers learn their moving statistics from augmented batches (inverted, noisy, cut
    images among them), while the service feeds them clean, normalized digits. So the statistics of
    every candidate are also re-estimated on the un-augmented training images, and kept when that
    lowers the validation loss (measured here: 0.0266 -> 0.0252 for the shipped model 3).

    Args:
        model: compiled with `compile_model` (inside the strategy scope when there is one), holding
            the initial weights when `config.initial_weights` names checkpoints.
        train_digits: training images, already including the static augmentation copies.
        original_digits: the same training images before augmentation.
        validation_digits: never augmented, used for early stopping and the learning-rate schedule.
        config: epochs, batch size, seeds, patience, weight averaging, initial weights.
        checkpoint_path: a `.keras` file where the best model so far is saved during training.

    Returns:
        The Keras History (per-epoch loss, accuracy, val_loss, val_accuracy, learning_rate) and, for
        the model card, what statistics re-estimation, weight averaging and the fine-tuning start did.
    """
    keras.utils.set_random_seed(config.effective_augment_seed)
    training_batches = AugmentedBatches(train_digits, config, is_training=True)
    original_batches = AugmentedBatches(original_digits, config, is_training=False)
    validation_batches = AugmentedBatches(validation_digits, config, is_training=False)
    notes: dict = {}
    starting_weights = None
    if config.initial_weights:
        notes["initial_weights"] = {
            "checkpoints": [str(path) for path in config.initial_weights],
            "val_loss_start": _recalibrate_if_better(model, original_batches, validation_batches)["val_loss"],
        }
        starting_weights = model.get_weights()
        logger.info("fine-tuning starts at val_loss %.4f", notes["initial_weights"]["val_loss_start"])
    callbacks = build_callbacks(config, checkpoint_path)
    averaging = None
    if config.average_last_epochs:
        averaging = WeightAveraging(start_epoch=max(1, config.epochs - config.average_last_epochs + 1))
        callbacks.append(averaging)
    history = model.fit(
        training_batches,
        validation_data=validation_batches,
        epochs=config.epochs,
        callbacks=callbacks,
        # A progress bar helps at a terminal; in a log file one line per epoch reads better.
        verbose=1 if sys.stdout.isatty() else 2,
    )
    if averaging is not None:
        notes["weight_averaging"] = adopt_average_if_better(
            model, averaging, original_batches, validation_batches
        )
    notes["batch_norm_recalibration"] = _recalibrate_if_better(model, original_batches, validation_batches)
    if starting_weights is not None:
        note = notes["initial_weights"]
        note["val_loss_end"] = notes["batch_norm_recalibration"]["val_loss"]
        note["kept_start"] = _keep_the_start_if_better(model, starting_weights, note)
    # The checkpoint must hold what gets exported, so that a later fine-tune starts from it.
    model.save(checkpoint_path)
    return history, notes


def _recalibrate_if_better(
    model: keras.Model, original_batches: keras.utils.PyDataset, validation_batches: keras.utils.PyDataset
) -> dict:
    """Re-estimates batch-norm statistics on every un-augmented training batch; keeps them if better.

    Returns:
        For the model card: both validation losses, whether the new statistics were adopted, and
        `val_loss`, the validation loss of the weights the model now holds.
    """
    loss_before, loss_after, is_adopted = adopt_if_better(
        model,
        lambda: recalibrate_batch_norm(model, original_batches, len(original_batches)),
        validation_batches,
        "batch-norm statistics from un-augmented images",
    )
    return {
        "val_loss_trained_statistics": round(loss_before, 5),
        "val_loss_recalibrated": round(loss_after, 5),
        "adopted": is_adopted,
        "val_loss": round(min(loss_before, loss_after), 5),
    }


def _keep_the_start_if_better(model: keras.Model, starting_weights: list, note: dict) -> bool:
    """Fine-tuning never ends worse on validation than where it started: restores the start if so.

    Args:
        note: holds `val_loss_start` and `val_loss_end`, the validation losses of both.

    Returns:
        Whether the starting weights were restored.
    """
    is_start_better = note["val_loss_start"] < note["val_loss_end"]
    if is_start_better:
        model.set_weights(starting_weights)
    logger.info(
        "fine-tuning: val_loss %.4f at the start, %.4f at the end -> %s",
        note["val_loss_start"],
        note["val_loss_end"],
        "kept the starting weights" if is_start_better else "kept the fine-tuned weights",
    )
    return is_start_better
