"""End-to-end accuracy through HTTP on the 10,000 MNIST test digits versus the model's own accuracy.

Sends every MNIST test image as a PNG to `POST /predict` of the real service (uvicorn, 127.0.0.1,
batching on, concurrency 32) and compares the digits it answers with the labels. In the same run, it
loads the same SavedModel in this process and classifies the raw MNIST arrays (pixel / 255, no
pre-processing at all). The target: HTTP accuracy within 0.1 point of the model's own, i.e. the
decode and pre-processing stages lose nothing on clean digits.

    python -m bench.accuracy_http [--model-dir models/digits] [--concurrency 32] [--limit 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import numpy as np

from bench.machine import load_average, machine_description
from digits.contract import to_model_inputs
from digits.model import DigitModel
from testkit.http_load import build_multipart_request, run_load
from testkit.images import encode_png
from testkit.server import LOOPBACK_HOST, free_port, running_service
from testkit.shared_data import REPO_ROOT, read_mnist

TARGET_GAP_POINTS = 0.1
DIRECT_BATCH_SIZE = 500


def direct_predictions(model_dir: Path, images: np.ndarray) -> np.ndarray:
    """The model's own digits for raw MNIST images (N, 28, 28) uint8: the model input, nothing else."""
    model = DigitModel.load(model_dir)
    inputs = to_model_inputs(images)
    chunks = [
        model.predict_batch(inputs[start : start + DIRECT_BATCH_SIZE])
        for start in range(0, len(inputs), DIRECT_BATCH_SIZE)
    ]
    return np.concatenate(chunks).argmax(axis=1)


def http_predictions(model_dir: Path, images: np.ndarray, args) -> tuple[np.ndarray, dict[int, int], float]:
    """The digits the service answers for each image sent as a PNG (-1 where it answered an error)."""
    port = free_port()
    environment = {"DIGITSERVE_MODEL_DIR": str(model_dir.resolve())}
    with running_service(port, environment, args.log_dir / "digitserve-accuracy.log"):
        host = f"{LOOPBACK_HOST}:{port}"
        requests = [
            build_multipart_request(host, "/predict", "file", "digit.png", encode_png(image))
            for image in images
        ]
        result = asyncio.run(
            run_load(port, requests, args.concurrency, args.time_cap_seconds, keep_bodies=True)
        )
    digits = np.full(len(images), -1)
    for index, body in result.bodies.items():
        answer = json.loads(body)
        digits[index] = answer.get("digit", -1)
    return digits, result.status_counts, result.requests_per_second


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models" / "digits")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--limit", type=int, default=10_000, help="first N MNIST test images")
    parser.add_argument("--time-cap-seconds", type=float, default=600.0)
    parser.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"), help="the service's log goes here")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    images, labels = read_mnist()
    images, labels = images[: args.limit], labels[: args.limit]
    direct = direct_predictions(args.model_dir, images)
    served, statuses, requests_per_second = http_predictions(args.model_dir, images, args)
    direct_accuracy = float((direct == labels).mean() * 100)
    http_accuracy = float((served == labels).mean() * 100)
    report = {
        "machine": machine_description(),
        "load_average_after": load_average(),
        "model_dir": str(args.model_dir),
        "images": len(labels),
        "http_statuses": statuses,
        "http_requests_per_second": round(requests_per_second, 1),
        "model_accuracy_percent": round(direct_accuracy, 2),
        "http_accuracy_percent": round(http_accuracy, 2),
        "gap_points": round(direct_accuracy - http_accuracy, 2),
        "http_agrees_with_model_percent": round(float((served == direct).mean() * 100), 2),
    }
    print(json.dumps(report, indent=2))
    is_met = abs(direct_accuracy - http_accuracy) <= TARGET_GAP_POINTS
    print(f"target |model - http| <= {TARGET_GAP_POINTS} point: {'met' if is_met else 'NOT met'}")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
