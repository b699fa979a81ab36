"""Reading whole written numbers through HTTP: how often `POST /read` gets the exact string and each digit
right, whether it flags its wrong reads unsure, and how many numbers a second it reads.

The numbers are written from TEST splits only (`testkit.written_numbers`: MNIST test, USPS test and CVL
test, each CVL number by one writer; segmentation is tuned on the train splits, never on these), in
groups of `--numbers-per-group`:

- separated/<source> for mnist, usps, cvl: 3-7 digits, a gap between every two;
- touching/<source>: 3-7 digits, exactly one adjacent pair's inks touching;
- long/mixed: separated numbers of 2 or 8-10 digits, the three sources in turn.

In every group even-numbered numbers are scans sent as PNG and odd-numbered ones phone photos sent as
JPEG quality 85; a second table pools the groups by rendering. Number i of a group depends only on the
seed, the group and i. Each is posted once to `/read` (field `file`) of the real service (uvicorn on
127.0.0.1, started from `--model-dir`, or the one already listening on `--port`), concurrency 32.
Scoring (`testkit.read_tally`): exact-string accuracy; digits read (by position when the lengths agree,
else along the best alignment); wrong reads flagged `unsure`; errors by status and code, each counted
as a wrong read that was not flagged. Then one 5-digit photo is posted over and over at concurrency 32
for `--throughput-seconds`: numbers read (200 answers) per second, and their p50/p99 latency.

Targets (`testkit.read_tally.TARGETS`), each printed with ✔ or ✘; exit status 1 if one fails:
exact-string >= 97 % pooled over separated/*, >= 90 % pooled over touching/*, >= 80 % of all wrong reads
flagged unsure, >= 150 numbers/s.

`--dry-run` only writes a few numbers of each group to `--samples-dir` (to look at) and starts nothing;
in a measuring run `--samples-dir` receives the wrongly read numbers, named by truth and answer.

    python -m bench.read_accuracy [--model-dir models/digits | --port PORT] [--numbers-per-group 300]
        [--seed 0] [--concurrency 32] [--throughput-seconds 10] [--json-out PATH] [--samples-dir DIR]
        [--dry-run] [--log-dir /tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.machine import load_average, machine_description
from testkit.http_load import build_multipart_request, run_load, send_uploads
from testkit.images import encode_jpeg, encode_png
from testkit.output_paths import output_file, output_folder
from testkit.read_tally import check_targets, format_table, format_target, parse_answer, tally_groups
from testkit.server import LOOPBACK_HOST, service_on
from testkit.shared_data import REPO_ROOT
from testkit.two_digit_numbers import DigitPool
from testkit.written_numbers import RENDERINGS, SOURCE_NAMES, WrittenNumber, load_digit_pool, write_number

TEST_SPLIT = "test"  # the benchmark's numbers never come from the train splits
SHORT_DIGIT_COUNTS = (3, 4, 5, 6, 7)
JPEG_QUALITY = 85
DRY_RUN_NUMBERS_PER_GROUP = 4
THROUGHPUT_DIGIT_COUNT = 5
THROUGHPUT_SEED_PART = 99  # the throughput photo's own generator, apart from every group's
MAX_REQUESTS_PER_SECOND = 5000  # bounds the throughput run's request list, far above any rate seen


@dataclass(frozen=True)
class Group:
    """Numbers written alike: from these sources in turn, with one of these digit counts."""

    name: str
    sources: tuple[str, ...]
    digit_counts: tuple[int, ...]
    is_touching: bool


GROUPS = (
    *(Group(f"separated/{source}", (source,), SHORT_DIGIT_COUNTS, False) for source in SOURCE_NAMES),
    *(Group(f"touching/{source}", (source,), SHORT_DIGIT_COUNTS, True) for source in SOURCE_NAMES),
    Group("long/mixed", SOURCE_NAMES, (2, 8, 9, 10), False),
)


@dataclass(frozen=True)
class Upload:
    """One written number as the service receives it, and its truth."""

    group: str
    rendering: str
    text: str
    file_name: str
    data: bytes


def write_group_number(pools: dict[str, DigitPool], group_index: int, index: int, seed: int) -> WrittenNumber:
    """Number `index` of GROUPS[group_index]: a scan when `index` is even, else a photo."""
    group = GROUPS[group_index]
    rng = np.random.default_rng([seed, group_index, index])
    source = group.sources[index % len(group.sources)]
    digit_count = int(rng.choice(group.digit_counts))
    rendering = RENDERINGS[index % len(RENDERINGS)]
    return write_number(pools[source], digit_count, rng, group.is_touching, rendering)


def encode_upload(group: str, index: int, number: WrittenNumber) -> Upload:
    """Number `index` of `group` as uploaded: a scan as PNG, a photo as JPEG."""
    if number.rendering == "scan":
        data, extension = encode_png(number.image), "png"
    else:
        data, extension = encode_jpeg(number.image, JPEG_QUALITY), "jpg"
    # The upload's name tells the service nothing of the truth.
    file_name = f"{group.replace('/', '-')}-{index:04d}.{extension}"
    return Upload(group, number.rendering, number.text, file_name, data)


def make_upload(pools: dict[str, DigitPool], group_index: int, index: int, seed: int) -> Upload:
    """Number `index` of GROUPS[group_index], written and encoded."""
    number = write_group_number(pools, group_index, index, seed)
    return encode_upload(GROUPS[group_index].name, index, number)


def make_uploads(pools: dict[str, DigitPool], numbers_per_group: int, seed: int) -> list[Upload]:
    return [
        make_upload(pools, group_index, index, seed)
        for group_index in range(len(GROUPS))
        for index in range(numbers_per_group)
    ]


def make_throughput_upload(pools: dict[str, DigitPool], seed: int) -> bytes:
    """One separated 5-digit MNIST photo, JPEG."""
    rng = np.random.default_rng([seed, THROUGHPUT_SEED_PART])
    number = write_number(pools["mnist"], THROUGHPUT_DIGIT_COUNT, rng, rendering="photo")
    return encode_jpeg(number.image, JPEG_QUALITY)


def measure_throughput(port: int, upload: bytes, args: argparse.Namespace) -> dict:
    """Posts `upload` to `/read` over and over at `--concurrency` for `--throughput-seconds`."""
    request = build_multipart_request(f"{LOOPBACK_HOST}:{port}", "/read", "file", "number.jpg", upload)
    request_count = int(args.throughput_seconds * MAX_REQUESTS_PER_SECOND) + args.concurrency
    result = asyncio.run(run_load(port, [request] * request_count, args.concurrency, args.throughput_seconds))
    answered = result.status_counts.get(200, 0)
    return {
        "concurrency": args.concurrency,
        "seconds": round(result.elapsed_seconds, 2),
        "numbers_per_second": round(answered / result.elapsed_seconds, 1) if result.elapsed_seconds else 0.0,
        "p50_ms": round(result.percentile_ms(50, 200), 1),
        "p99_ms": round(result.percentile_ms(99, 200), 1),
        "statuses": result.status_counts,
        "transport_errors": result.transport_errors,
    }


def post_numbers(
    uploads: list[Upload], throughput_upload: bytes, args: argparse.Namespace
) -> tuple[list[tuple[int | None, bytes]], dict | None]:
    """Starts the service (or uses the one on `--port`); each number once, then the throughput run."""
    port, service = service_on(args.port, args.model_dir, args.log_dir / "digitserve-read.log")
    host = f"{LOOPBACK_HOST}:{port}"
    requests = [
        build_multipart_request(host, "/read", "file", upload.file_name, upload.data) for upload in uploads
    ]
    with service:
        answers = asyncio.run(send_uploads(port, requests, args.concurrency, args.request_timeout_seconds))
        throughput = (
            measure_throughput(port, throughput_upload, args) if args.throughput_seconds > 0 else None
        )
    return answers, throughput


def write_samples(folder: Path, uploads: list[Upload], read_texts: list[str] | None = None) -> int:
    """Writes each upload to `folder`; given what was read (a text or an error), only the wrong reads."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for index, upload in enumerate(uploads):
        stem, extension = upload.file_name.rsplit(".", 1)
        if read_texts is None:
            (folder / f"{stem}-{upload.text}.{extension}").write_bytes(upload.data)
        elif read_texts[index] != upload.text:
            answer = re.sub(r"[^0-9A-Za-z_]+", "_", read_texts[index])
            (folder / f"{stem}-{upload.text}-read-{answer}.{extension}").write_bytes(upload.data)
        else:
            continue
        written += 1
    return written


