"""Command-line paths -> the image files to read, in a stable order.

A file is read whatever its name (the service says 415 if it is no image); a folder is searched
recursively for the image types the service reads, in sorted order, hidden files and folders skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

# The formats the service decodes (README: Endpoints), by file-name suffix, lower case.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")


class PathProblemError(Exception):
    """A path on the command line that yields nothing to read; the message names it."""


def _is_hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def images_in_folder(folder: Path) -> list[str]:
    """The image files under `folder`, recursively, sorted, as paths that start with `folder`."""
    return [
        os.fspath(path)
        for path in sorted(folder.rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not _is_hidden(path, folder)
    ]


def find_images(paths: Sequence[str]) -> list[str]:
    """Expands files and folders into the image files to read, each once, in the order given.

    Raises:
        PathProblemError: a path does not exist, or a folder holds no image.
    """
    found: dict[str, None] = {}
    for text in paths:
        path = Path(text)
        if path.is_dir():
            images = images_in_folder(path)
            if not images:
                raise PathProblemError(
                    f"{text}: the folder holds no image ({', '.join(IMAGE_SUFFIXES)}, searched recursively)"
                )
            found.update(dict.fromkeys(images))
        elif path.exists():
            found[text] = None
        else:
            raise PathProblemError(f"{text}: no such file or folder")
    return list(found)
