"""`python -m training.run`: datasets -> augment -> train -> choose final weights -> export -> evaluate.

Reads top to bottom as the recipe of a model version. Each step is one call into its own module;
this file only wires them together and reports. Exit status: 0 done, 2 bad input (unknown dataset,
missing or corrupt files, bad flags), with a message on stderr.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digits.model_store import write_model_card
from training.config import TrainConfig, parse_args
from training.datasets import DatasetError, DigitSet, TrainValidationSplit
from training.promote import PromotionError
from training.summary import format_run_summary
from training.weights import InitialWeightsError

if TYPE_CHECKING:
    import keras
    import numpy as np

    from training.outliers import Outliers

logger = logging.getLogger("training")


def run(config: TrainConfig) -> dict[str, Any]:
    """Trains, exports and evaluates one model version; returns its model card."""
    from training.augment import augment_offline
    from training.card import build_model_card, describe_training
    from training.datasets.combine import held_out_test_sets, split_train_validation
    from training.datasets.registry import load_configured_sources
    from training.lineage import list_run_histories
    from training.outliers import generate_outliers
    from training.plots import save_training_curves
    from training.publish import export_and_evaluate
    from training.train import TrainingBatches, train
    from training.weights import choose_final_weights, require_checkpoints, score_start

    # Bad input is said before minutes of loading data and hours of training: the start checkpoints,
    # a taken run name, a taken promotion version.
    require_checkpoints(config.initial_weights)
    require_checkpoints(config.teachers, flag="--teacher")
    _check_run_dir_is_free(config)
    # 1. datasets: every source's train split pooled and split 90/10; each test split kept apart.
    # Loaded before the run folder is made, so that a dataset error leaves no empty run behind.
    sources = load_configured_sources(config)
    run_dir = _make_run_dir(config)
    split = split_train_validation(
        sources, config.validation_fraction, config.seed, repeats=config.repeats_by_source
    )
    test_sets = held_out_test_sets(sources)
    # 2. augment: distorted copies made once; the rotations, shifts and zooms come per batch in train().
    images, labels = augment_offline(
        split.train.images, split.train.labels, config.static_augment, config.effective_augment_seed
    )
    train_digits = DigitSet("combined/train+augmented", images, labels)
    _describe_run(run_dir, config, split, train_digits, test_sets)
    # 2b. outliers: non-digits trained towards the uniform distribution, from the train split only.
    outlier_count = round(config.outlier_fraction * len(train_digits))
    outliers = generate_outliers(split.train, outlier_count, config.effective_augment_seed)
    _show_outliers(run_dir, outliers)
    # 2c. teachers: each training image's target blends its label with what earlier models read in it.
    train_targets = _distilled_targets(config, train_digits)
    # 3. train, from random weights or from a fine-tune's start, scored first: it may stay the best.
    model, trainee, hardware = _build_model(config)
    batches = TrainingBatches.from_digits(
        train_digits,
        split.train,
        split.validation,
        config,
        outlier_images=outliers.images,
        train_targets=train_targets,
    )
    started_at = time.perf_counter()
    start = score_start(model, batches) if config.initial_weights else None
    fit = train(trainee, batches, config, run_dir / "best.keras")
    if trainee is not model:  # --mixed-precision: all that follows judges the weights in float32
        _take_over_training_state(model, trainee)
    # 4. choose the final weights on validation; checkpointed, so a later fine-tune starts from them.
    if start is not None and not config.keep_start_if_best:
        logger.info("the start weights are left out of the final choice (--no-keep-start-if-best)")
        start = None
    choice = choose_final_weights(model, fit.averaging, start, batches)
    model.save(run_dir / "best.keras")
    card = build_model_card(int(model.count_params()), sources, split, config)
    card["splits"]["train_augmented"] = len(train_digits)
    card["outliers"] = outliers.describe()
    seconds = time.perf_counter() - started_at
    card["training"] = describe_training(fit.history, seconds, hardware, choice.to_card())
    write_model_card(run_dir, card)
    # The whole lineage: a fine-tune's curves continue those of the runs it started from.
    save_training_curves(run_dir / "training_curves.png", list_run_histories(card, run_dir.name))
    # 5. export, 6. evaluate the exported artefact
    return export_and_evaluate(model, card, run_dir, split.validation, test_sets, config)


def _check_run_dir_is_free(config: TrainConfig) -> None:
    """Checks, before any data is loaded, that the run's name and the version it would promote to are free.

    Raises:
        FileExistsError: a run of that name exists (runs are never overwritten).
        PromotionError: `--output-dir` already holds `--version`.
    """
    from training.promote import check_version_is_free

    if config.output_dir is not None and config.version is not None:
        check_version_is_free(config.output_dir / str(config.version))
    if config.run_name is not None and (config.runs_dir / config.run_name).exists():
        raise FileExistsError(
            f"run folder {config.runs_dir / config.run_name} exists; runs are never overwritten"
        )


def _make_run_dir(config: TrainConfig) -> Path:
    """Makes the run's own folder (named, or by its start time).

    Raises:
        FileExistsError: a run of that name appeared since the check (runs are never overwritten).
    """
    config.runs_dir.mkdir(parents=True, exist_ok=True)
    if config.run_name is not None:
        run_dir = config.runs_dir / config.run_name
        run_dir.mkdir()
    else:  # the UTC start time, -quick for a smoke test, and a suffix that makes it unique
        started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ("-quick" if config.quick else "")
        run_dir = Path(tempfile.mkdtemp(dir=config.runs_dir, prefix=f"{started}-"))
    logger.info("run folder %s", run_dir)
    return run_dir


def _describe_run(
    run_dir: Path,
    config: TrainConfig,
    split: TrainValidationSplit,
    train_digits: DigitSet,
    test_sets: list[DigitSet],
) -> None:
    """Logs the data sizes and shows augmented samples."""
    logger.info(
        "train %d images (%d before augmentation), validation %d; test sets: %s",
        len(train_digits),
        len(split.train),
        len(split.validation),
        ", ".join(f"{digits.name} ({len(digits)})" for digits in test_sets),
    )
    _save_augmentation_samples(run_dir, split.train, train_digits, config)


def _show_outliers(run_dir: Path, outliers: Outliers) -> None:
    """Logs how many non-digits of each kind train with the digits, and shows ten of each in a grid."""
    from training.plots import save_digit_grid

    if len(outliers.images):
        logger.info("outliers (uniform targets): %s", outliers.describe())
        images, captions = outliers.pick_samples(per_kind=10)
        save_digit_grid(run_dir / "outlier_samples.png", images, captions, "non-digits (uniform targets)")


def _distilled_targets(config: TrainConfig, train_digits: DigitSet) -> np.ndarray | None:
    """The training images' targets from --teacher (training/distill.py); None without teachers."""
    if not config.teachers:
        return None
    from training.distill import distilled_targets, teacher_probabilities

    logger.info("teachers (weight %.2f): %s", config.teacher_weight, ", ".join(map(str, config.teachers)))
    probabilities = teacher_probabilities(config.teachers, train_digits.images)
    return distilled_targets(train_digits.labels, probabilities, config.teacher_weight)


