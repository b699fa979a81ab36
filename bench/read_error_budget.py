"""Where `/read`'s wrong numbers come from: the cut, the number's context, or digits the model
misreads anyway.

The same numbers as `bench.read_accuracy` (same groups, seed and count: written from TEST digits
only), read in this process through the service's own stages (`prepare_number`, the model, then
`choose_reading` with the model card's answer policy), and each of their digits also read ALONE as
`/predict` reads it (`prepare_digit` of the digit's own upload: MNIST and USPS as PNGs of their arrays,
CVL as its original file). Each wrong number is put down to a cause (`testkit.read_error_budget`):
the count of digits (the segmentation), a digit misread only in the number (its cut-out), or digits
the model misreads alone as well.

"every digit right alone" is about the most a perfect segmentation could reach with this model: how
far `/read` is from it is the segmentation's share; the rest is the model's.

    python -m bench.read_error_budget [--model-dir models/digits] [--numbers-per-group 300] [--seed 0]
        [--json-out PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from app.pipeline.decode import DEFAULT_DECODE_LIMITS
from app.pipeline.postprocess import AnswerPolicy
from app.pipeline.prepare import prepare_digit, prepare_number
from app.pipeline.read_choice import choose_reading
from bench.machine import machine_description
from bench.read_accuracy import GROUPS, TEST_SPLIT, encode_upload, write_group_number
from digits.calibration import Calibration
from digits.contract import to_model_inputs
from digits.errors import DigitServeError
from digits.model import DigitModel
from digits.model_store import read_model_card, resolve_version_dir
from testkit.images import encode_png
from testkit.output_paths import output_file
from testkit.read_error_budget import NumberOutcome, summarize
from testkit.shared_data import REPO_ROOT, SHARED_DATA_DIR
from testkit.two_digit_numbers import DigitPool
from testkit.written_numbers import SOURCE_NAMES, load_digit_pool

MAX_DIGITS = 20


class AloneReader:
    """Each test digit read as its own `/predict` upload, once (numbers share digits)."""

    def __init__(self, pools: dict[str, DigitPool], model: DigitModel) -> None:
        self._index = {origin: (pool, i) for pool in pools.values() for i, origin in enumerate(pool.origins)}
        self._model = model
        self._digits: dict[str, int] = {}

    def _upload(self, origin: str) -> bytes:
        pool, index = self._index[origin]
        if pool.name == "cvl":
            return (SHARED_DATA_DIR / origin).read_bytes()
        return encode_png(pool.images[index])

    def read(self, origins: tuple[str, ...]) -> list[int]:
        missing = [origin for origin in dict.fromkeys(origins) if origin not in self._digits]
        if missing:
            canonical = np.stack(
                [prepare_digit(self._upload(o), DEFAULT_DECODE_LIMITS).canonical for o in missing]
            )
            rows = self._model.predict_batch(to_model_inputs(canonical))
            self._digits.update(zip(missing, (int(row.argmax()) for row in rows), strict=True))
        return [self._digits[origin] for origin in origins]


def read_number(data: bytes, model: DigitModel, policy: AnswerPolicy) -> str:
    try:
        number = prepare_number(data, DEFAULT_DECODE_LIMITS, MAX_DIGITS)
    except DigitServeError:
        return ""
    rows = model.predict_batch(to_model_inputs(np.stack([c.canonical for c in number.candidates])))
    try:
        return choose_reading(number, rows, policy, MAX_DIGITS).text
    except DigitServeError:
        return ""


def measure(model_dir: Path, numbers_per_group: int, seed: int) -> list[NumberOutcome]:
    model = DigitModel.load(model_dir)
    policy = AnswerPolicy.for_model(
        Calibration.from_card(read_model_card(resolve_version_dir(model_dir))), None
    )
    pools = {source: load_digit_pool(source, TEST_SPLIT) for source in SOURCE_NAMES}
    alone = AloneReader(pools, model)
    outcomes = []
    for group_index, group in enumerate(GROUPS):
        for index in range(numbers_per_group):
            written = write_group_number(pools, group_index, index, seed)
            upload = encode_upload(group.name, index, written)
            read_alone = alone.read(written.origins)
            right_alone = tuple(
                str(digit) == truth for digit, truth in zip(read_alone, written.text, strict=True)
            )
            outcomes.append(
                NumberOutcome(group.name, written.text, read_number(upload.data, model, policy), right_alone)
            )
    return outcomes


def print_table(rows: list[dict]) -> None:
    print(
        "| group | numbers | /read exact % | every digit right alone % | digits right alone % "
        "| wrong: count | wrong: in the number | wrong: alone too |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        wrong = row["wrong"]
        print(
            f"| {row['group']} | {row['numbers']} | {row['exact_percent']:.2f} | "
            f"{row['every_digit_right_alone_percent']:.2f} | {row['digits_right_alone_percent']:.2f} | "
            f"{wrong['count']} | {wrong['in the number']} | {wrong['alone too']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument("--numbers-per-group", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=output_file, help="also write the figures as JSON here")
    args = parser.parse_args()
    if args.numbers_per_group < 1:
        parser.error("--numbers-per-group must be at least 1")
    print(f"{machine_description()}; model {args.model_dir}; seed {args.seed}")
    rows = summarize(measure(args.model_dir, args.numbers_per_group, args.seed))
    print_table(rows)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
