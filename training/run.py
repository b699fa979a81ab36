"""`python -m training.run`: datasets -> augment -> train -> export -> evaluate, in that order.

Reads top to bottom as the recipe of a model version. Each step is one call into its own module;
this file only wires them together and reports. Exit status: 0 done, 2 bad input (unknown dataset,
missing or corrupt files, bad flags), with a message on stderr.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from digits.model_store import read_model_card, write_model_card
from training.config import TrainConfig, parse_args
from training.datasets import DatasetError, DigitSet, DigitSource

logger = logging.getLogger("training")


class InitialWeightsError(Exception):
    """--initial-weights names a missing file or a checkpoint of another architecture."""


def load_sources(config: TrainConfig) -> list[DigitSource]:
    """Loads every requested dataset; with --quick, cuts each split to a few hundred images."""
    from training.datasets.registry import load_source, parse_dataset_spec

    sources = [
        load_source(parse_dataset_spec(spec), config.cache_dir, allow_download=config.allow_download)
        for spec in config.datasets
    ]
    if not config.quick:
        return sources
    count = config.quick_samples_per_split
    return [
        replace(source, train=_head(source.train, count), test=_head(source.test, count))
        for source in sources
    ]


def _head(digits: DigitSet | None, count: int) -> DigitSet | None:
    return None if digits is None else DigitSet(digits.name, digits.images[:count], digits.labels[:count])


def run(config: TrainConfig) -> dict[str, Any]:
    """Trains, exports and evaluates one model version; returns its model card."""
    from digits.model_store import next_version
    from training.augment import augment_offline
    from training.card import build_model_card, describe_training
    from training.datasets.combine import held_out_test_sets, split_train_validation

    # A missing checkpoint is bad input: say so before minutes of loading and augmenting data.
    for checkpoint in config.initial_weights:
        if not checkpoint.is_file():
            raise InitialWeightsError(f"--initial-weights {checkpoint} does not exist")
    # 1. datasets: every source's train split pooled and split 90/10; each test split kept apart.
    sources = load_sources(config)
    split = split_train_validation(sources, config.validation_fraction, config.seed)
    test_sets = held_out_test_sets(sources)
    # 2. augment: distorted copies made once; the rotations, shifts and zooms come per batch in train().
    images, labels = augment_offline(
        split.train.images, split.train.labels, config.static_augment, config.effective_augment_seed
    )
    train_digits = DigitSet("combined/train+augmented", images, labels)
    logger.info(
        "train %d images (%d before augmentation), validation %d; test sets: %s",
        len(train_digits),
        len(split.train),
        len(split.validation),
        ", ".join(f"{digits.name} ({len(digits)})" for digits in test_sets),
    )
    version = config.version or next_version(config.output_dir)
    run_dir = config.runs_dir / f"{config.output_dir.name}-{version}"
    run_dir.mkdir(parents=True, exist_ok=True)
    _save_augmentation_samples(run_dir, split.train, train_digits)
    # 3. train
    model, history, hardware, seconds, training_notes = _fit(
        train_digits, split.train, split.validation, config, run_dir
    )
    card = build_model_card(version, int(model.count_params()), sources, split, config)
    card["splits"]["train_augmented"] = len(train_digits)
    card["training"] = describe_training(history, seconds, hardware)
    card["training"].update(training_notes)
    if config.initial_weights:
        # A fine-tuned model is reproducible only with the recipes of the runs it started from.
        card["fine_tuned_from"] = [
            read_model_card(checkpoint.parent) or {"checkpoint": str(checkpoint.parent)}
            for checkpoint in config.initial_weights
        ]
    write_model_card(run_dir, card)
    if not _has_tensorflow():
        logger.warning(
            "TensorFlow is not installed: export with `python -m training.export %s`", run_dir / "best.keras"
        )
        return card
    # 4. export, 5. evaluate the exported artefact
    return _export_and_evaluate(model, card, run_dir, test_sets, config)


def _fit(
    train_digits: DigitSet,
    original_digits: DigitSet,
    validation: DigitSet,
    config: TrainConfig,
    run_dir: Path,
):
    import keras

    from training.model import build_model
    from training.plots import save_training_curves
    from training.train import compile_model, describe_hardware, train

    hardware, scope = describe_hardware()
    logger.info("training on %s", hardware)
    keras.utils.set_random_seed(config.effective_augment_seed)
    with scope:
        model = build_model(dense_l2=config.dense_l2)
        if config.initial_weights:
            _load_initial_weights(model, config.initial_weights)
        compile_model(model, config)
    started_at = time.perf_counter()
    history, training_notes = train(
        model, train_digits, original_digits, validation, config, run_dir / "best.keras"
    )
    seconds = time.perf_counter() - started_at
    save_training_curves(run_dir / "training_curves.png", history.history)
    return model, history.history, hardware, seconds, training_notes


def _load_initial_weights(model, checkpoint_paths: tuple[Path, ...]) -> None:
    """Sets the model's weights to those of one checkpoint, or to the mean of several checkpoints'.

    Every weight is averaged, batch-norm moving statistics included: they start out as the mean of
    the checkpoints' statistics and the first training epoch re-estimates them for the averaged weights.
    """
    import keras
    import numpy as np

    checkpoint_weights = []
    for path in checkpoint_paths:
        try:
            weights = keras.saving.load_model(path, compile=False).get_weights()
            model.set_weights(weights)  # checks every shape against this architecture
        except (ValueError, OSError) as error:
            raise InitialWeightsError(
                f"--initial-weights {path}: not a checkpoint of this model ({error})"
            ) from error
        checkpoint_weights.append(weights)
    model.set_weights(
        [
            np.mean(np.stack(same_weight), axis=0).astype(same_weight[0].dtype)
            for same_weight in zip(*checkpoint_weights, strict=True)
        ]
    )
    logger.info(
        "fine-tuning from the %s of %s",
        "weights" if len(checkpoint_paths) == 1 else f"mean weights of {len(checkpoint_paths)} checkpoints",
        ", ".join(str(path) for path in checkpoint_paths),
    )


def _export_and_evaluate(
    model, card: dict[str, Any], run_dir: Path, test_sets: list[DigitSet], config: TrainConfig
) -> dict[str, Any]:
    from training.evaluate import format_table, load_serving_function, save_evaluation_plots, score_dataset
    from training.export import describe_environment, export_savedmodel

    version_dir = export_savedmodel(model, config.output_dir / str(card["version"]))
    serve = load_serving_function(version_dir)
    scores = [score_dataset(serve, digits) for digits in test_sets]
    save_evaluation_plots(version_dir, scores, test_sets)
    for plot_name in ("training_curves.png", "augmentation_samples.png"):
        shutil.copy(run_dir / plot_name, version_dir / plot_name)
    card["test_results"] = {
        score.name: {"images": score.size, "accuracy": round(score.accuracy, 5), "loss": round(score.loss, 5)}
        for score in scores
    }
    card["environment"] = describe_environment()
    write_model_card(version_dir, card)
    logger.info("evaluation of %s on the held-out test sets:\n%s", version_dir, format_table(scores))
    return card


def _save_augmentation_samples(run_dir: Path, originals: DigitSet, augmented: DigitSet) -> None:
    import numpy as np

    from training.plots import save_digit_grid

    # Originals come first in `augmented`, then each copy round: show an original above its copies.
    rounds = min(4, len(augmented) // max(1, len(originals)))
    picks = np.random.default_rng(0).choice(len(originals), size=min(10, len(originals)), replace=False)
    rows = [augmented.images[picks + round_index * len(originals)] for round_index in range(rounds)]
    captions = [("original" if row == 0 else f"copy {row}") for row in range(rounds) for _ in picks]
    save_digit_grid(
        run_dir / "augmentation_samples.png", np.concatenate(rows), captions, "static augmentation"
    )


def _has_tensorflow() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI and returns the exit status; prints the summary (the CLI's only prints)."""
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        card = run(config)
    except (DatasetError, FileExistsError, InitialWeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"model version {card['version']}: {card['training']}")
    for name, result in card.get("test_results", {}).items():
        print(f"  {name}: accuracy {100 * result['accuracy']:.2f} % on {result['images']} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