def _build_model(config: TrainConfig) -> tuple[keras.Model, keras.Model, str]:
    """The compiled float32 model, built where it trains (a strategy scope for several GPUs), holding
    random weights or a fine-tune's start; the model that trains: the same one, or with
    `--mixed-precision` a bfloat16 twin holding the same weights; and a description of that hardware."""
    import keras

    from training.model import MIXED_BFLOAT16, build_model
    from training.train import compile_model, describe_hardware
    from training.weights import load_initial_weights

    hardware, scope = describe_hardware()
    logger.info("training on %s%s", hardware, ", bfloat16 mixed precision" if config.mixed_precision else "")
    keras.utils.set_random_seed(config.effective_augment_seed)
    with scope:
        model = build_model(dense_l2=config.dense_l2)
        if config.initial_weights:
            load_initial_weights(model, config.initial_weights)
        compile_model(model, config)
        trainee = model
        if config.mixed_precision:
            trainee = build_model(dense_l2=config.dense_l2, dtype_policy=MIXED_BFLOAT16)
            trainee.set_weights(model.get_weights())
            compile_model(trainee, config)
            # Built here, in the strategy's scope (several GPUs need their variables made in it), for
            # `_take_over_training_state` to fill.
            model.optimizer.build(model.trainable_variables)
    return model, trainee, hardware


def _take_over_training_state(model: keras.Model, trainee: keras.Model) -> None:
    """Copies the weights a mixed-precision twin trained, and its optimizer's state, into the float32
    model: its checkpoint then holds what a float32 run's holds (an unbuilt optimizer would make
    `keras.saving.load_model` warn that it skips the saved one's variables)."""
    model.set_weights(trainee.get_weights())
    for target, source in zip(model.optimizer.variables, trainee.optimizer.variables, strict=True):
        target.assign(source)


def _save_augmentation_samples(
    run_dir: Path, originals: DigitSet, augmented: DigitSet, config: TrainConfig
) -> None:
    """The grid of augmentation samples: originals above their copies, then each enabled style
    transform applied alone to the same originals (one row each)."""
    import numpy as np

    from training.plots import save_digit_grid
    from training.style_augment import sample_style_transforms

    # Originals come first in `augmented`, then each copy round: show an original above its copies.
    rounds = min(4, len(augmented) // max(1, len(originals)))
    picks = np.random.default_rng(0).choice(len(originals), size=min(10, len(originals)), replace=False)
    rows = [augmented.images[picks + round_index * len(originals)] for round_index in range(rounds)]
    captions = [("original" if row == 0 else f"copy {row}") for row in range(rounds) for _ in picks]
    styled = [
        sample_style_transforms(
            originals.images[pick], config.static_augment, config.effective_augment_seed + i
        )
        for i, pick in enumerate(picks)
    ]
    for name in styled[0] if styled else ():
        rows.append(np.stack([samples[name] for samples in styled]))
        captions.extend([name] * len(picks))
    save_digit_grid(
        run_dir / "augmentation_samples.png", np.concatenate(rows), captions, "static augmentation"
    )


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI and returns the exit status; prints the summary (the CLI's only prints)."""
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        card = run(config)
    except (DatasetError, FileExistsError, InitialWeightsError, PromotionError) as error:
        print(f"error: {error}", file=sys.stderr)
        if isinstance(error, PromotionError):  # raised after training: the model is safe in its run
            print(f"the model is kept in its run folder under {config.runs_dir}; promote it with "
                  "python -m training.promote RUN --models-dir DIR", file=sys.stderr)  # fmt: skip
        return 2
    print(format_run_summary(card))
    return 0


if __name__ == "__main__":
    sys.exit(main())
