"""A run's exported model -> the next version of a served model folder (`models/digits/<N>/`), atomically.

Training never writes into the folder the service reads: each run exports into its own run folder
(`runs/<run>/model/`), and a model reaches `models/digits` only by this explicit step (or a run's
`--output-dir`, which calls it). The copy is written beside the target and renamed into place, so the
service (or a rolling update) never sees a half-written version; versions are never overwritten.
Smoke-test models (`--quick`) are refused unless asked for: the service would refuse to serve them.

    python -m training.promote runs/20261202T031500Z [--models-dir models/digits] [--version N]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from digits.errors import ModelLoadError
from digits.model_store import (
    SAVED_MODEL_FILE_NAME,
    holds_exported_model,
    is_smoke_test,
    next_version,
    read_model_card,
    write_model_card,
)
from training.cli import FlagArgumentParser, bounded_value

RUN_MODEL_FOLDER_NAME = "model"  # where a run exports its SavedModel, inside its run folder


class PromotionError(Exception):
    """The model cannot be promoted: nothing exported there, a smoke test, or the version exists."""


def exported_model_dir(path: Path) -> Path:
    """A run folder or its exported model folder -> the folder holding `saved_model.pb`.

    Raises:
        PromotionError: neither `path` nor `path/model` holds an exported SavedModel.
    """
    for candidate in (path, path / RUN_MODEL_FOLDER_NAME):
        if holds_exported_model(candidate):
            return candidate
    raise PromotionError(
        f"{path} holds no exported model ({SAVED_MODEL_FILE_NAME}, or {RUN_MODEL_FOLDER_NAME}/"
        f"{SAVED_MODEL_FILE_NAME} in a run folder); a run without TensorFlow exports with "
        "`python -m training.export CHECKPOINT`"
    )


def promote(
    source: Path, models_dir: Path, version: int | None = None, *, allow_smoke_test: bool = False
) -> Path:
    """Copies an exported model into `models_dir/<version>`, with its card saying so.

    Args:
        source: a run folder, or the exported model folder itself.
        models_dir: the served model folder, e.g. models/digits (made if missing).
        version: the version to write; None: one above the highest.
        allow_smoke_test: promote a `--quick` model too (for tests of the service's refusal).

    Returns:
        The new version folder.

    Raises:
        PromotionError: nothing exported in `source`, a smoke-test model, or the version exists.
    """
    model_dir = exported_model_dir(Path(source))
    card = read_model_card(model_dir)
    if is_smoke_test(card) and not allow_smoke_test:
        raise PromotionError(
            f"{model_dir} is a smoke-test model (trained with --quick on a few hundred images); it is "
            "never promoted to a served folder (--allow-smoke-test to do it anyway)"
        )
    if version is not None and version < 1:
        raise PromotionError(f"version {version}: a model version is an integer of 1 or more")
    version = version or next_version(models_dir)
    version_dir = models_dir / str(version)
    check_version_is_free(version_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    # A staging folder of its own (a concurrent promotion has another), removed if anything fails.
    staging_dir = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{version}.", suffix=".partial"))
    try:
        shutil.copytree(model_dir, staging_dir, dirs_exist_ok=True)
        card.update(version=version, promoted_from=str(model_dir), promoted_at=datetime.now(UTC).isoformat())
        write_model_card(staging_dir, card)
        check_version_is_free(version_dir)  # again: another promotion may have taken it meanwhile
        staging_dir.rename(version_dir)  # a version folder appears whole or not at all
    except BaseException:
        shutil.rmtree(staging_dir, ignore_errors=True)
        raise
    return version_dir


def check_version_is_free(version_dir: Path) -> None:
    """Raises PromotionError if the version folder exists (even empty: versions are never reused)."""
    if version_dir.exists():
        raise PromotionError(f"{version_dir} already exists; model versions are never overwritten")


def main(argv: list[str] | None = None) -> int:
    """`python -m training.promote RUN [--models-dir DIR] [--version N] [--allow-smoke-test]`."""
    parser = FlagArgumentParser(prog="python -m training.promote", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (runs/<run>) or its exported model folder")
    parser.add_argument("--models-dir", type=Path, default=Path("models/digits"), help="the served folder")
    parser.add_argument(
        "--version", type=bounded_value(int, ge=1), default=None, help="default: one above the highest"
    )
    parser.add_argument("--allow-smoke-test", action="store_true", help="promote a --quick model too")
    args = parser.parse_args(argv)
    try:
        version_dir = promote(args.run, args.models_dir, args.version, allow_smoke_test=args.allow_smoke_test)
    except (PromotionError, ModelLoadError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"promoted {args.run} to {version_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
