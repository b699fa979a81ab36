"""Exports the tests' small real model (`testkit.model_fixture`) for a benchmark smoke run.

One epoch on the 10k shared MNIST training digits (~30 s on 2 CPU cores), as `<folder>/1/`:

    python -m bench.fixture_model [/tmp/digitserve-model]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from testkit.model_fixture import export_fixture_model
from testkit.shared_data import SHARED_DATA_DIR


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "models_dir",
        type=Path,
        nargs="?",
        default=Path("/tmp/digitserve-model"),
        help="the model folder to create (the service's DIGITSERVE_MODEL_DIR)",
    )
    parser.add_argument("--shared-data-dir", type=Path, default=SHARED_DATA_DIR)
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    exported = export_fixture_model(args.shared_data_dir, args.models_dir)
    print(f"exported {exported}")


if __name__ == "__main__":
    main()
