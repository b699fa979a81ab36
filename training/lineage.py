"""A model card -> the runs its model descends from, oldest first, each placed on one epoch axis.

A fine-tuned model's card holds, under `fine_tuned_from`, the cards of the runs it started from (each
read from its run folder, with that run's own `fine_tuned_from`), and every card's `training.history`
holds its epochs' metrics. Laid end to end they give the whole training of the model: the parent's
epochs 1-28, then this run's as epochs 29-36. The training-curves plot draws this (training/plots.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def start_folder(checkpoint: str | Path) -> Path:
    """The folder holding a fine-tune start's model card: a run's, beside its `.keras` checkpoint, or the
    exported model's own folder (`models/digits/7`)."""
    path = Path(checkpoint)
    return path.parent if path.suffix == ".keras" else path


@dataclass(frozen=True)
class RunHistory:
    """One run of a model's lineage and where its epochs lie on the lineage's epoch axis."""

    name: str  # the run folder's name, e.g. "cvl3-a"
    first_epoch: int  # 1-based, on the lineage's axis: one after the last epoch of the runs it started from
    epochs: int  # epochs the run trained
    history: Mapping[str, Sequence[float]] = field(default_factory=dict)  # metric -> one value per epoch
    # The validation figures of the weights the run kept ("val_loss", "val_accuracy"), chosen after its
    # last epoch; they differ from the best epoch's where other weights or statistics won.
    kept: Mapping[str, float] = field(default_factory=dict)

    @property
    def last_epoch(self) -> int:
        return self.first_epoch + self.epochs - 1

    def epoch_numbers(self, metric: str) -> list[int]:
        """The lineage's epoch numbers of this run's values of `metric`."""
        return list(range(self.first_epoch, self.first_epoch + len(self.history.get(metric, ()))))


def list_run_histories(card: Mapping[str, Any], run_name: str) -> list[RunHistory]:
    """Every run of a model's lineage, ancestors first and this run last.

    Args:
        card: the model card of the run (with its `training` section), as `training.run` builds it.
        run_name: the name this run is shown under, e.g. its run folder's name.

    Returns:
        One RunHistory per run that trained (a start whose card is missing has no epochs and is left
        out). Several starting checkpoints (a model soup) are each placed after their own ancestors and
        share the epochs before this run; an ancestor common to several of them appears once.
    """
    runs: dict[str, RunHistory] = {}
    _place_run(card, run_name, runs)
    return sorted(runs.values(), key=lambda run: run.first_epoch)


def _place_run(card: Mapping[str, Any], name: str, runs: dict[str, RunHistory]) -> int:
    """Places the run of `card` after its ancestors in `runs`; returns its last epoch (0: none)."""
    key = str(card.get("created_at") or name)  # a run's card is created once: its time names it
    if key in runs:
        return runs[key].last_epoch
    checkpoints = card.get("config", {}).get("initial_weights") or []
    last_ancestor_epoch = 0
    for index, parent in enumerate(card.get("fine_tuned_from") or []):
        parent_name = (
            start_folder(checkpoints[index]).name
            if index < len(checkpoints)
            else Path(parent.get("checkpoint", f"start {index + 1}")).name
        )
        last_ancestor_epoch = max(last_ancestor_epoch, _place_run(parent, parent_name, runs))
    training = card.get("training") or {}
    history = training.get("history") or {}
    # A card written before the history was recorded still says how many epochs the run trained.
    epochs = int(training.get("epochs_run") or len(history.get("loss", ())))
    if epochs == 0:
        return last_ancestor_epoch
    runs[key] = RunHistory(name, last_ancestor_epoch + 1, epochs, history, _kept_figures(training))
    return last_ancestor_epoch + epochs


def _kept_figures(training: Mapping[str, Any]) -> dict[str, float]:
    """The kept weights' validation loss and accuracy, from the weight choice (older cards: loss only)."""
    choice = training.get("weight_choice") or {}
    figures = {
        "val_loss": training.get("kept_val_loss", choice.get("val_loss")),
        "val_accuracy": training.get("kept_val_accuracy", choice.get("val_accuracy")),
    }
    return {name: float(value) for name, value in figures.items() if value is not None}
