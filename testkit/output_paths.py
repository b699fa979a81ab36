"""Where a benchmark writes (`--json-out`, `--log-dir`, `--samples-dir`, ...), checked when its
arguments are parsed: a benchmark runs for minutes, and a path it cannot write must fail before the
run with a message naming it, not after it with a traceback and the figures lost.

Both are argparse types: a folder that does not exist yet is created (with its parents), as a user
who names `results/run3.json` expects; one that cannot be created or written is an argument error.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _writable_folder(folder: Path, asked_for: str) -> None:
    # The nearest part of the path that exists says why a folder cannot be made below it.
    existing = next(part for part in (folder, *folder.parents) if part.exists())
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{asked_for}: {existing} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"{asked_for}: cannot create {folder}: {error.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{asked_for}: {folder} is not writable")


def output_file(value: str) -> Path:
    """A file the benchmark will (over)write: its folder exists and is writable, it is not a folder."""
    if not value:
        raise argparse.ArgumentTypeError("an empty file name")
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a folder, not a file")
    _writable_folder(path.parent, value)
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"{value}: the file exists and is not writable")
    return path


def output_folder(value: str) -> Path:
    """A folder the benchmark writes files into: created if missing, writable."""
    if not value:
        raise argparse.ArgumentTypeError("an empty folder name")
    path = Path(value)
    _writable_folder(path, value)
    return path
