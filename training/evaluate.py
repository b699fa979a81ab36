"""Exported SavedModel + held-out DigitSets -> per-dataset accuracy and loss, a table and plots.

Scores are always computed on the exported SavedModel, loaded by the service's own loader
(`digits.model.DigitModel`), not on the in-memory Keras model, so the figures in the model card are
those of the artefact that is served, read the way it is served.

`python -m training.evaluate MODEL_DIR [--dataset SPEC ...]` recomputes them and prints a table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits.contract import NUM_CLASSES, to_model_inputs
from digits.errors import ModelLoadError
from digits.model_store import MODEL_CARD_FILE_NAME, read_model_card, resolve_version_dir
from training.config import DEFAULT_CACHE_DIR
from training.datasets import DatasetError, DigitSet
from training.plots import save_confusion_matrices, save_digit_grid

ServingFunction = Callable[[np.ndarray], np.ndarray]
PREDICT_BATCH_SIZE = 1024
MISCLASSIFIED_SHOWN = 40


@dataclass(frozen=True)
class DatasetScore:
    """How the model does on one held-out set."""

    name: str
    size: int
    accuracy: float
    loss: float
    confusion: np.ndarray  # (10, 10) int64, rows true digit, columns predicted digit
    predictions: np.ndarray  # (N,) int64 predicted digit


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


def _dataset_specs_from_card(version_dir: Path) -> list[str]:
    return list(read_model_card(version_dir).get("config", {}).get("datasets", []))


def main(argv: list[str] | None = None) -> int:
    """`python -m training.evaluate MODEL_DIR [--dataset SPEC ...] [--cache-dir DIR]`."""
    from training.datasets.registry import load_source, parse_dataset_spec

    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="a version folder or a folder of versions")
    parser.add_argument(
        "--dataset", action="append", default=[], help="NAME[=PATH[:PATH...]]; default: the card's"
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--no-download", action="store_true", help="never download missing files")
    args = parser.parse_args(argv)
    try:
        version_dir = resolve_version_dir(args.model_dir)
        specs = args.dataset or _dataset_specs_from_card(version_dir)
        if not specs:
            raise DatasetError(f"no --dataset given and {version_dir / MODEL_CARD_FILE_NAME} names none")
        sources = [
            load_source(parse_dataset_spec(spec), args.cache_dir, allow_download=not args.no_download)
            for spec in specs
        ]
    except (DatasetError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    test_sets = [source.test for source in sources if source.test is not None]
    if not test_sets:
        print("error: none of the datasets has a test split", file=sys.stderr)
        return 2
    try:
        serve = load_serving_function(version_dir)
    except ModelLoadError as error:  # a folder with a broken or foreign saved_model.pb
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"model: {version_dir}")
    print(format_table([score_dataset(serve, digits) for digits in test_sets]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
