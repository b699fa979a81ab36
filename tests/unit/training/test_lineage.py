"""A fine-tuned model's lineage, read from its card: the runs it started from (their cards nested in
`fine_tuned_from`, each with its own history) placed before its own epochs, oldest first."""

from __future__ import annotations

import pytest

from training.lineage import list_run_histories

pytestmark = pytest.mark.unit


def run_card(created_at: str, losses: list[float], parents=(), checkpoints=(), kept_loss=None) -> dict:
    """A model card as training.run writes it, reduced to what the lineage reads."""
    history = {"loss": losses, "val_loss": [loss + 0.1 for loss in losses]}
    card = {
        "created_at": created_at,
        "config": {"initial_weights": list(checkpoints)},
        "training": {"epochs_run": len(losses), "history": history},
    }
    if kept_loss is not None:
        card["training"]["kept_val_loss"] = kept_loss
    if parents:
        card["fine_tuned_from"] = list(parents)
    return card


def test_a_run_from_random_weights_is_its_own_lineage():
    card = run_card("t0", [1.0, 0.5], kept_loss=0.45)

    (run,) = list_run_histories(card, "first")

    assert (run.name, run.first_epoch, run.epochs, run.last_epoch) == ("first", 1, 2, 2)
    assert run.history["loss"] == [1.0, 0.5] and run.epoch_numbers("loss") == [1, 2]
    assert run.kept == {"val_loss": 0.45}


def test_a_fine_tune_continues_after_the_epochs_of_every_run_it_descends_from():
    grandparent = run_card("t0", [3.0, 2.0, 1.0])
    parent = run_card("t1", [0.9, 0.8], [grandparent], ["runs/base/best.keras"])
    card = run_card("t2", [0.7], [parent], ["runs/tune-1/best.keras"])

    runs = list_run_histories(card, "tune-2")

    assert [(run.name, run.first_epoch, run.epochs) for run in runs] == [
        ("base", 1, 3),
        ("tune-1", 4, 2),
        ("tune-2", 6, 1),
    ]
    assert runs[0].history["loss"] == [3.0, 2.0, 1.0] and runs[1].epoch_numbers("val_loss") == [4, 5]


def test_a_soup_of_fine_tunes_of_one_parent_shows_the_parent_once_and_starts_after_the_longest():
    base = run_card("t0", [2.0, 1.0])
    first = run_card("t1", [0.9, 0.8, 0.7], [base], ["runs/base/best.keras"])
    second = run_card("t2", [0.95], [base], ["runs/base/best.keras"])
    card = run_card("t3", [0.6], [first, second], ["runs/a/best.keras", "runs/b/best.keras"])

    runs = list_run_histories(card, "soup")

    assert [(run.name, run.first_epoch) for run in runs] == [("base", 1), ("a", 3), ("b", 3), ("soup", 6)]


def test_an_exported_model_as_a_start_is_named_by_its_own_folder():
    served = run_card("t0", [2.0, 1.0])
    card = run_card("t1", [0.9], [served], ["models/digits/6"])

    runs = list_run_histories(card, "tune")

    assert [(run.name, run.first_epoch) for run in runs] == [("6", 1), ("tune", 3)]


def test_a_start_without_a_history_still_places_the_run_after_its_epochs():
    # A card written before histories were recorded: its epoch count, no values.
    old_parent = {"created_at": "t0", "training": {"epochs_run": 28, "weight_choice": {"val_loss": 0.03}}}
    card = run_card("t1", [0.02], [old_parent], ["runs/cvl3-a/best.keras"])

    runs = list_run_histories(card, "cvl3-a-ft")

    assert [(run.name, run.first_epoch, run.epochs) for run in runs] == [
        ("cvl3-a", 1, 28),
        ("cvl3-a-ft", 29, 1),
    ]
    assert runs[0].history == {} and runs[0].kept == {"val_loss": 0.03}


def test_a_start_whose_card_is_missing_is_left_out():
    card = run_card("t1", [0.5], [{"checkpoint": "elsewhere/run"}], ["elsewhere/run/best.keras"])

    assert [(run.name, run.first_epoch) for run in list_run_histories(card, "tune")] == [("tune", 1)]
