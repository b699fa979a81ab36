"""A finished run -> the model card: what data, which settings, how long, on what, how well.

The card is the JSON written beside every exported version (`model_card.json`); with it and the git
commit it records, a run can be repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from digits.model_store import SMOKE_TEST_CARD_KEY, read_model_card
from training.config import TrainConfig
from training.datasets import DigitSource, TrainValidationSplit
from training.lineage import start_folder


def describe_sources(sources: Sequence[DigitSource], specs: Sequence[str]) -> list[dict[str, Any]]:
    """Each dataset's name, the spec it was loaded from and its split sizes."""
    return [
        {
            "name": source.name,
            "spec": spec,
            "train_images": len(source.train) if source.train else 0,
            "test_images": len(source.test) if source.test else 0,
        }
        for source, spec in zip(sources, specs, strict=True)
    ]


def describe_training(
    history: dict[str, list[float]], seconds: float, hardware: str, weight_choice: dict[str, Any]
) -> dict[str, Any]:
    """What a run's training did and kept.

    Args:
        history: Keras History metrics, one value per epoch (loss, accuracy, val_loss, val_accuracy,
            learning_rate).
        seconds: wall time of training and of the choice of the final weights.
        hardware: where it trained, e.g. "CPU (tensorflow)".
        weight_choice: `WeightChoice.to_card()`, the candidates and the kept weights.

    Returns:
        The card's `training` section: `kept_val_loss` and `kept_val_accuracy` are those of the weights
        the run kept (the exported ones); `best_epoch_val_*` those of the best epoch as training
        measured it (with the batch-norm statistics of augmented batches), which may be other weights;
        `history` every epoch's metrics, which the lineage plot of a later fine-tune reads.
    """
    val_losses = history.get("val_loss", [])
    best_epoch = int(np.argmin(val_losses)) if val_losses else len(history.get("loss", [])) - 1
    return {
        "seconds": round(seconds, 1),
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": best_epoch + 1,
        "best_epoch_val_loss": round(float(val_losses[best_epoch]), 5) if val_losses else None,
        "best_epoch_val_accuracy": (
            round(float(history["val_accuracy"][best_epoch]), 5) if val_losses else None
        ),
        "kept_weights": weight_choice.get("adopted"),
        "kept_val_loss": weight_choice.get("val_loss"),
        "kept_val_accuracy": weight_choice.get("val_accuracy"),
        "hardware": hardware,
        "weight_choice": weight_choice,
        "history": {
            name: [round(float(value), 6) for value in values] for name, values in sorted(history.items())
        },
    }


def build_model_card(
    parameters: int,
    sources: Sequence[DigitSource],
    split: TrainValidationSplit,
    config: TrainConfig,
) -> dict[str, Any]:
    """The card's static part, known before training; `training` and `test_results` are added later."""
    card = {
        "version": None,  # given by the promotion into a served folder (`training.promote`)
        SMOKE_TEST_CARD_KEY: config.quick,
        "created_at": datetime.now(UTC).isoformat(),
        "model": {
            "name": "digit_cnn",
            "parameters": parameters,
            "input": "image: float32 (None, 28, 28, 1) in [0, 1], white ink on black, MNIST-normalized",
            "output": "probs: float32 (None, 10), softmax probabilities of the digits 0-9",
        },
        "datasets": describe_sources(sources, config.datasets),
        "splits": {"train": len(split.train), "validation": len(split.validation)},
        "config": config.model_dump(mode="json"),
    }
    if config.initial_weights:
        # A fine-tuned model is reproducible only with the recipes of the runs it started from.
        card["fine_tuned_from"] = [
            read_model_card(start_folder(checkpoint)) or {"checkpoint": str(start_folder(checkpoint))}
            for checkpoint in config.initial_weights
        ]
    return card
