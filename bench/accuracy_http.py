"""End-to-end accuracy through HTTP on labelled test sets versus the model's own accuracy on them.

Sends every image of each set to `POST /predict` of the real service (uvicorn, 127.0.0.1, batching
on, concurrency 32; started once for all sets) and compares the digits it answers with the labels. In
the same run, it loads the same SavedModel in this process and classifies each set's images directly:
the raw MNIST arrays (pixel / 255, no pre-processing at all), the canonical USPS digits, and a folder's
files as training reads them (decode + preprocess). The sets (`--set`, repeatable, default mnist):

- mnist: the 10,000 MNIST test digits, sent as PNGs. Target: HTTP accuracy within 0.1 point of the
  model's own, i.e. the decode and pre-processing stages lose nothing on clean digits.
- usps: the 2,007 USPS test digits (canonical 28x28), sent as PNGs. No target.
- cvl: CVL test (60 writers no model has seen), each file sent as it is. Target: HTTP accuracy at
  least 98.0 %. The 5 writers with the lowest accuracy are reported too.
- folder=PATH: any PATH/<digit>/ tree of image files, each sent as it is. No target.

Prints one Markdown table row per set and one line per target; exits with status 1 if one failed.

    python -m bench.accuracy_http [--model-dir models/digits] [--set mnist|usps|cvl|folder=PATH ...]
        [--concurrency 32] [--limit 10000] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np

from bench.machine import load_average, machine_description
from digits.contract import to_model_inputs
from digits.model import DigitModel
from testkit.http_load import build_multipart_request, run_load
from testkit.labelled_sets import LabelledSet, check_set_name, load_labelled_set, worst_writers
from testkit.output_paths import output_file, output_folder
from testkit.server import LOOPBACK_HOST, free_port, running_service
from testkit.shared_data import REPO_ROOT

TARGET_GAP_POINTS = 0.1
TARGET_CVL_HTTP_ACCURACY_PERCENT = 98.0
WORST_WRITER_COUNT = 5
DIRECT_BATCH_SIZE = 500
TABLE_HEADER = (
    "| set | images | HTTP accuracy % | model accuracy % | gap (points) | errors (non-200) |\n"
    "|---|---:|---:|---:|---:|---:|"
)


def direct_predictions(model: DigitModel, labelled_set: LabelledSet) -> np.ndarray:
    """The model's own digits for the set's model images (-1 where the file held no readable digit)."""
    inputs = to_model_inputs(labelled_set.model_images)
    chunks = [
        model.predict_batch(inputs[start : start + DIRECT_BATCH_SIZE])
        for start in range(0, len(inputs), DIRECT_BATCH_SIZE)
    ]
    digits = np.concatenate(chunks).argmax(axis=1)
    return np.where(labelled_set.has_model_image, digits, -1)


def send_set(port: int, labelled_set: LabelledSet, args: argparse.Namespace) -> dict:
    """Sends each upload of the set once to `/predict`: the digits answered (-1 on error), statuses, rate."""
    host = f"{LOOPBACK_HOST}:{port}"
    requests = [
        build_multipart_request(host, "/predict", "file", file_name, data)
        for file_name, data in zip(labelled_set.file_names, labelled_set.uploads, strict=True)
    ]
    result = asyncio.run(run_load(port, requests, args.concurrency, args.time_cap_seconds, keep_bodies=True))
    digits = np.full(len(requests), -1)
    for index, body in result.bodies.items():
        digits[index] = json.loads(body).get("digit", -1)
    return {
        "digits": digits,
        "statuses": result.status_counts,
        "requests_per_second": result.requests_per_second,
    }


def http_results(model_dir: Path, labelled_sets: list[LabelledSet], args: argparse.Namespace) -> list[dict]:
    """Starts the service once and sends every set to it, one after the other."""
    port = free_port()
    environment = {"DIGITSERVE_MODEL_DIR": str(model_dir.resolve())}
    with running_service(port, environment, args.log_dir / "digitserve-accuracy.log"):
        return [send_set(port, labelled_set, args) for labelled_set in labelled_sets]


def set_report(labelled_set: LabelledSet, direct: np.ndarray, served: dict) -> dict:
    """One set's figures: accuracies, gap, errors, statuses (and the worst writers where known)."""
    labels = labelled_set.labels
    http_accuracy = float((served["digits"] == labels).mean() * 100)
    model_accuracy = float((direct == labels).mean() * 100)
    report = {
        "set": labelled_set.name,
        "images": len(labels),
        "http_accuracy_percent": round(http_accuracy, 2),
        "model_accuracy_percent": round(model_accuracy, 2),
        "gap_points": round(model_accuracy - http_accuracy, 2),
        "errors": len(labels) - served["statuses"].get(200, 0),
        "http_statuses": served["statuses"],
        "http_requests_per_second": round(served["requests_per_second"], 1),
        "http_agrees_with_model_percent": round(float((served["digits"] == direct).mean() * 100), 2),
    }
    if labelled_set.writers is not None:
        is_correct = served["digits"] == labels
        report["worst_writers"] = worst_writers(labelled_set.writers, is_correct, WORST_WRITER_COUNT)
    return report


