"""(model, train/validation DigitSets, TrainConfig) -> the fitted model + History, on a GPU or the CPU.

Backend-agnostic Keras 3: the same code trains under TensorFlow, JAX or PyTorch. Only the choice of
distribution strategy looks at the backend, because `tf.distribute` exists only for TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from digits.contract import NUM_CLASSES, to_model_inputs
from training.augment import build_realtime_augmenter
from training.averaging import WeightAveraging
from training.config import TrainConfig
from training.datasets import DigitSet
from training.progress import BatchProgress, EpochLog

logger = logging.getLogger(__name__)


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled batches (B, 28, 28, 1) float32 in [0, 1] with targets (B, 10), warped afresh: one-hot for
    the digits (or the given targets, e.g. distilled ones), uniform (0.1 each) for the non-digit
    outliers appended after them."""

    def __init__(
        self,
        digits: DigitSet,
        config: TrainConfig,
        *,
        is_training: bool,
        outlier_images: np.ndarray | None = None,
        digit_targets: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if digit_targets is None:
            digit_targets = keras.utils.to_categorical(digits.labels, NUM_CLASSES).astype("float32")
        elif digit_targets.shape != (len(digits), NUM_CLASSES):
            raise ValueError(f"{len(digits)} digits, targets of shape {digit_targets.shape}")
        self.images, self.targets = digits.images, digit_targets
        if outlier_images is not None and len(outlier_images):
            # Outlier exposure: against a uniform target, the cross-entropy teaches the model to spread
            # its belief over the digits for a non-digit instead of picking one. (Training accuracy
            # counts such a row right when the model says 0, argmax of a tie: read validation's.)
            uniform = np.full((len(outlier_images), NUM_CLASSES), 1.0 / NUM_CLASSES, dtype="float32")
            self.images = np.concatenate([digits.images, outlier_images])
            self.targets = np.concatenate([digit_targets, uniform])
        self.batch_size = config.batch_size
        self.is_training = is_training
        self.random = np.random.default_rng(config.effective_augment_seed)
        self.order = np.arange(len(self.images))
        self.augmenter = (
            build_realtime_augmenter(config.realtime_augment, config.effective_augment_seed)
            if is_training
            else None
        )
        # Mixed once even when not training: batch-norm statistics re-estimated batch by batch would miss
        # the variance between digits and non-digits if the non-digits sat together at the end.
        if is_training or len(self.images) > len(digits.images):
            self.random.shuffle(self.order)

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        batch = to_model_inputs(self.images[rows])
        if self.augmenter is not None and self.augmenter.layers:
            warped = self.augmenter(batch, training=True)
            batch = np.clip(keras.ops.convert_to_numpy(warped), 0.0, 1.0)
        return batch, self.targets[rows]

    def on_epoch_end(self) -> None:
        if self.is_training:
            self.random.shuffle(self.order)


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


def cosine_learning_rate(initial: float, final: float, epochs: int) -> Callable[[int, float], float]:
    """Epoch (from 0) -> its learning rate: `initial` at the first epoch, `final` at the last (epoch
    `epochs - 1`), along half a cosine between them; a `LearningRateScheduler`'s schedule."""

    def rate(epoch: int, _current_rate: float) -> float:
        progress = min(1.0, epoch / max(1, epochs - 1))
        return final + (initial - final) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return rate


def build_learning_rate_schedule(config: TrainConfig) -> keras.callbacks.Callback:
    """The callback that sets each epoch's learning rate (`config.learning_rate_schedule`)."""
    if config.learning_rate_schedule == "cosine":
        return keras.callbacks.LearningRateScheduler(
            cosine_learning_rate(config.learning_rate, config.min_learning_rate, config.epochs)
        )
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss",
        factor=config.reduce_lr_factor,
        patience=config.reduce_lr_patience_epochs,
        min_lr=config.min_learning_rate,
    )


