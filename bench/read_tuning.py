"""How `/read` cuts a number and chooses among the cuts, tuned on numbers written from the TRAIN splits
(MNIST train, USPS train, CVL train; the benchmark, `bench.read_accuracy`, writes its numbers from the
test splits only).

Two grids, each a Markdown table:
- `--grid cuts`: which wide parts are cut, and how (`app.pipeline.touching_cuts`: MIN_SPLIT_ASPECT,
  WIDE_FACTOR, TWO_WAY_CUTS). Per setting, the numbers are segmented again: exact-string accuracy of
  separated and touching numbers with the default rule, how often the right text is among the
  readings at all, and the cut-outs a number costs the model.
- `--grid rule` (default): the choice rule (`app.pipeline.read_choice.ReadingRule`): segments each
  number once, reads every candidate with the SavedModel in this process, then replays
  `choose_reading` with each rule and the model card's answer policy: exact-string accuracy, the
  right numbers flagged unsure, and the wrong ones flagged.

    python -m bench.read_tuning [--grid rule|cuts] [--model-dir models/digits] [--numbers-per-group 200]
        [--seed 11]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from app.pipeline import touching_cuts
from app.pipeline.postprocess import AnswerPolicy
from app.pipeline.read_choice import ReadingRule, choose_reading
from app.pipeline.segment import segment_number
from digits.calibration import Calibration
from digits.contract import to_model_inputs
from digits.model import DigitModel
from digits.model_store import read_model_card, resolve_version_dir
from testkit.written_numbers import RENDERINGS, SOURCE_NAMES, load_digit_pool, write_number

TRAIN_SPLIT = "train"
POOL_LIMIT = 20_000
MAX_DIGITS = 20
RULES = [
    ReadingRule(merge, cut, excess)
    for merge, cut, excess in itertools.product((0.5, 1.0, 2.0), (-0.25, 0.0, 0.25), (0.3, 0.5, 0.7, 1.0))
]


def _texts_possible(number, rows) -> set[str]:
    texts = {""}
    for readings in number.groups:
        endings = {"".join(str(int(rows[p].argmax())) for p in reading.pieces) for reading in readings}
        texts = {text + ending for text in texts for ending in endings}
    return texts


def _percent(values: list[bool]) -> str:
    return f"{100 * np.mean(values):.1f}" if values else "-"


def _write_numbers(numbers_per_group: int, seed: int) -> list[tuple[bool, str, np.ndarray]]:
    """(is_touching, text, grayscale image) of separated then touching numbers of 3-7 train digits."""
    rng = np.random.default_rng(seed)
    pools = {source: load_digit_pool(source, TRAIN_SPLIT, limit=POOL_LIMIT) for source in SOURCE_NAMES}
    written_numbers = []
    for is_touching, index in itertools.product((False, True), range(numbers_per_group)):
        pool = pools[SOURCE_NAMES[index % len(SOURCE_NAMES)]]
        rendering = RENDERINGS[(index // len(SOURCE_NAMES)) % len(RENDERINGS)]
        written = write_number(
            pool, int(rng.integers(3, 8)), rng, is_touching=is_touching, rendering=rendering
        )
        gray = written.image if written.image.ndim == 2 else written.image.mean(axis=2).astype(np.uint8)
        written_numbers.append((is_touching, written.text, gray))
    return written_numbers


def _read_all(written_numbers, model: DigitModel) -> list:
    cases = []
    for is_touching, text, gray in written_numbers:
        number = segment_number(gray, MAX_DIGITS)
        rows = model.predict_batch(to_model_inputs(np.stack([c.canonical for c in number.candidates])))
        cases.append((is_touching, text, number, rows))
    return cases


def sweep_cuts(written_numbers, model: DigitModel, policy: AnswerPolicy) -> None:
    print("| min aspect | wide factor | two-way cuts | separated % | touching % | text offered, touching % "
          "| cut-outs a number |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    defaults = (touching_cuts.MIN_SPLIT_ASPECT, touching_cuts.WIDE_FACTOR, touching_cuts.TWO_WAY_CUTS)
    try:
        for aspect, wide, two_way in itertools.product((0.7, 0.85), (1.0, 1.15, 1.3), (2, 3)):
            touching_cuts.MIN_SPLIT_ASPECT, touching_cuts.WIDE_FACTOR, touching_cuts.TWO_WAY_CUTS = (
                aspect,
                wide,
                two_way,
            )
            cases = _read_all(written_numbers, model)
            right = {False: [], True: []}
            for is_touching, truth, number, rows in cases:
                right[is_touching].append(choose_reading(number, rows, policy, MAX_DIGITS).text == truth)
            offered = [truth in _texts_possible(n, r) for touching, truth, n, r in cases if touching]
            cut_outs = np.mean([len(number.candidates) for _, _, number, _ in cases])
            columns = [_percent(right[False]), _percent(right[True]), _percent(offered), f"{cut_outs:.1f}"]
            print(f"| {aspect} | {wide} | {two_way} | " + " | ".join(columns) + " |")
    finally:
        touching_cuts.MIN_SPLIT_ASPECT, touching_cuts.WIDE_FACTOR, touching_cuts.TWO_WAY_CUTS = defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=("rule", "cuts"), default="rule")
    parser.add_argument("--model-dir", type=Path, default=Path("models/digits"))
    parser.add_argument("--numbers-per-group", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    arguments = parser.parse_args()
    model = DigitModel.load(arguments.model_dir)
    calibration = Calibration.from_card(read_model_card(resolve_version_dir(arguments.model_dir)))
    policy = AnswerPolicy.for_model(calibration, None)
    written_numbers = _write_numbers(arguments.numbers_per_group, arguments.seed)
    if arguments.grid == "cuts":
        sweep_cuts(written_numbers, model, policy)
        return
    cases = _read_all(written_numbers, model)
    for is_touching in (False, True):
        possible = [
            truth in _texts_possible(n, r) for touching, truth, n, r in cases if touching == is_touching
        ]
        print(f"{('separated', 'touching')[is_touching]}: text among the readings {_percent(possible)} %")
    print("| merge | cut | excess | separated % | touching % | right flagged % | wrong flagged % |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rule in RULES:
        right = {False: [], True: []}
        right_flagged, wrong_flagged = [], []
        for is_touching, truth, number, rows in cases:
            reading = choose_reading(number, rows, policy, MAX_DIGITS, rule)
            right[is_touching].append(reading.text == truth)
            (right_flagged if reading.text == truth else wrong_flagged).append(reading.unsure)
        shares = [right[False], right[True], right_flagged, wrong_flagged]
        rule_columns = f"| {rule.merge_penalty} | {rule.cut_penalty} | {rule.max_whole_excess_width} | "
        print(rule_columns + " | ".join(_percent(share) for share in shares) + " |")


if __name__ == "__main__":
    main()
