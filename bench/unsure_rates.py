"""Unsure answers through HTTP on held-out images where no single digit is: non-digits and two-digit numbers.

Generates `--count` held-out non-digit images and `--count` two-digit numbers (`testkit.unsure_sets`:
fonts, scribbles and textures the model was never trained on, and pairs of MNIST test and CVL test
digits; the same images for the same `--seed`), posts each once to `POST /predict` of the real service
(uvicorn on 127.0.0.1, started from `--model-dir`, or the one already listening on `--port`), and
prints per kind, per set and in total: images, answered unsure %, unsure answers by reason, digits
claimed, 422 no_digit_found refusals and other errors. The targets (`testkit.unsure_tally.TARGETS`):

- non-digits: answered unsure (any reason) or refused with 422 no_digit_found >= 95 %;
- two-digit numbers: answered unsure with reason several_digits or not_a_digit >= 95 %.

Exit status: 0 when every target is met; 1 when one is not; 3 when a request failed unexpectedly
(another status or error code, a 200 without the unsure fields, no answer): such a run measures
nothing, whatever the targets say.

    python -m bench.unsure_rates [--model-dir models/digits | --port PORT] [--count 1000] [--seed 1]
        [--concurrency 16] [--json-out PATH] [--images-dir DIR] [--log-dir /tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from bench.machine import load_average, machine_description
from testkit.http_load import Answer, build_multipart_request, send_uploads
from testkit.output_paths import output_file, output_folder
from testkit.server import LOOPBACK_HOST, service_on
from testkit.shared_data import REPO_ROOT
from testkit.unsure_sets import HeldOutImage, make_non_digit_images, make_two_digit_images
from testkit.unsure_tally import UNSURE_REASONS, Tally, check_targets, tally_answers

UNEXPECTED_ERROR_EXIT_STATUS = 3
TABLE_HEADER = (
    "| kind | images | unsure % | "
    + " | ".join(UNSURE_REASONS)
    + " | digit claimed | refused (422) | errors |\n"
    "|---|---:|---:|" + "---:|" * len(UNSURE_REASONS) + "---:|---:|---:|"
)


def post_images(images: list[HeldOutImage], args: argparse.Namespace) -> list[Answer]:
    """Starts the service (or uses the one on `--port`) and posts every image once to `/predict`."""
    port, service = service_on(args.port, args.model_dir, args.log_dir / "digitserve-unsure.log")
    host = f"{LOOPBACK_HOST}:{port}"
    requests = [
        build_multipart_request(host, "/predict", "file", f"{image.kind}-{index}.png", image.upload)
        for index, image in enumerate(images)
    ]
    with service:
        return asyncio.run(send_uploads(port, requests, args.concurrency, args.request_timeout_seconds))


def print_summary(tallies: list[Tally], targets: list[dict]) -> None:
    """The Markdown table (kinds, then sets, then the total) and one line per target."""
    print(TABLE_HEADER)
    for tally in tallies:
        reasons = " | ".join(str(tally.reasons[reason]) for reason in UNSURE_REASONS)
        print(
            f"| {tally.name} | {tally.images} | {tally.percent(tally.unsure):.1f} | {reasons} "
            f"| {tally.sure} | {tally.refused} | {sum(tally.errors.values())} |"
        )
    total = tallies[-1]
    for detail, count in total.errors.most_common():
        print(f"unexpected error: {detail} ({count} images)")
    for target in targets:
        outcome = "met" if target["is_met"] else "NOT met (target failed)"
        print(f"target {target['set']} {target['target']}: {target['percent']:.2f} %, {outcome}")


def write_images(folder: Path, images: list[HeldOutImage], answers: list[Answer]) -> None:
    """Each image as `<index>-<kind>-<status>.png`, to look at what was answered how."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, (image, (status_code, _)) in enumerate(zip(images, answers, strict=True)):
        (folder / f"{index:05d}-{image.kind}-{status_code}.png").write_bytes(image.upload)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument("--port", type=int, help="use the service already listening on 127.0.0.1:PORT")
    parser.add_argument("--count", type=int, default=1000, help="images of each set (non-digit, two-digit)")
    parser.add_argument("--seed", type=int, default=1, help="the held-out images' seed")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--request-timeout-seconds", type=float, default=30.0)
    parser.add_argument("--json-out", type=output_file, help="also write the figures as JSON here")
    parser.add_argument(
        "--images-dir", type=output_folder, help="also write every image here, named by its answer"
    )
    parser.add_argument(
        "--log-dir", type=output_folder, default=Path("/tmp"), help="the service's log goes here"
    )
    args = parser.parse_args()
    if args.count < 1 or args.concurrency < 1:
        parser.error("--count and --concurrency must be at least 1")
    return args


def main() -> None:
    args = parse_arguments()
    started_seconds = time.perf_counter()
    images = make_non_digit_images(args.count, args.seed) + make_two_digit_images(args.count, args.seed)
    print(f"{len(images)} held-out images generated in {time.perf_counter() - started_seconds:.1f} s")
    answers = post_images(images, args)
    tallies = tally_answers([image.kind for image in images], answers)
    targets = check_targets(tallies)
    print_summary(tallies, targets)
    if args.images_dir:
        write_images(args.images_dir, images, answers)
    if args.json_out:
        summary = {
            "machine": machine_description(),
            "load_average_after": load_average(),
            "model_dir": None if args.port else str(args.model_dir),
            "count": args.count,
            "seed": args.seed,
            "tallies": [tally.to_row() for tally in tallies],
            "targets": targets,
        }
        args.json_out.write_text(json.dumps(summary, indent=2))
    if tallies[-1].errors:
        sys.exit(UNEXPECTED_ERROR_EXIT_STATUS)
    if not all(target["is_met"] for target in targets):
        sys.exit(1)


if __name__ == "__main__":
    main()