def build_callbacks(config: TrainConfig, checkpoint_path: Path) -> list[keras.callbacks.Callback]:
    """Early stopping on validation loss (restoring the best weights), checkpointing, the learning rate's
    schedule."""
    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=config.early_stopping_patience_epochs,
            restore_best_weights=True,
        ),
        keras.callbacks.ModelCheckpoint(str(checkpoint_path), monitor="val_loss", save_best_only=True),
        build_learning_rate_schedule(config),
        *([BatchProgress(sys.stderr)] if sys.stderr.isatty() else []),  # erased before the epoch's line
        EpochLog(),
    ]


@dataclass(frozen=True)
class TrainingBatches:
    """The batches of one run: to fit on, to re-estimate batch-norm statistics on, to validate on."""

    training: AugmentedBatches  # the augmented training images, warped afresh and reshuffled
    clean: AugmentedBatches  # the same images before augmentation, in order, never warped
    validation: AugmentedBatches  # never augmented

    @classmethod
    def from_digits(
        cls,
        train_digits: DigitSet,
        original_digits: DigitSet,
        validation_digits: DigitSet,
        config: TrainConfig,
        outlier_images: np.ndarray | None = None,
        train_targets: np.ndarray | None = None,
    ) -> TrainingBatches:
        """Batches of the training images (with their static copies), of the same images before
        augmentation, and of the validation images. Outliers (N, 28, 28) uint8, if any, join the first
        two with uniform targets; `train_targets` (N, 10), if given, replace the training images'
        one-hot labels (training/distill.py). Validation stays digits only and one-hot: its loss drives
        early stopping and the choice of the final weights, and should measure how well digits are
        read, not mixed with how non-digits are refused."""
        # The batch-norm statistics re-estimated on the clean images describe the mix the weights trained
        # on: non-digits in the same proportion to the digits.
        clean_outliers = None
        if outlier_images is not None:
            share = len(original_digits) / max(1, len(train_digits))
            clean_outliers = outlier_images[: round(share * len(outlier_images))]
        return cls(
            training=AugmentedBatches(
                train_digits,
                config,
                is_training=True,
                outlier_images=outlier_images,
                digit_targets=train_targets,
            ),
            clean=AugmentedBatches(original_digits, config, is_training=False, outlier_images=clean_outliers),
            validation=AugmentedBatches(validation_digits, config, is_training=False),
        )


@dataclass(frozen=True)
class Fit:
    """What `train` returns: the per-epoch metrics and the running mean of the last epochs' weights."""

    history: dict[str, list[float]]  # loss, accuracy, val_loss, val_accuracy, learning_rate
    averaging: WeightAveraging | None  # None without `config.average_last_epochs`


def train(model: keras.Model, batches: TrainingBatches, config: TrainConfig, checkpoint_path: Path) -> Fit:
    """Fits a compiled model; on return it holds the best epoch's weights (by validation loss).

    Args:
        model: compiled with `compile_model` (inside the strategy scope when there is one), holding
            random weights or those a fine-tune starts from.
        batches: `training` to fit on (with the static augmentation copies, warped per batch) and
            `validation`, used for early stopping and the learning-rate schedule.
        config: epochs, seeds, patience, and how many last epochs to average.
        checkpoint_path: a `.keras` file where the best model so far is saved during training.

    Returns:
        The Keras History's metrics, and the running mean of the last epochs' weights when
        `config.average_last_epochs` asks for it.
    """
    keras.utils.set_random_seed(config.effective_augment_seed)
    callbacks = build_callbacks(config, checkpoint_path)
    averaging = None
    if config.average_last_epochs:
        averaging = WeightAveraging(start_epoch=max(1, config.epochs - config.average_last_epochs + 1))
        callbacks.append(averaging)
    history = model.fit(
        batches.training,
        validation_data=batches.validation,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=0,  # EpochLog writes the epoch's one line; Keras's would repeat it
    )
    return Fit(history.history, averaging)
