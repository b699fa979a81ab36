"""Images done -> a progress bar on stderr, for people at a terminal only.

Drawn by `rich` when stderr is a terminal and `--no-progress` is not given; otherwise (a pipe, a log
file, CI) nothing is written, so that stderr holds only messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


def is_progress_shown(stream: TextIO, is_disabled: bool) -> bool:
    """Whether to draw a bar on `stream`: a terminal, and not turned off."""
    return not is_disabled and stream.isatty()


@contextmanager
def progress_bar(total: int, description: str, stream: TextIO | None) -> Iterator[Callable[[int], None]]:
    """A bar of `total` steps on `stream` (None: no bar); yields `advance(steps)`.

    The finished bar stays on screen, followed by whatever the caller writes next.
    """
    if stream is None:
        yield lambda steps: None
        return
    # Imported here: only a terminal session pays for it.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=stream)) as progress:
        task = progress.add_task(description, total=total)
        yield lambda steps: progress.advance(task, steps)
