"""How much cheaper one image is for the model alone when it comes in a batch: the ceiling of batching.

Loads the SavedModel the way the service does (`DigitModel.load`, TensorFlow thread pools from the
service's settings) and times `predict_batch` on random images at batch 1 and at larger batches,
reporting wall and process CPU time per image. On a CPU-bound machine, batching can only save what
the model saves per image: if everything outside the model cost nothing, the service's throughput
with batching on could exceed batching off by at most cpu_per_image(1) / cpu_per_image(max batch).
`bench.bench_predict` runs this first, in its own process, and prints that ceiling beside the
measured ratios.

    python -m bench.model_batching [--model-dir models/digits] [--batch-sizes 1 8 32 64]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from app.settings import Settings

WARM_UP_CALLS = 5
IMAGES_PER_SIZE = 4096
MIN_CALLS = 40


def time_batch_size(model, images: np.ndarray) -> dict:
    """Times repeated calls on one batch; returns wall and CPU milliseconds per image."""
    batch_size = len(images)
    for _ in range(WARM_UP_CALLS):
        model.predict_batch(images)
    calls = max(MIN_CALLS, IMAGES_PER_SIZE // batch_size)
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(calls):
        model.predict_batch(images)
    wall_seconds, cpu_seconds = time.perf_counter() - wall_start, time.process_time() - cpu_start
    images_run = calls * batch_size
    return {
        "batch_size": batch_size,
        "calls": calls,
        "wall_ms_per_call": round(wall_seconds * 1000 / calls, 3),
        "wall_ms_per_image": round(wall_seconds * 1000 / images_run, 4),
        "cpu_ms_per_image": round(cpu_seconds * 1000 / images_run, 4),
    }


def measure(model_dir: Path, batch_sizes: list[int]) -> dict:
    """Loads the model with the service's thread settings and times each batch size."""
    # Imported here, not at the top: `bench.bench_predict` imports this module for its report only,
    # and the load client's process should stay free of TensorFlow.
    from digits.contract import IMAGE_SHAPE
    from digits.model import DigitModel, configure_thread_pools

    settings = Settings(model_dir=model_dir)
    configure_thread_pools(settings.tf_intra_op_threads, settings.tf_inter_op_threads)
    model = DigitModel.load(settings.model_dir, settings.model_version)
    rng = np.random.default_rng(0)
    batches = [rng.random((size, *IMAGE_SHAPE), dtype=np.float32) for size in batch_sizes]
    rows = [time_batch_size(model, images) for images in batches]
    single = rows[0]["cpu_ms_per_image"]
    for row in rows:
        row["cpu_saving_vs_first"] = round(single / row["cpu_ms_per_image"], 2)
    return {
        "model_version": model.version,
        "tf_intra_op_threads": settings.tf_intra_op_threads,
        "tf_inter_op_threads": settings.tf_inter_op_threads,
        "rows": rows,
    }


def print_report(report: dict) -> None:
    print(
        f"model alone (version {report['model_version']}, TensorFlow intra/inter-op threads "
        f"{report['tf_intra_op_threads']}/{report['tf_inter_op_threads']}):"
    )
    print(f"{'batch':>6} {'wall ms/call':>13} {'wall ms/img':>12} {'cpu ms/img':>11} {'cpu vs first':>15}")
    for row in report["rows"]:
        saving = row["cpu_saving_vs_first"]
        print(
            f"{row['batch_size']:>6} {row['wall_ms_per_call']:>13.3f} {row['wall_ms_per_image']:>12.4f} "
            f"{row['cpu_ms_per_image']:>11.4f} {saving:>14.2f}x"
        )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=Path("models/digits"))
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64], help="the first is the baseline"
    )
    parser.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    if any(size < 1 for size in args.batch_sizes):
        raise SystemExit("error: --batch-sizes must all be at least 1")
    report = measure(args.model_dir, args.batch_sizes)
    print_report(report)
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
