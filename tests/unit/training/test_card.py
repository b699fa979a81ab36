"""The card's training section: the figures of the weights the run kept, named as such, beside the
best epoch's as training measured them, and every epoch's metrics for a later fine-tune's lineage."""

from __future__ import annotations

import pytest

from training.card import describe_training

pytestmark = pytest.mark.unit

HISTORY = {
    "loss": [1.0, 0.6, 0.7],
    "accuracy": [0.6, 0.8, 0.78],
    "val_loss": [0.9, 0.5, 0.55],
    "val_accuracy": [0.7, 0.85, 0.84],
    "learning_rate": [1e-3, 1e-3, 5e-4],
}


def weight_choice(adopted: str, val_loss: float, val_accuracy: float) -> dict:
    return {
        "adopted": adopted,
        "adopted_clean_statistics": True,
        "val_loss": val_loss,
        "val_accuracy": val_accuracy,
    }


def test_the_reported_validation_accuracy_is_the_kept_weights_not_the_best_epochs():
    training = describe_training(HISTORY, 12.34, "CPU (tensorflow)", weight_choice("averaged", 0.41, 0.9))

    assert training["kept_weights"] == "averaged"
    assert (training["kept_val_loss"], training["kept_val_accuracy"]) == (0.41, 0.9)
    assert training["best_epoch"] == 2
    assert (training["best_epoch_val_loss"], training["best_epoch_val_accuracy"]) == (0.5, 0.85)
    assert "best_val_accuracy" not in training and "best_val_loss" not in training  # ambiguous names gone


def test_every_epochs_metrics_are_recorded_for_the_lineage_of_later_fine_tunes():
    training = describe_training(HISTORY, 1.0, "CPU", weight_choice("best_epoch", 0.5, 0.85))

    assert training["history"] == HISTORY and training["epochs_run"] == 3 and training["seconds"] == 1.0
