"""Exported SavedModel + held-out DigitSets -> per-dataset accuracy and loss, per-image results, plots.

Scores are always computed on the exported SavedModel, loaded by the service's own loader
(`digits.model.DigitModel`), not on the in-memory Keras model, so the figures in the model card are
those of the artefact that is served, read the way it is served.

`python -m training.evaluate MODEL_DIR [--dataset SPEC ...]` scores each dataset's test split (or, for
one without, such as a folder of digit folders 0..9, all its images as "<name>/all"), prints a table,
and writes per set each image's result (CSV) and its misread digits (PNG): which of a user's images fail.
With the model card's calibration (as the service applies it) it also prints, per set, the expected
calibration error and NLL before and after, the unsure rate and accepted answers' accuracy at the
threshold, and the accuracy at fixed coverages; and saves reliability.png and risk_coverage.png.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.pipeline.postprocess import AnswerPolicy
from digits.calibration import Calibration
from digits.contract import NUM_CLASSES, to_model_inputs
from digits.errors import ModelLoadError
from digits.model_store import MODEL_CARD_FILE_NAME, read_model_card, resolve_version_dir
from training.cli import FlagArgumentParser, bounded_value
from training.config import DEFAULT_CACHE_DIR
from training.datasets import DatasetError, DigitSet, DigitSource
from training.plots import save_confusion_matrices, save_digit_grid

ServingFunction = Callable[[np.ndarray], np.ndarray]
PREDICT_BATCH_SIZE = 1024
MISCLASSIFIED_SHOWN = 40
MISCLASSIFIED_SHOWN_PER_SET = 100
RESULT_COLUMNS = ("file", "label", "predicted", "confidence")
# Next to the other generated, never committed outputs: shipped model folders are committed.
DEFAULT_REPORTS_DIR = Path("reports")


@dataclass(frozen=True)
class DatasetScore:
    """How the model does on one held-out set."""

    name: str
    size: int
    accuracy: float
    loss: float
    confusion: np.ndarray  # (10, 10) int64, rows true digit, columns predicted digit
    predictions: np.ndarray  # (N,) int64 predicted digit
    confidences: np.ndarray  # (N,) float32 in [0, 1], the probability of the predicted digit
    probabilities: np.ndarray  # (N, 10) float32, the model's own (uncalibrated)
    labels: np.ndarray  # (N,) int64


def load_serving_function(version_dir: Path) -> ServingFunction:
    """Loads an exported version with the service's loader -> images (N, 28, 28, 1) -> (N, 10)."""
    from digits.model import DigitModel

    return DigitModel.load(version_dir).predict_batch


def predict_probabilities(serve: ServingFunction, images: np.ndarray) -> np.ndarray:
    """Runs canonical digits (N, 28, 28) uint8 through the model in batches -> (N, 10) float32."""
    batches = [
        serve(to_model_inputs(images[start : start + PREDICT_BATCH_SIZE]))
        for start in range(0, len(images), PREDICT_BATCH_SIZE)
    ]
    return np.concatenate(batches) if batches else np.zeros((0, NUM_CLASSES), dtype="float32")


def score_dataset(serve: ServingFunction, digits: DigitSet) -> DatasetScore:
    """Accuracy, mean cross-entropy and the confusion matrix of the model on one set."""
    probabilities = predict_probabilities(serve, digits.images)
    predictions = probabilities.argmax(axis=1)
    true_probabilities = probabilities[np.arange(len(digits)), digits.labels]
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (digits.labels, predictions), 1)
    return DatasetScore(
        name=digits.name,
        size=len(digits),
        accuracy=float((predictions == digits.labels).mean()),
        loss=float(-np.log(np.clip(true_probabilities, 1e-7, 1.0)).mean()),
        confusion=confusion,
        predictions=predictions,
        confidences=probabilities[np.arange(len(digits)), predictions],
        probabilities=probabilities,
        labels=digits.labels,
    )


