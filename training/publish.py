"""A trained model -> its exported SavedModel in the run folder, calibrated on validation, scored on every
held-out test set, and promoted when asked: steps 5-7 of `training.run`.

Scores come from the exported artefact loaded by the service's own loader, never from the in-memory
Keras model, so the card's figures are those of what is served.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digits.model_store import write_model_card
from training.config import TrainConfig
from training.datasets import DigitSet

if TYPE_CHECKING:
    import keras

logger = logging.getLogger("training")


def export_and_evaluate(
    model: keras.Model,
    card: dict[str, Any],
    run_dir: Path,
    validation: DigitSet,
    test_sets: list[DigitSet],
    config: TrainConfig,
) -> dict[str, Any]:
    """Exports the SavedModel into the run folder, calibrates it on the validation digits and scores it
    on every test set, where TensorFlow is installed; promotes it into `--output-dir` if one is given."""
    if not _has_tensorflow():
        logger.warning(
            "TensorFlow is not installed: export with `python -m training.export %s`", run_dir / "best.keras"
        )
        return card
    from app.pipeline.postprocess import AnswerPolicy
    from digits.calibration import CALIBRATION_CARD_KEY, Calibration
    from training.calibrate import calibrate_model
    from training.evaluate import load_serving_function, save_evaluation_plots, score_dataset
    from training.export import describe_environment, export_savedmodel
    from training.promote import RUN_MODEL_FOLDER_NAME, promote
    from training.selective import format_selective_table, save_selective_plots, score_selective

    version_dir = export_savedmodel(model, run_dir / RUN_MODEL_FOLDER_NAME)
    # The temperature and the threshold of "unsure" are fitted on validation digits, never a test set.
    serve = load_serving_function(version_dir)
    card[CALIBRATION_CARD_KEY] = calibrate_model(version_dir, validation, config.unsure_max_risk, serve)
    policy = AnswerPolicy.for_model(Calibration.from_card(card), None)  # as the service will answer
    scores = [score_dataset(serve, digits) for digits in test_sets]
    selective = [score_selective(score, policy.calibration, policy.min_confidence) for score in scores]
    save_evaluation_plots(version_dir, scores, test_sets)
    save_selective_plots(version_dir, selective, scores, policy.calibration)
    for plot_name in ("training_curves.png", "augmentation_samples.png", "outlier_samples.png"):
        if (run_dir / plot_name).exists():  # outlier samples only where outliers are on
            shutil.copy(run_dir / plot_name, version_dir / plot_name)
    card["test_results"] = {
        score.name: {
            "images": score.size,
            "accuracy": round(score.accuracy, 5),
            "loss": round(score.loss, 5),
            "calibrated": selected.to_card(),
        }
        for score, selected in zip(scores, selective, strict=True)
    }
    card["environment"] = describe_environment()
    write_model_card(version_dir, card)
    write_model_card(run_dir, {key: value for key, value in card.items() if key != "model_dir"})
    # Accuracy and loss per set are in the run's printed summary; calibration's details only here.
    logger.info(
        "calibration of %s on the held-out test sets:\n%s", version_dir, format_selective_table(selective)
    )
    card["model_dir"] = str(version_dir)
    if config.output_dir is not None:
        promoted_dir = promote(
            run_dir, config.output_dir, config.version, allow_smoke_test=config.allow_smoke_test
        )
        card.update(version=int(promoted_dir.name), model_dir=str(promoted_dir))
    return card


def _has_tensorflow() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None
