"""The summary `python -m training.run` prints at the end: tables of the training and of the test sets,
with the kept weights' validation figures, never a dict."""

from __future__ import annotations

import pytest

from training.summary import format_run_summary

pytestmark = pytest.mark.unit

CARD = {
    "model_dir": "runs/smoke/model",
    "version": None,
    "training": {
        "seconds": 3725.2,
        "epochs_run": 28,
        "best_epoch": 26,
        "best_epoch_val_loss": 0.03277,
        "best_epoch_val_accuracy": 0.99474,
        "kept_weights": "averaged",
        "kept_val_loss": 0.02836,
        "kept_val_accuracy": 0.99512,
        "hardware": "CPU (tensorflow)",
        "weight_choice": {"adopted": "averaged", "adopted_clean_statistics": True, "val_loss": 0.02836},
    },
    "test_results": {
        "mnist/test": {
            "images": 10000,
            "accuracy": 0.9973,
            "loss": 0.01,
            "calibrated": {"unsure_rate": 0.0132, "accepted_accuracy": 0.99949},
        },
    },
}


def test_the_summary_is_tables_of_the_training_and_the_test_sets():
    summary = format_run_summary(CARD)

    lines = summary.splitlines()
    assert lines[0] == "model in runs/smoke/model"
    assert "| training | |" in lines and "| epochs | 28 (best: epoch 26) |" in lines
    assert (
        "| weights kept | the mean of the last epochs', with batch-norm statistics from un-augmented images |"
        in lines
    )
    assert "| validation loss | 0.0284 |" in lines and "| validation accuracy | 99.51 % |" in lines
    assert "| training time | 62 min 5 s on CPU (tensorflow) |" in lines
    assert "| test set | images | accuracy | loss | unsure | accepted answers right |" in lines
    assert "| mnist/test | 10000 | 99.73 % | 0.0100 | 1.32 % | 99.949 % |" in lines
    assert "{" not in summary and "99.47" not in summary  # no dict; not the best epoch's accuracy


def test_a_promoted_model_says_its_version_and_a_run_without_test_results_has_one_table():
    card = {**CARD, "model_dir": "models/digits/7", "version": 7, "test_results": {}}

    summary = format_run_summary(card)

    assert summary.startswith("model in models/digits/7 (version 7)\n") and "| test set |" not in summary
