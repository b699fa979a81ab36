"""A finished run's model card -> the summary `python -m training.run` prints: two Markdown tables.

The first says how the run trained and which weights it kept, with their validation loss and accuracy;
the second how the kept model reads each held-out test set. Every figure comes from the card, so the
summary and the card cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# How the card names each candidate for the final weights (training/weights.py), for a person.
KEPT_WEIGHTS_NAMES = {
    "best_epoch": "the best epoch's",
    "averaged": "the mean of the last epochs'",
    "start": "those it started from",
}


def format_run_summary(card: Mapping[str, Any]) -> str:
    """The run's summary: where the model is, a table of its training, a table of its test results.

    Args:
        card: the model card `training.run.run` returns (`training`, optionally `test_results`,
            `model_dir`, `version`).
    """
    where = card.get("model_dir") or "the run folder (export it with python -m training.export)"
    version = f" (version {card['version']})" if card.get("version") is not None else ""
    lines = [f"model in {where}{version}", "", format_training_table(card.get("training", {}))]
    if card.get("test_results"):
        lines += ["", format_test_table(card["test_results"])]
    return "\n".join(lines)


def format_training_table(training: Mapping[str, Any]) -> str:
    """Epochs, the weights kept and their validation figures (not the best epoch's, when the kept
    weights are others), wall time and hardware."""
    choice = training.get("weight_choice", {})
    kept = KEPT_WEIGHTS_NAMES.get(choice.get("adopted"), str(choice.get("adopted")))
    statistics = (
        "batch-norm statistics from un-augmented images"
        if choice.get("adopted_clean_statistics")
        else "their own batch-norm statistics"
    )
    rows = [
        ("epochs", f"{training.get('epochs_run')} (best: epoch {training.get('best_epoch')})"),
        ("weights kept", f"{kept}, with {statistics}"),
        ("validation loss", _number(training.get("kept_val_loss"), "{:.4f}")),
        ("validation accuracy", _number(training.get("kept_val_accuracy"), "{:.2%}")),
        ("training time", f"{_duration(training.get('seconds'))} on {training.get('hardware')}"),
    ]
    return "\n".join(["| training | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def format_test_table(test_results: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per held-out test set: images, accuracy, loss, and, with the card's calibration, the
    share answered unsure and the accuracy of the accepted answers."""
    lines = [
        "| test set | images | accuracy | loss | unsure | accepted answers right |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, result in test_results.items():
        calibrated = result.get("calibrated", {})
        lines.append(
            f"| {name} | {result['images']} | {_number(result.get('accuracy'), '{:.2%}')} "
            f"| {_number(result.get('loss'), '{:.4f}')} | {_number(calibrated.get('unsure_rate'), '{:.2%}')} "
            f"| {_number(calibrated.get('accepted_accuracy'), '{:.3%}')} |"
        )
    return "\n".join(lines)


def _number(value: float | None, template: str) -> str:
    # Python writes 0.9875 as "98.75%"; the project's tables put a space before the sign.
    return "—" if value is None else template.format(value).replace("%", " %")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"
