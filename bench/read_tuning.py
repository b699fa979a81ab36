"""How `/read` cuts a number and chooses among the cuts, tuned on numbers written from the TRAIN splits
(MNIST train, USPS train, CVL train; the benchmark, `bench.read_accuracy`, writes its numbers from the
test splits only).

Three grids, each a Markdown table. Each segments the numbers, reads every candidate with the
SavedModel in this process, and replays `choose_reading` with the model card's answer policy:
- `--grid cuts`: which parts are cut, and where (`app.pipeline.touching_cuts`: MIN_SPLIT_ASPECT,
  MAX_ONE_DIGIT_ASPECT, WIDE_FACTOR, PAIR_CUT_FRACTIONS), each with three cut penalties. Per setting,
  the numbers are segmented again: exact-string accuracy of separated and touching numbers, how
  often the right text is among the readings at all, the wrong reads flagged, and the cut-outs a
  separated and a touching number make.
- `--grid rule` (default): the choice rule (`app.pipeline.read_choice.ReadingRule`'s penalties):
  exact-string accuracy, the right numbers flagged unsure, and the wrong ones flagged.
- `--grid looks`: `ReadingRule.second_look_below`, the confidence under which a group's cuts are read
  (`NumberLooks`): accuracy, flags, and the cut-outs the model reads per number.

    python -m bench.read_tuning [--grid rule|cuts|looks] [--model-dir models/digits]
        [--numbers-per-group 200] [--seed 11]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from app.pipeline import touching_cuts
from app.pipeline.postprocess import AnswerPolicy
from app.pipeline.read_choice import NumberLooks, ReadingRule, choose_reading
from app.pipeline.segment import segment_number
from digits.calibration import Calibration
from digits.contract import to_model_inputs
from digits.model import DigitModel
from digits.model_store import read_model_card, resolve_version_dir
from testkit.written_numbers import SOURCE_NAMES, load_digit_pool, write_numbers

TRAIN_SPLIT = "train"
POOL_LIMIT = 20_000
MAX_DIGITS = 20
RULES = [
    ReadingRule(merge, cut, excess)
    for merge, cut, excess in itertools.product((0.0, 0.25, 0.5, 1.0), (0.0, 0.25, 0.5), (0.3, 0.5, 0.7, 1.0))
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
    pools = [load_digit_pool(source, TRAIN_SPLIT, limit=POOL_LIMIT) for source in SOURCE_NAMES]
    return [
        (written.is_touching, written.text, _grayscale(written.image))
        for written in write_numbers(pools, numbers_per_group, seed)
    ]


def _grayscale(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else image.mean(axis=2).astype(np.uint8)


def _read_all(written_numbers, model: DigitModel) -> list:
    cases = []
    for is_touching, text, gray in written_numbers:
        number = segment_number(gray, MAX_DIGITS)
        rows = model.predict_batch(to_model_inputs(np.stack([c.canonical for c in number.candidates])))
        cases.append((is_touching, text, number, rows))
    return cases


# (min aspect, one-digit aspect, wide factor, pair cut fractions): the cuts before off-centre pair
# cuts, then with more cut places, then cutting narrower parts too.
CUT_SETTINGS = [
    (0.7, 0.95, 1.15, ()),
    (0.7, 0.95, 1.15, (0.33, 0.67)),
    (0.7, 0.95, 1.15, (0.3, 0.4, 0.6, 0.7)),
    (0.55, 0.85, 1.05, (0.3, 0.7)),
    (0.55, 0.85, 1.05, (0.33, 0.67)),
    (0.55, 0.85, 1.05, (0.3, 0.4, 0.6, 0.7)),
]
CUT_PENALTIES = (0.0, 0.25, 0.5)


def _flag_shares(cases, rule: ReadingRule, policy: AnswerPolicy) -> tuple[dict, list, list]:
    right, right_flagged, wrong_flagged = {False: [], True: []}, [], []
    for is_touching, truth, number, rows in cases:
        reading = choose_reading(number, rows, policy, MAX_DIGITS, rule)
        right[is_touching].append(reading.text == truth)
        (right_flagged if reading.text == truth else wrong_flagged).append(reading.unsure)
    return right, right_flagged, wrong_flagged


def _mean_by_kind(cases, counts: list[int]) -> str:
    by_kind = [[count for (touching, *_), count in zip(cases, counts, strict=True) if touching == kind]
               for kind in (False, True)]  # fmt: skip
    return "/".join(f"{np.mean(kind):.1f}" for kind in by_kind)


def sweep_cuts(written_numbers, model: DigitModel, policy: AnswerPolicy) -> None:
    print("| min aspect | one-digit aspect | wide factor | pair cut fractions | cut penalty "
          "| separated % | touching % | text offered, touching % | wrong flagged % "
          "| cut-outs separated/touching |")  # fmt: skip
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    names = ("MIN_SPLIT_ASPECT", "MAX_ONE_DIGIT_ASPECT", "WIDE_FACTOR", "PAIR_CUT_FRACTIONS")
    defaults = [getattr(touching_cuts, name) for name in names]
    try:
        for setting in CUT_SETTINGS:
            for name, value in zip(names, setting, strict=True):
                setattr(touching_cuts, name, value)
            cases = _read_all(written_numbers, model)
            offered = [truth in _texts_possible(n, r) for touching, truth, n, r in cases if touching]
            cut_outs = _mean_by_kind(cases, [len(number.candidates) for _, _, number, _ in cases])
            for penalty in CUT_PENALTIES:
                right, _, wrong_flagged = _flag_shares(cases, ReadingRule(cut_penalty=penalty), policy)
                columns = [_percent(right[False]), _percent(right[True]), _percent(offered)]
                columns += [_percent(wrong_flagged), cut_outs]
                aspect, one_digit, wide, fractions = setting
                print(
                    f"| {aspect} | {one_digit} | {wide} | {fractions or '-'} | {penalty} | "
                    + " | ".join(columns)
                    + " |"
                )
    finally:
        for name, value in zip(names, defaults, strict=True):
            setattr(touching_cuts, name, value)


def sweep_looks(cases, policy: AnswerPolicy) -> None:
    """Replays `NumberLooks` on each number with a model that answers from its rows read in full."""
    print("| second look below | separated % | touching % | wrong flagged % "
          "| cut-outs read separated/touching |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|")
    for threshold in (1.01, 0.999, 0.99, 0.9, 0.5):
        rule = ReadingRule(second_look_below=threshold)
        looked_cases, read_counts = [], []
        for is_touching, truth, number, rows in cases:
            looks = NumberLooks([number], rule)
            while looks.next_inputs():
                looks.take(rows[looks.wanted[0]])
            looked_cases.append((is_touching, truth, number, looks.rows[0]))
            read_counts.append(int(np.count_nonzero(~np.isnan(looks.rows[0][:, 0]))))
        right, _, wrong_flagged = _flag_shares(looked_cases, rule, policy)
        columns = [_percent(right[False]), _percent(right[True]), _percent(wrong_flagged)]
        print(f"| {threshold} | " + " | ".join(columns) + f" | {_mean_by_kind(cases, read_counts)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=("rule", "cuts", "looks"), default="rule")
    parser.add_argument("--model-dir", type=Path, default=Path("models/digits"))
    parser.add_argument("--numbers-per-group", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    arguments = parser.parse_args()
    if arguments.numbers_per_group < 1:
        parser.error("--numbers-per-group must be at least 1")
    model = DigitModel.load(arguments.model_dir)
    calibration = Calibration.from_card(read_model_card(resolve_version_dir(arguments.model_dir)))
    policy = AnswerPolicy.for_model(calibration, None)
    written_numbers = _write_numbers(arguments.numbers_per_group, arguments.seed)
    if arguments.grid == "cuts":
        sweep_cuts(written_numbers, model, policy)
        return
    cases = _read_all(written_numbers, model)
    if arguments.grid == "looks":
        sweep_looks(cases, policy)
        return
    for is_touching in (False, True):
        possible = [
            truth in _texts_possible(n, r) for touching, truth, n, r in cases if touching == is_touching
        ]
        print(f"{('separated', 'touching')[is_touching]}: text among the readings {_percent(possible)} %")
    print("| merge | cut | excess | separated % | touching % | right flagged % | wrong flagged % |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rule in RULES:
        right, right_flagged, wrong_flagged = _flag_shares(cases, rule, policy)
        shares = [right[False], right[True], right_flagged, wrong_flagged]
        rule_columns = f"| {rule.merge_penalty} | {rule.cut_penalty} | {rule.max_whole_excess_width} | "
        print(rule_columns + " | ".join(_percent(share) for share in shares) + " |")


if __name__ == "__main__":
    main()
