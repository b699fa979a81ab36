"""`/read` on numbers written from the recipe's VALIDATION digits: a measure to choose between models.

`bench.read_accuracy` writes its numbers from the test splits, which no choice may use; `bench.read_tuning`
from the train splits, which the models have learnt. This writes them from the validation split that
`make train`'s runs hold out (the same datasets, seed and writer-disjoint split as `training.run`), and
reads them with each model given, in this process through the service's stages and settings
(`digitserve.local.LocalReader`): the same numbers for every model. Separated and touching numbers of
3-7 digits, scans (PNG) and photos (JPEG) in turn.

    python -m bench.read_validation MODEL_DIR [MODEL_DIR ...] [--numbers-per-group 500] [--seed 21]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from app.__main__ import read_settings
from bench.read_accuracy import encode_upload
from digitserve.local import LocalReader
from digitserve.results import ImageError
from testkit.shared_data import RECIPE_DATASETS
from testkit.two_digit_numbers import DigitPool
from testkit.written_numbers import WrittenNumber, write_numbers
from training.config import parse_args
from training.datasets.combine import split_train_validation
from training.datasets.registry import load_configured_sources


def validation_pool() -> DigitPool:
    """The validation digits of `make train`'s runs."""
    config = parse_args(RECIPE_DATASETS)
    split = split_train_validation(
        load_configured_sources(config),
        config.validation_fraction,
        config.seed,
        repeats=config.repeats_by_source,
    )
    validation = split.validation
    return DigitPool("validation", validation.images, validation.labels, [""] * len(validation.labels))


def measure(model_dir: Path, numbers: list[WrittenNumber]) -> str:
    """One Markdown row: separated and touching numbers read exactly, and the wrong ones flagged unsure."""
    reader = LocalReader(read_settings(model_dir=model_dir))
    uploads = (encode_upload("validation", index, number).data for index, number in enumerate(numbers))
    right = {False: [], True: []}
    wrong_flagged = []
    for number, answer in zip(numbers, reader.iter_readings(uploads), strict=True):
        is_right = not isinstance(answer, ImageError) and answer.text == number.text
        right[number.is_touching].append(is_right)
        if not is_right:
            wrong_flagged.append(isinstance(answer, ImageError) or answer.unsure)
    return (
        f"| {model_dir} | {100 * np.mean(right[False]):.2f} | {100 * np.mean(right[True]):.2f} "
        f"| {100 * np.mean(wrong_flagged) if wrong_flagged else 0.0:.1f} ({len(wrong_flagged)}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", nargs="+", type=Path, metavar="MODEL_DIR")
    parser.add_argument("--numbers-per-group", type=int, default=500)
    parser.add_argument("--seed", type=int, default=21)
    arguments = parser.parse_args()
    if arguments.numbers_per_group < 1:
        parser.error("--numbers-per-group must be at least 1")
    missing = [str(model_dir) for model_dir in arguments.model_dirs if not model_dir.is_dir()]
    if missing:  # said before the datasets load and the numbers are written
        parser.error(f"no model folder at {', '.join(missing)}")
    numbers = write_numbers([validation_pool()], arguments.numbers_per_group, arguments.seed)
    print(f"{len(numbers)} numbers written from the validation digits (seed {arguments.seed})")
    print("| model | separated exact % | touching exact % | wrong flagged unsure % (wrong) |")
    print("|---|---:|---:|---:|")
    for model_dir in arguments.model_dirs:
        print(measure(model_dir, numbers), flush=True)


if __name__ == "__main__":
    main()
