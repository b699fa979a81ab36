"""Where `/read`'s wrong numbers come from: the cut, the number's context, or digits the model
misreads anyway.

The same numbers as `bench.read_accuracy` (same groups, seed and count: written from TEST digits
only), read in this process through the service's own stages and settings
(`digitserve.local.LocalReader`, as `digitserve read --local`), and each of their digits also read
ALONE as `/predict` reads it (its own upload: MNIST and USPS as PNGs of their arrays, CVL as its
original file). Each wrong number is put down to a cause (`testkit.read_error_budget`): the count of
digits (the segmentation), a digit misread only in the number (its cut-out), or digits the model
misreads alone as well.

"every digit right alone" is about the most a perfect segmentation could reach with this model: how
far `/read` is from it is the segmentation's share; the rest is the model's.

    python -m bench.read_error_budget [--model-dir models/digits] [--numbers-per-group 300] [--seed 0]
        [--json-out PATH]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from app.__main__ import read_settings
from bench.machine import machine_description
from bench.read_accuracy import GROUPS, TEST_SPLIT, encode_upload, write_group_number
from digitserve.exchange import Image
from digitserve.local import LocalReader
from digitserve.results import ImageError
from testkit.images import encode_png
from testkit.output_paths import output_file
from testkit.read_error_budget import NumberOutcome, summarize
from testkit.shared_data import REPO_ROOT, SHARED_DATA_DIR
from testkit.two_digit_numbers import DigitPool
from testkit.written_numbers import SOURCE_NAMES, load_digit_pool


def _alone_image(pools: dict[str, DigitPool], origin: str) -> Image:
    """A test digit as its own upload: CVL's original file, MNIST's and USPS's array as a PNG."""
    source, _, index = origin.split("/", 2)  # "mnist/test/17", "cvl/test/3/0001-01-06.png"
    if source == "cvl":
        return str(SHARED_DATA_DIR / origin)
    return encode_png(pools[source].images[int(index)])


def measure(model_dir: Path, numbers_per_group: int, seed: int) -> list[NumberOutcome]:
    """Reads every number, then every digit they are written with, alone (each digit once)."""
    reader = LocalReader(read_settings(model_dir=model_dir))
    pools = {source: load_digit_pool(source, TEST_SPLIT) for source in SOURCE_NAMES}
    written: list[tuple[str, str, tuple[str, ...]]] = []  # group, text, origins: the images are not kept

    def number_uploads() -> Iterator[bytes]:
        for group_index, group in enumerate(GROUPS):
            for index in range(numbers_per_group):
                number = write_group_number(pools, group_index, index, seed)
                written.append((group.name, number.text, number.origins))
                yield encode_upload(group.name, index, number).data

    # An image the service refuses (no digit, too many) reads as "": a wrong count.
    texts = [
        "" if isinstance(answer, ImageError) else answer.text
        for answer in reader.iter_readings(number_uploads())
    ]
    origins = list(dict.fromkeys(origin for _, _, number_origins in written for origin in number_origins))
    alone = reader.iter_predictions(_alone_image(pools, origin) for origin in origins)
    digit_alone = {
        origin: None if isinstance(answer, ImageError) else answer.digit
        for origin, answer in zip(origins, alone, strict=True)
    }
    return [
        NumberOutcome(
            group,
            text,
            read,
            tuple(
                digit_alone[origin] == int(truth) for origin, truth in zip(number_origins, text, strict=True)
            ),
        )
        for (group, text, number_origins), read in zip(written, texts, strict=True)
    ]


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
