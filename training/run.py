"""`python -m training.run`: datasets -> augment -> train -> export -> evaluate, in that order.

Reads top to bottom as the recipe of a model version. Each step is one call into its own module;
this file only wires them together, times them and reports.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training.config import DEFAULT_CACHE_DIR, RealtimeAugmentConfig, StaticAugmentConfig, TrainConfig
from training.datasets import DatasetError, DigitSet, DigitSource

logger = logging.getLogger("training")


def parse_args(argv: list[str] | None) -> TrainConfig:
    """Command-line flags -> a validated TrainConfig (argparse exits with status 2 on bad flags)."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m training.run", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--dataset",
        action="append",
        dest="datasets",
        metavar="NAME[=PATH[:PATH...]]",
        help="mnist, emnist-digits, usps or folder, repeatable; PATH = local files (default: mnist and usps)",
    )
    add(
        "--data-dir",
        "--cache-dir",
        dest="cache_dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help="where downloads are cached and datasets without a PATH are looked for (default: %(default)s)",
    )
    add("--output-dir", type=Path, default=defaults.output_dir, help="model folder (default: %(default)s)")
    add(
        "--runs-dir",
        type=Path,
        default=defaults.runs_dir,
        help="checkpoints and plots (default: %(default)s)",
    )
    add("--version", type=int, default=None, help="version to write (default: one above the highest)")
    add("--epochs", type=int, default=defaults.epochs)
    add("--batch-size", type=int, default=defaults.batch_size)
    add("--learning-rate", type=float, default=defaults.learning_rate)
    add("--label-smoothing", type=float, default=defaults.label_smoothing)
    add("--seed", type=int, default=defaults.seed)
    add(
        "--static-copies",
        type=int,
        default=StaticAugmentConfig().copies_per_image,
        help="augmented copies made of each training image before training (default: %(default)s)",
    )
    add("--no-download", action="store_true", help="never download; fail if files are missing")
    add("--quick", action="store_true", help="tiny subset and one epoch: a smoke test of every step")
    for flag in (
        "elastic",
        "noise",
        "coarse-dropout",
        "brightness-contrast",
        "inversion",
        "rotation",
        "shift",
        "zoom",
    ):
        add(f"--no-{flag}", action="store_true", help=f"turn off the {flag.replace('-', ' ')} augmentation")
    args = parser.parse_args(argv)
    try:
        return _config_from_args(args)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        parser.error(str(error))


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    static = StaticAugmentConfig(
        copies_per_image=min(args.static_copies, 1) if args.quick else args.static_copies,
        enable_elastic=not args.no_elastic,
        enable_noise=not args.no_noise,
        enable_coarse_dropout=not args.no_coarse_dropout,
        enable_brightness_contrast=not args.no_brightness_contrast,
        enable_inversion=not args.no_inversion,
    )
    realtime = RealtimeAugmentConfig(
        enable_rotation=not args.no_rotation, enable_shift=not args.no_shift, enable_zoom=not args.no_zoom
    )
    return TrainConfig(
        datasets=tuple(args.datasets or TrainConfig().datasets),
        cache_dir=args.cache_dir,
        output_dir=args.output_dir,
        runs_dir=args.runs_dir,
        version=args.version,
        allow_download=not args.no_download,
        epochs=1 if args.quick else args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        label_smoothing=args.label_smoothing,
        seed=args.seed,
        static_augment=static,
        realtime_augment=realtime,
        quick=args.quick,
    )


def load_sources(config: TrainConfig) -> list[DigitSource]:
    """Loads every requested dataset; with --quick, cuts each split to a few hundred images."""
    from training.datasets.registry import load_source, parse_dataset_spec

    sources = [
        load_source(parse_dataset_spec(spec), config.cache_dir, allow_download=config.allow_download)
        for spec in config.datasets
    ]
    if not config.quick:
        return sources
    return [
        replace(
            source,
            train=_head(source.train, config.quick_samples_per_split),
            test=_head(source.test, config.quick_samples_per_split),
        )
        for source in sources
    ]


def _head(digits: DigitSet | None, count: int) -> DigitSet | None:
    if digits is None:
        return None
    return DigitSet(digits.name, digits.images[:count], digits.labels[:count])


def _describe_sources(sources: list[DigitSource], specs: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {
            "name": source.name,
            "spec": spec,
            "train_images": len(source.train) if source.train else 0,
            "test_images": len(source.test) if source.test else 0,
        }
        for source, spec in zip(sources, specs, strict=True)
    ]


