"""Trained keras.Model -> `models/digits/<version>/`: a TensorFlow SavedModel and its model card.

The SavedModel's `serve` endpoint (also the `serving_default` signature) takes float32
(None, 28, 28, 1) in [0, 1] and returns float32 (None, 10) probabilities, in inference mode, so the
same input always gives the same output.

Run as `python -m training.export CHECKPOINT.keras` to export a checkpoint trained elsewhere (for
example under `KERAS_BACKEND=jax` on a GPU machine without TensorFlow); exporting needs TensorFlow.
The SavedModel goes into the checkpoint's run folder (`model/`), like a run's own export; with
`--output-dir` it is then promoted into that served folder (`training.promote`).
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import keras

from digits.model_store import read_model_card, write_model_card
from training.cli import FlagArgumentParser, bounded_value
from training.model import as_float32

RECORDED_PACKAGES = (
    "keras",
    "tensorflow-cpu",
    "tensorflow",
    "numpy",
    "opencv-python-headless",
    "albumentations",
)


def export_savedmodel(model: keras.Model, version_dir: Path) -> Path:
    """Exports the model for TensorFlow serving, atomically.

    Args:
        model: the trained classifier (input "image", output "probs").
        version_dir: the final folder, e.g. models/digits/3; it must not exist yet.

    Returns:
        `version_dir`, now holding saved_model.pb and variables/.

    Raises:
        FileExistsError: `version_dir` exists; versions are immutable once written.
    """
    if version_dir.exists():
        raise FileExistsError(f"{version_dir} already exists; model versions are never overwritten")
    staging_dir = version_dir.with_name(f".{version_dir.name}.partial")
    shutil.rmtree(staging_dir, ignore_errors=True)
    staging_dir.parent.mkdir(parents=True, exist_ok=True)
    model.export(str(staging_dir), format="tf_saved_model", verbose=False)
    # A half-written folder must never look like a servable version: write aside, then rename.
    staging_dir.rename(version_dir)
    return version_dir


def describe_environment() -> dict[str, Any]:
    """Python, platform, library versions and the git commit, for the model card."""
    versions = {}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keras_backend": keras.backend.backend(),
        "libraries": versions,
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        is_dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if is_dirty else commit


def main(argv: list[str] | None = None) -> int:
    """`python -m training.export CHECKPOINT.keras [--export-dir DIR] [--output-dir DIR] [--version N]`."""
    from training.promote import RUN_MODEL_FOLDER_NAME, PromotionError, promote

    parser = FlagArgumentParser(prog="python -m training.export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a .keras file saved by training.run")
    parser.add_argument(
        "--export-dir", type=Path, default=None, help="where to write the SavedModel; default: RUN/model"
    )
    parser.add_argument("--output-dir", type=Path, default=None, help="then promote it into this folder")
    parser.add_argument(
        "--version", type=bounded_value(int, ge=1), default=None, help="promoted version; default: the next"
    )
    parser.add_argument("--allow-smoke-test", action="store_true", help="promote a --quick model too")
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        print(f"error: checkpoint {args.checkpoint} does not exist", file=sys.stderr)
        return 2
    export_dir = args.export_dir or args.checkpoint.parent / RUN_MODEL_FOLDER_NAME
    try:
        # A mixed-precision checkpoint is served in float32, as the run itself would have exported it.
        model = as_float32(keras.saving.load_model(args.checkpoint))
        version_dir = export_savedmodel(model, export_dir)
    except (ValueError, OSError) as error:  # FileExistsError included
        print(f"error: cannot export {args.checkpoint}: {error}", file=sys.stderr)
        return 2
    card = read_model_card(args.checkpoint.parent)
    card.update(exported_at=datetime.now(UTC).isoformat(), export_environment=describe_environment())
    write_model_card(version_dir, card)
    print(f"exported {args.checkpoint} to {version_dir}")
    if args.output_dir is None:
        return 0
    try:
        promoted_dir = promote(
            version_dir, args.output_dir, args.version, allow_smoke_test=args.allow_smoke_test
        )
    except PromotionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"promoted to {promoted_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