def dry_run(uploads: list[Upload], args: argparse.Namespace) -> None:
    """Prints what was generated, per group, and writes it all to `--samples-dir`."""
    print("| group | numbers | digits | scans | photos | mean upload KiB |\n|---|---:|---:|---:|---:|---:|")
    for group in GROUPS:
        mine = [upload for upload in uploads if upload.group == group.name]
        scans = sum(upload.rendering == "scan" for upload in mine)
        kibibytes = np.mean([len(upload.data) for upload in mine]) / 1024
        digits = sum(len(upload.text) for upload in mine)
        print(f"| {group.name} | {len(mine)} | {digits} | {scans} | {len(mine) - scans} | {kibibytes:.1f} |")
    print(f"{write_samples(args.samples_dir, uploads)} images written to {args.samples_dir}")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument("--port", type=int, help="use the service already listening on 127.0.0.1:PORT")
    parser.add_argument("--numbers-per-group", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--throughput-seconds", type=float, default=10.0, help="0: no throughput run")
    parser.add_argument("--request-timeout-seconds", type=float, default=60.0)
    parser.add_argument("--json-out", type=output_file, help="also write the figures as JSON here")
    parser.add_argument(
        "--samples-dir", type=output_folder, help="dry run: every number; else: the wrong reads"
    )
    parser.add_argument("--dry-run", action="store_true", help="generate and write samples; send nothing")
    parser.add_argument(
        "--log-dir", type=output_folder, default=Path("/tmp"), help="the service's log goes here"
    )
    args = parser.parse_args()
    if args.numbers_per_group < 1 or args.concurrency < 1 or args.throughput_seconds < 0:
        parser.error("--numbers-per-group and --concurrency must be at least 1, --throughput-seconds >= 0")
    if args.dry_run:
        args.numbers_per_group = min(args.numbers_per_group, DRY_RUN_NUMBERS_PER_GROUP)
        args.samples_dir = args.samples_dir or Path("/tmp/read-accuracy-samples")
    return args


def report(
    uploads: list[Upload], answers: list, throughput: dict | None, args: argparse.Namespace
) -> list[dict]:
    """Prints the tables, the errors, the throughput and the targets; writes the JSON and the wrong
    reads where asked. Returns the targets."""
    read_answers = [parse_answer(*answer) for answer in answers]
    truths = [upload.text for upload in uploads]
    tallies = tally_groups([upload.group for upload in uploads], truths, read_answers)
    by_rendering = tally_groups(
        [f"{upload.rendering}/{upload.group}" for upload in uploads], truths, read_answers
    )
    by_rendering = [tally for tally in by_rendering if tally.name in RENDERINGS]
    targets = check_targets(tallies, throughput["numbers_per_second"] if throughput else None)
    print(format_table(tallies), format_table(by_rendering), sep="\n\n")
    for code, count in tallies[-1].errors.most_common():
        print(f"error: {code} ({count} numbers)")
    if throughput:
        print(
            f"throughput: {throughput['numbers_per_second']} numbers/s, p50 {throughput['p50_ms']} ms, p99 "
            f"{throughput['p99_ms']} ms at concurrency {args.concurrency}; statuses {throughput['statuses']}"
        )
    print(*(format_target(target) for target in targets), sep="\n")
    print(f"load average after: {load_average()}")
    if args.samples_dir:
        write_samples(args.samples_dir, uploads, [answer.text or answer.error for answer in read_answers])
    if args.json_out:
        summary = {
            "machine": machine_description(),
            "load_average_after": load_average(),
            "model_dir": None if args.port else str(args.model_dir),
            "numbers_per_group": args.numbers_per_group,
            "seed": args.seed,
            "groups": [tally.to_row() for tally in tallies],
            "renderings": [tally.to_row() for tally in by_rendering],
            "throughput": throughput,
            "targets": targets,
        }
        args.json_out.write_text(json.dumps(summary, indent=2))
    return targets


def main() -> None:
    args = parse_arguments()
    print(f"machine: {machine_description()}; load average {load_average()}")
    started_seconds = time.perf_counter()
    pools = {source: load_digit_pool(source, TEST_SPLIT) for source in SOURCE_NAMES}
    uploads = make_uploads(pools, args.numbers_per_group, args.seed)
    print(f"{len(uploads)} numbers generated in {time.perf_counter() - started_seconds:.1f} s")
    if args.dry_run:
        dry_run(uploads, args)
        return
    answers, throughput = post_numbers(uploads, make_throughput_upload(pools, args.seed), args)
    targets = report(uploads, answers, throughput, args)
    if not all(target["is_met"] for target in targets):
        sys.exit(1)


if __name__ == "__main__":
    main()