def check_targets(report: dict) -> list[dict]:
    """The set's targets (MNIST: the gap; CVL: HTTP accuracy), each with whether it is met."""
    if report["set"] == "mnist":
        return [
            {
                "set": "mnist",
                "target": f"|model - http| <= {TARGET_GAP_POINTS} point",
                "is_met": abs(report["gap_points"]) <= TARGET_GAP_POINTS,
            }
        ]
    if report["set"] == "cvl":
        return [
            {
                "set": "cvl",
                "target": f"http accuracy >= {TARGET_CVL_HTTP_ACCURACY_PERCENT} %",
                "is_met": report["http_accuracy_percent"] >= TARGET_CVL_HTTP_ACCURACY_PERCENT,
            }
        ]
    return []


def print_summary(reports: list[dict], targets: list[dict]) -> None:
    """The Markdown table, the worst writers of each set that has writers, and one line per target."""
    print(TABLE_HEADER)
    for report in reports:
        print(
            f"| {report['set']} | {report['images']} | {report['http_accuracy_percent']:.2f} "
            f"| {report['model_accuracy_percent']:.2f} | {report['gap_points']:.2f} | {report['errors']} |"
        )
    for report in reports:
        if "worst_writers" in report:
            writers = ", ".join(
                f"{row['writer']} {row['accuracy_percent']:.1f} % of {row['images']}"
                for row in report["worst_writers"]
            )
            print(f"{report['set']} worst writers (HTTP accuracy): {writers}")
    for target in targets:
        outcome = "met" if target["is_met"] else "NOT met (target failed)"
        print(f"target {target['set']} {target['target']}: {outcome}")


def parse_set_name(name: str) -> str:
    """`--set`'s type: the set name, or argparse's usage error naming the sets there are."""
    try:
        return check_set_name(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument(
        "--set",
        dest="set_names",
        action="append",
        type=parse_set_name,
        help="mnist, usps, cvl or folder=PATH; repeat for several (default: mnist)",
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--limit",
        type=int,
        default=10_000,
        help="at most N images per set: the first N of MNIST and USPS, N evenly spaced files of a folder",
    )
    parser.add_argument("--time-cap-seconds", type=float, default=600.0, help="per set")
    parser.add_argument("--json-out", type=output_file, help="also write the figures as JSON here")
    parser.add_argument(
        "--log-dir", type=output_folder, default=Path("/tmp"), help="the service's log goes here"
    )
    args = parser.parse_args()
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    args.set_names = list(dict.fromkeys(args.set_names or ["mnist"]))
    return args


def main() -> None:
    args = parse_arguments()
    labelled_sets = [load_labelled_set(name, args.limit) for name in args.set_names]
    model = DigitModel.load(args.model_dir)
    direct = [direct_predictions(model, labelled_set) for labelled_set in labelled_sets]
    served = http_results(args.model_dir, labelled_sets, args)
    reports = [set_report(*parts) for parts in zip(labelled_sets, direct, served, strict=True)]
    targets = [target for report in reports for target in check_targets(report)]
    print_summary(reports, targets)
    if args.json_out:
        summary = {
            "machine": machine_description(),
            "load_average_after": load_average(),
            "model_dir": str(args.model_dir),
            "sets": reports,
            "targets": targets,
        }
        args.json_out.write_text(json.dumps(summary, indent=2))
    if not all(target["is_met"] for target in targets):
        sys.exit(1)


if __name__ == "__main__":
    main()