def run(config: TrainConfig) -> dict[str, Any]:
    """Trains, exports and evaluates one model version; returns its model card."""
    import keras

    from training.augment import augment_offline
    from training.datasets.combine import held_out_test_sets, split_train_validation
    from training.model import build_model
    from training.plots import save_digit_grid, save_training_curves
    from training.train import compile_model, describe_hardware, train

    started_at = time.perf_counter()
    sources = load_sources(config)
    split = split_train_validation(sources, config.validation_fraction, config.seed)
    test_sets = held_out_test_sets(sources)
    augmented_images, augmented_labels = augment_offline(
        split.train.images, split.train.labels, config.static_augment, config.seed
    )
    train_digits = DigitSet("combined/train+augmented", augmented_images, augmented_labels)
    logger.info(
        "train %d images (%d before augmentation), validation %d, test sets: %s",
        len(train_digits),
        len(split.train),
        len(split.validation),
        ", ".join(f"{digits.name} ({len(digits)})" for digits in test_sets),
    )

    version = config.version or _next_version(config.output_dir)
    run_dir = config.runs_dir / f"{config.output_dir.name}-{version}"
    run_dir.mkdir(parents=True, exist_ok=True)
    _save_augmentation_samples(run_dir, split.train, train_digits, save_digit_grid)

    hardware, scope = describe_hardware()
    logger.info("training on %s", hardware)
    keras.utils.set_random_seed(config.seed)
    with scope:
        model = build_model(dense_l2=config.dense_l2)
        compile_model(model, config)
    training_started_at = time.perf_counter()
    history = train(model, train_digits, split.validation, config, run_dir / "best.keras")
    training_seconds = time.perf_counter() - training_started_at
    save_training_curves(run_dir / "training_curves.png", history.history)

    card = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "model": {
            "name": model.name,
            "parameters": int(model.count_params()),
            "input": "image: float32 (None, 28, 28, 1) in [0, 1], white ink on black",
            "output": "probs: float32 (None, 10), softmax probabilities of digits 0-9",
        },
        "datasets": _describe_sources(sources, config.datasets),
        "splits": {
            "train": len(split.train),
            "train_augmented": len(train_digits),
            "validation": len(split.validation),
        },
        "config": config.model_dump(mode="json"),
        "training": _describe_training(history.history, training_seconds, hardware),
    }
    (run_dir / "model_card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    if keras.backend.backend() != "tensorflow" and not _has_tensorflow():
        logger.warning(
            "TensorFlow is not installed: export with `python -m training.export %s`", run_dir / "best.keras"
        )
        return card
    return _export_and_evaluate(model, card, run_dir, test_sets, started_at)


def _export_and_evaluate(
    model, card: dict[str, Any], run_dir: Path, test_sets: list[DigitSet], started_at: float
) -> dict[str, Any]:
    import shutil

    from training.evaluate import load_serving_function, save_evaluation_plots, score_dataset
    from training.export import describe_environment, export_savedmodel, write_model_card

    config = TrainConfig.model_validate(card["config"])
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
    card["total_seconds"] = round(time.perf_counter() - started_at, 1)
    card["environment"] = describe_environment()
    write_model_card(version_dir, card)
    from training.evaluate import format_table

    card["_table"] = format_table(scores)
    return card


def _describe_training(history: dict[str, list[float]], seconds: float, hardware: str) -> dict[str, Any]:
    val_losses = history.get("val_loss", [])
    best_epoch = int(np.argmin(val_losses)) if val_losses else len(history.get("loss", [])) - 1
    return {
        "seconds": round(seconds, 1),
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": best_epoch + 1,
        "best_val_loss": round(float(val_losses[best_epoch]), 5) if val_losses else None,
        "best_val_accuracy": round(float(history["val_accuracy"][best_epoch]), 5) if val_losses else None,
        "hardware": hardware,
    }


def _save_augmentation_samples(run_dir: Path, originals: DigitSet, augmented: DigitSet, save_grid) -> None:
    # Originals come first in `augmented`, then each copy round; show an original above its copies.
    rounds = len(augmented) // max(1, len(originals))
    picks = np.random.default_rng(0).choice(len(originals), size=min(10, len(originals)), replace=False)
    rows = [augmented.images[picks + round_index * len(originals)] for round_index in range(min(rounds, 4))]
    captions = [("original" if row == 0 else f"copy {row}") for row in range(len(rows)) for _ in picks]
    save_grid(run_dir / "augmentation_samples.png", np.concatenate(rows), captions, "static augmentation")


def _next_version(output_dir: Path) -> int:
    from training.export import next_version

    return next_version(output_dir)


def _has_tensorflow() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 ok, 2 bad input such as a missing dataset)."""
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        card = run(config)
    except (DatasetError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nmodel version {card['version']} -> {config.output_dir / str(card['version'])}")
    print(f"training: {card['training']}")
    if "_table" in card:
        print(card.pop("_table"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
