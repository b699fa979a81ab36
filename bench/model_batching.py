"""How much cheaper one image is for the model alone when it comes in a batch: the ceiling of batching.

Loads the SavedModel the way the service does (`DigitModel.load`, TensorFlow thread pools from the
service's settings) and times `predict_batch` on random images at batch 1 and at larger batches
(`testkit.model_timing.measure`), reporting wall and process CPU time per image. On a CPU-bound
machine, batching can only save what the model saves per image: if everything outside the model
cost nothing, the service's throughput with batching on could exceed batching off by at most
cpu_per_image(1) / cpu_per_image(max batch).
`bench.bench_predict` runs this first, in its own process, and prints that ceiling beside the
measured ratios.

    python -m bench.model_batching [--model-dir models/digits] [--batch-sizes 1 8 32 64]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from testkit.model_timing import measure
from testkit.output_paths import output_file


def print_report(report: dict) -> None:
    """Prints `measure`'s report: a title line, the column names, then one row per batch size."""
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
    parser.add_argument("--json-out", type=output_file, help="also write the figures as JSON here")
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
