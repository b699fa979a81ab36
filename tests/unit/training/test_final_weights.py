"""Which weights a run ends with: of the best epoch, the average of the last epochs and a fine-tune's
start, each with its own batch-norm statistics or with statistics from clean images, the one with the
lowest validation loss; so a fine-tune never ends worse on validation than the weights it started from."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.unit.training.tiny_keras import Batches, fitted_tiny_model
from training.averaging import WeightAveraging
from training.train import TrainingBatches
from training.weights import Candidate, WeightChoice, choose_final_weights, score_weights

pytestmark = pytest.mark.unit


def batches_of(clean: Batches, validation: Batches | None = None) -> TrainingBatches:
    return TrainingBatches(training=clean, clean=clean, validation=validation or clean)


def trainable(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(variable).copy() for variable in model.trainable_weights]


def all_equal(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def evaluated(model: keras.Model, batches: Batches) -> dict[str, float]:
    return model.evaluate(batches, verbose=0, return_dict=True)


def zero_weights(model: keras.Model) -> None:
    model.set_weights([np.zeros_like(weights) for weights in model.get_weights()])


@pytest.fixture
def model_and_clean_batches() -> tuple[keras.Model, Batches]:
    """A model fitted to clean inputs, whose batch-norm statistics were then spoiled (as augmented
    batches spoil them: the layer saw inputs shifted by +4)."""
    model, clean = fitted_tiny_model(sample_count=256, batch_size=64)
    shifted = Batches(clean.inputs + 4.0, clean.targets, batch_size=64)
    norm = model.get_layer("bn")
    norm.momentum = 0.0  # one batch sets the moving statistics
    model(shifted[0][0], training=True)
    norm.momentum = 0.99
    return model, clean


def test_statistics_from_clean_images_are_adopted_when_they_validate_better(model_and_clean_batches):
    model, clean = model_and_clean_batches

    outcome = score_weights(model, "best_epoch", batches_of(clean))

    assert outcome.has_clean_statistics is True
    assert outcome.val_loss_clean_statistics < outcome.val_loss_own_statistics
    assert outcome.val_loss == pytest.approx(evaluated(model, clean)["loss"], abs=1e-5)
    assert all_equal(model.get_weights(), outcome.weights)


def test_the_accuracy_reported_for_the_kept_weights_is_theirs_with_the_statistics_they_keep(
    model_and_clean_batches,
):
    model, clean = model_and_clean_batches

    choice = choose_final_weights(model, None, None, batches_of(clean))

    kept = evaluated(model, clean)  # the model now holds the kept weights and statistics
    assert choice.winner.has_clean_statistics
    assert choice.winner.val_accuracy == pytest.approx(kept["accuracy"])
    assert choice.winner.val_accuracy == choice.winner.val_accuracy_clean_statistics
    assert choice.to_card()["val_accuracy"] == pytest.approx(kept["accuracy"], abs=1e-5)
    assert choice.to_card()["val_loss"] == pytest.approx(kept["loss"], abs=1e-5)


def test_statistics_are_left_alone_when_the_new_ones_validate_worse(model_and_clean_batches):
    model, clean = model_and_clean_batches
    score_weights(model, "best_epoch", batches_of(clean))  # good statistics now
    before = [weights.copy() for weights in model.get_weights()]
    unlike_validation = Batches(clean.inputs * 3.0 - 2.0, clean.targets, batch_size=64)

    outcome = score_weights(model, "best_epoch", batches_of(unlike_validation, validation=clean))

    assert outcome.has_clean_statistics is False and outcome.val_loss == outcome.val_loss_own_statistics
    assert all_equal(model.get_weights(), before) and all_equal(outcome.weights, before)


def test_the_start_is_restored_when_fine_tuning_made_validation_worse(model_and_clean_batches):
    model, clean = model_and_clean_batches
    start = score_weights(model, "start", batches_of(clean))
    zero_weights(model)  # fine-tuning ruined it

    choice = choose_final_weights(model, None, start, batches_of(clean))

    assert choice.winner.name == "start"
    assert all_equal(model.get_weights(), start.weights)


def test_the_fine_tuned_weights_stay_when_they_validate_better(model_and_clean_batches):
    model, clean = model_and_clean_batches
    fine_tuned = [weights.copy() for weights in model.get_weights()]
    fine_tuned_trainable = trainable(model)
    zero_weights(model)
    start = score_weights(model, "start", batches_of(clean))
    model.set_weights(fine_tuned)

    choice = choose_final_weights(model, None, start, batches_of(clean))

    assert choice.winner.name == "best_epoch"
    assert all_equal(trainable(model), fine_tuned_trainable)


@pytest.fixture
def trained_model_and_batches() -> tuple[keras.Model, Batches]:
    model, batches = fitted_tiny_model(sample_count=64, batch_size=32)
    # Precondition: clearly better than the uniform guess (log 2 = 0.69) that all-zero weights give.
    assert evaluated(model, batches)["loss"] < 0.3
    return model, batches


def average_of(weights: list[np.ndarray], epochs: int = 1) -> WeightAveraging:
    averaging = WeightAveraging(start_epoch=1)
    averaging.epochs_averaged = epochs
    averaging.averaged_weights = weights
    return averaging


def test_average_is_rejected_when_it_validates_worse_and_the_best_weights_stay(trained_model_and_batches):
    model, batches = trained_model_and_batches
    best = trainable(model)
    zeros = [np.zeros_like(weights) for weights in best]

    choice = choose_final_weights(model, average_of(zeros), None, batches_of(batches))

    best_epoch, averaged = choice.candidates
    assert choice.winner is best_epoch and averaged.val_loss > best_epoch.val_loss
    assert all_equal(trainable(model), best)


def test_average_is_adopted_when_it_validates_better(trained_model_and_batches):
    model, batches = trained_model_and_batches
    good = trainable(model)
    for variable in model.trainable_weights:
        variable.assign(np.zeros(variable.shape, dtype="float32"))

    choice = choose_final_weights(model, average_of(good, epochs=3), None, batches_of(batches))

    assert choice.winner.name == "averaged" and choice.epochs_averaged == 3
    assert all_equal(trainable(model), good)


def candidate(
    name: str, own: float, clean: float, accuracies: tuple[float, float] = (0.9, 0.95)
) -> Candidate:
    return Candidate(name, [np.full(2, own)], own, clean, *accuracies)


def test_the_lowest_loss_wins_over_every_candidate_and_either_statistics():
    choice = WeightChoice(
        (
            candidate("best_epoch", 0.30, 0.25, (0.91, 0.92)),
            candidate("averaged", 0.27, 0.28, (0.93, 0.94)),
            candidate("start", 0.26, 0.2, (0.95, 0.96)),
        ),
        epochs_averaged=4,
    )

    assert choice.winner.name == "start" and choice.winner.has_clean_statistics
    assert choice.to_card() == {
        "adopted": "start",
        "adopted_clean_statistics": True,
        "val_loss": 0.2,
        "val_accuracy": 0.96,  # the kept weights' accuracy, with the statistics they keep
        "epochs_averaged": 4,
        "candidates": {
            "best_epoch": {
                "val_loss_own_statistics": 0.3,
                "val_loss_clean_statistics": 0.25,
                "val_accuracy_own_statistics": 0.91,
                "val_accuracy_clean_statistics": 0.92,
            },
            "averaged": {
                "val_loss_own_statistics": 0.27,
                "val_loss_clean_statistics": 0.28,
                "val_accuracy_own_statistics": 0.93,
                "val_accuracy_clean_statistics": 0.94,
            },
            "start": {
                "val_loss_own_statistics": 0.26,
                "val_loss_clean_statistics": 0.2,
                "val_accuracy_own_statistics": 0.95,
                "val_accuracy_clean_statistics": 0.96,
            },
        },
    }


def test_a_tie_keeps_the_best_epoch_with_its_own_statistics():
    choice = WeightChoice((candidate("best_epoch", 0.2, 0.2), candidate("start", 0.2, 0.2)))

    assert choice.winner.name == "best_epoch" and not choice.winner.has_clean_statistics