def save_evaluation_plots(
    output_dir: Path, scores: Sequence[DatasetScore], test_sets: Sequence[DigitSet]
) -> None:
    """Writes confusion_matrix.png and misclassified.png (true -> predicted) into `output_dir`."""
    save_confusion_matrices(
        output_dir / "confusion_matrix.png", {score.name: score.confusion for score in scores}
    )
    images, captions = [], []
    per_set = max(1, MISCLASSIFIED_SHOWN // max(1, len(scores)))
    for score, digits in zip(scores, test_sets, strict=True):
        wrong = np.flatnonzero(score.predictions != digits.labels)[:per_set]
        images.extend(digits.images[wrong])
        captions.extend(
            f"{digits.name.split('/')[0]} {digits.labels[i]}→{score.predictions[i]}" for i in wrong
        )
    if images:
        save_digit_grid(
            output_dir / "misclassified.png", np.stack(images), captions, "misclassified: true→predicted"
        )


def format_table(scores: Sequence[DatasetScore]) -> str:
    """A Markdown table: dataset, size, accuracy (%), loss."""
    lines = ["| test set | images | accuracy | loss |", "|---|---:|---:|---:|"]
    lines += [f"| {s.name} | {s.size} | {100 * s.accuracy:.2f} % | {s.loss:.4f} |" for s in scores]
    return "\n".join(lines)


def select_evaluation_sets(sources: Sequence[DigitSource], *, enable_whole_sources: bool) -> list[DigitSet]:
    """Each source's test split -> the sets to score, in the sources' order.

    Args:
        sources: the loaded datasets.
        enable_whole_sources: score a source without a test split (a test-only folder) on all its
            images, as "<source name>/all"; else skip it (its images were training data).

    Raises:
        DatasetError: no set is left, or two sets have one name (their result files would clash).
    """
    sets = [
        source.test if source.test is not None else replace(source.train, name=f"{source.name}/all")
        for source in sources
        if source.test is not None or (enable_whole_sources and source.train is not None)
    ]
    names = [digits.name for digits in sets]
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        raise DatasetError(f"--dataset: more than one set named {', '.join(repeated)}; give each once")
    if not sets:
        raise DatasetError("none of the datasets has a test split; name a test set with --dataset")
    return sets


def write_results_csv(path: Path, digits: DigitSet, score: DatasetScore) -> None:
    """One row per image, in set order: file (its path, else "<set name>#<index>"), label, predicted digit,
    confidence (probability of the predicted digit, 4 decimals)."""
    origins = (
        digits.origins if digits.origins is not None else [f"{digits.name}#{i}" for i in range(len(digits))]
    )
    rows = zip(origins, digits.labels, score.predictions, score.confidences, strict=True)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(RESULT_COLUMNS)
        writer.writerows(
            (origin, label, predicted, f"{confidence:.4f}") for origin, label, predicted, confidence in rows
        )


def save_evaluation_results(
    output_dir: Path, scores: Sequence[DatasetScore], sets: Sequence[DigitSet]
) -> list[Path]:
    """Writes `<set>.csv` and, where a digit is misread, `<set>_misclassified.png` per set ("/" in its name
    becomes "_"), and confusion_matrix.png of all sets, into `output_dir`; returns the paths written."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for score, digits in zip(scores, sets, strict=True):
        stem = digits.name.replace("/", "_")
        write_results_csv(output_dir / f"{stem}.csv", digits, score)
        written.append(output_dir / f"{stem}.csv")
        grid_path = output_dir / f"{stem}_misclassified.png"
        grid_path.unlink(missing_ok=True)  # a grid left by an earlier run of a model that misread more
        wrong = np.flatnonzero(score.predictions != digits.labels)
        if wrong.size:
            shown = wrong[:MISCLASSIFIED_SHOWN_PER_SET]
            captions = [f"{digits.labels[index]}→{score.predictions[index]}" for index in shown]
            title = f"{digits.name}: {len(shown)} of {len(wrong)} misclassified, true→predicted"
            save_digit_grid(grid_path, digits.images[shown], captions, title)
            written.append(grid_path)
    save_confusion_matrices(
        output_dir / "confusion_matrix.png", {score.name: score.confusion for score in scores}
    )
    return [*written, output_dir / "confusion_matrix.png"]


def default_output_dir(version_dir: Path) -> Path:
    """`reports/<model folder name>-<version>`, e.g. reports/digits-4 for models/digits/4."""
    version_dir = version_dir.resolve()
    return DEFAULT_REPORTS_DIR / f"{version_dir.parent.name}-{version_dir.name}"


def _dataset_specs_from_card(version_dir: Path) -> list[str]:
    return list(read_model_card(version_dir).get("config", {}).get("datasets", []))


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = FlagArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="a version folder or a folder of versions")
    parser.add_argument(
        "--dataset",
        action="append",
        default=[],
        help="NAME[=PATH[:PATH...]], repeatable; scored on its test split, or on all its images as "
        "NAME/all if it has none (e.g. folder=PATH of digit folders 0..9); default: the card's datasets "
        "(their test splits only)",
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument(
        "--min-confidence",
        type=bounded_value(float, ge=0.0, le=1.0),
        help="the threshold of unsure answers to report at (default: the model card's, as the service)",
    )
    parser.add_argument("--no-download", action="store_true", help="never download missing files")
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="where to write <set>.csv (file,label,predicted,confidence per image), "
        "<set>_misclassified.png and confusion_matrix.png; default: "
        f"{DEFAULT_REPORTS_DIR}/<model folder>-<version>, e.g. {DEFAULT_REPORTS_DIR}/digits-4",
    )
    return parser.parse_args(argv)


def _load_evaluation_sets(specs: list[str], args: argparse.Namespace) -> list[DigitSet]:
    from training.datasets.registry import load_source, parse_dataset_spec

    sources = [
        load_source(parse_dataset_spec(spec), args.cache_dir, allow_download=not args.no_download)
        for spec in specs
    ]
    return select_evaluation_sets(sources, enable_whole_sources=bool(args.dataset))


def main(argv: list[str] | None = None) -> int:
    """`python -m training.evaluate MODEL_DIR [--dataset SPEC ...] [--cache-dir DIR] [--output-dir DIR]`."""
    args = _parse_arguments(argv)
    try:
        version_dir = resolve_version_dir(args.model_dir)
        specs = args.dataset or _dataset_specs_from_card(version_dir)
        if not specs:
            raise DatasetError(f"no --dataset given and {version_dir / MODEL_CARD_FILE_NAME} names none")
        sets = _load_evaluation_sets(specs, args)
        serve = load_serving_function(version_dir)  # ModelLoadError: a broken or foreign saved_model.pb
        policy = AnswerPolicy.for_model(
            Calibration.from_card(read_model_card(version_dir)), args.min_confidence
        )
    except (DatasetError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    scores = [score_dataset(serve, digits) for digits in sets]
    output_dir = args.output_dir or default_output_dir(version_dir)
    from training.selective import format_selective_table, save_selective_plots, score_selective

    selective = [score_selective(score, policy.calibration, policy.min_confidence) for score in scores]
    try:
        written = save_evaluation_results(output_dir, scores, sets)
        written += save_selective_plots(output_dir, selective, scores, policy.calibration)
    except OSError as error:
        print(f"error: cannot write into {output_dir}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"model: {version_dir}")
    print(format_table(scores))
    calibration = policy.calibration
    print(f"\ncalibration: temperature {calibration.temperature:g}; unsure below {policy.min_confidence:.4f}")
    print(format_selective_table(selective))
    print("\n".join(f"wrote {path}" for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
