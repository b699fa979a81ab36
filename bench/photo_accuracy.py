"""Accuracy on photos of test digits, through HTTP, this checkout beside a baseline commit: what a faster
pipeline may not cost.

Every digit of the chosen test sets (MNIST test, USPS test, CVL test: never trained on) is rendered
as a phone photo (`testkit.photo_like`: dark pen on uneven paper, blur, noise, JPEG) on a canvas of
300, 640 or 1200 pixels in turn (the digit 140-224 pixels tall, so from most of the photo down to a
tenth of it), and uploaded once to `POST /predict` of two services serving the same model: this
checkout's, and the baseline commit's code (a temporary `git worktree`, same interpreter). Both run
one after the other, alone on the machine. Prints the accuracy of each per set and the difference.

    python -m bench.photo_accuracy --baseline-ref 8259543 [--set mnist --set usps --set cvl] [--limit 2000]

Exit status 1 when this checkout is more than `--max-loss-points` (0.2) below the baseline on a set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench.machine import load_average, machine_description
from testkit.http_load import build_multipart_request, run_load
from testkit.images import encode_jpeg
from testkit.labelled_sets import SET_NAMES, load_labelled_set
from testkit.output_paths import output_file, output_folder
from testkit.photo_like import render_photo_like
from testkit.server import LOOPBACK_HOST, free_port, running_service
from testkit.shared_data import REPO_ROOT

CANVAS_SIDES_PIXELS = (300, 640, 1200)


def render_photos(digits: np.ndarray, seed: int) -> list[bytes]:
    """(N, 28, 28) uint8 digits -> N photo-like JPEGs, canvases cycling through CANVAS_SIDES_PIXELS."""
    rng = np.random.default_rng(seed)
    return [
        encode_jpeg(render_photo_like(digit, rng, CANVAS_SIDES_PIXELS[index % len(CANVAS_SIDES_PIXELS)]))
        for index, digit in enumerate(digits)
    ]


def answered_digits(port: int, photos: list[bytes], concurrency: int) -> np.ndarray:
    """Uploads each photo once to /predict -> the digit answered for each (-1 for a non-200)."""
    host = f"{LOOPBACK_HOST}:{port}"
    requests = [
        build_multipart_request(host, "/predict", "file", f"photo-{index}.jpg", photo)
        for index, photo in enumerate(photos)
    ]
    result = asyncio.run(run_load(port, requests, concurrency, time_cap_seconds=1800, keep_bodies=True))
    digits = np.full(len(photos), -1)
    for index, body in result.bodies.items():
        digits[index] = json.loads(body).get("digit", -1)
    return digits


@contextmanager
def baseline_checkout(ref: str) -> Iterator[Path]:
    """A temporary worktree of `ref` (removed afterwards)."""
    folder = Path(tempfile.mkdtemp(prefix="digitserve-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), ref], cwd=REPO_ROOT, check=True)
    try:
        yield folder
    finally:
        # Not checked: a failed clean-up must not hide what failed in the run (`git worktree prune`).
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=REPO_ROOT, check=False)


def answers_of(source_root: Path, model_dir: Path, photo_sets: dict, args: argparse.Namespace) -> dict:
    """Runs the service of `source_root` and sends it every set -> {set name: answered digits}."""
    port = free_port()
    environment = {"DIGITSERVE_MODEL_DIR": str(model_dir.resolve())}
    log_path = args.log_dir / f"digitserve-photo-accuracy-{source_root.name}.log"
    with running_service(port, environment, log_path, source_root=source_root):
        return {name: answered_digits(port, photos, args.concurrency) for name, photos in photo_sets.items()}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-ref", required=True, help="the commit to compare with, e.g. main~3")
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument("--set", dest="set_names", action="append", choices=SET_NAMES)
    parser.add_argument("--limit", type=int, default=2000, help="digits per set (default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-loss-points", type=float, default=0.2)
    parser.add_argument("--json-out", type=output_file)
    parser.add_argument("--log-dir", type=output_folder, default=Path("/tmp"))
    args = parser.parse_args()
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    args.set_names = list(dict.fromkeys(args.set_names or list(SET_NAMES)))
    return args


def main() -> None:
    args = parse_arguments()
    labelled_sets = {name: load_labelled_set(name, args.limit) for name in args.set_names}
    photo_sets = {
        name: render_photos(labelled.model_images, args.seed) for name, labelled in labelled_sets.items()
    }
    with baseline_checkout(args.baseline_ref) as baseline_root:
        baseline = answers_of(baseline_root, args.model_dir, photo_sets, args)
    current = answers_of(REPO_ROOT, args.model_dir, photo_sets, args)
    rows, is_met = [], True
    print(f"photo-like JPEGs of test digits through POST /predict; baseline {args.baseline_ref}")
    print(f"{'set':<6} {'photos':>7} {'baseline %':>11} {'this %':>8} {'change':>8} {'non-200 b/t':>12}")
    for name, labelled in labelled_sets.items():
        labels = labelled.labels
        before = float((baseline[name] == labels).mean() * 100)
        after = float((current[name] == labels).mean() * 100)
        change = after - before
        is_met &= change >= -args.max_loss_points
        failures = f"{int((baseline[name] < 0).sum())}/{int((current[name] < 0).sum())}"
        print(f"{name:<6} {len(labels):>7} {before:>11.2f} {after:>8.2f} {change:>+8.2f} {failures:>12}")
        rows.append({"set": name, "photos": len(labels), "baseline_percent": before, "this_percent": after})
    verdict = "met" if is_met else "NOT met"
    print(f"target: no set more than {args.max_loss_points} point below the baseline: {verdict}")
    if args.json_out:
        summary = {"machine": machine_description(), "load_average_after": load_average(), "sets": rows}
        args.json_out.write_text(json.dumps(summary, indent=2))
    if not is_met:
        sys.exit(1)


if __name__ == "__main__":
    main()
