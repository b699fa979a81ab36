"""What native libraries print on stderr while they load -> log records, each distinct notice once.

TensorFlow's C++ side writes its start-up notices (oneDNN, CPU instructions, on a GPU image the CUDA
plugins) straight to file descriptor 2, in absl's format (`I0000 00:00:1700000000.000000  1234
port.cc:153] oneDNN custom operations are on...`), past Python's logging, and two copies of absl
inside TensorFlow 2.21 print each notice twice; `TF_CPP_MIN_LOG_LEVEL` hides some of them, not
oneDNN's. `relayed_native_stderr` catches descriptor 2 while such a library is imported and logs each
distinct notice once, at its own severity, through the service's handler and format. Python's own
writes meanwhile still reach stderr unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from app.observability.logging import find_service_handler

STDERR_FILE_DESCRIPTOR = 2
# absl's header: severity, date, time, thread, source file and line.
ABSL_LINE = re.compile(r"(?P<severity>[IWEF])\d{4} [0-9:.]+ +\d+ (?P<source>[^\]\s]+)\] ?(?P<message>.*)")
# absl's note about itself, written before its first line: nothing a reader of the service can act on.
ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ABSL_LEVELS = {"I": logging.INFO, "W": logging.WARNING, "E": logging.ERROR, "F": logging.CRITICAL}

logger = logging.getLogger("app.native")


def parse_native_lines(text: str) -> list[tuple[int, str, str]]:
    """Native stderr output -> its distinct notices as (level, source, message), in first-seen order.

    A line without absl's header continues the notice before it (a notice may span lines); one
    before any notice is a notice of its own, at WARNING.
    """
    notices: list[list] = []
    for line in text.splitlines():
        if not line.strip() or line.strip() == ABSL_PREAMBLE:
            continue
        match = ABSL_LINE.fullmatch(line)
        if match is not None:
            notices.append([ABSL_LEVELS[match["severity"]], match["source"], match["message"]])
        elif notices:
            notices[-1][2] += f" {line.strip()}"
        else:
            notices.append([logging.WARNING, "stderr", line.strip()])
    distinct = dict.fromkeys((level, source, message) for level, source, message in notices)
    return list(distinct)


def relay_native_lines(text: str) -> None:
    """Logs each distinct notice of `text` once, with its source file as the `source` field."""
    for level, source, message in parse_native_lines(text):
        logger.log(level, message, extra={"fields": {"source": source}})


@contextlib.contextmanager
def python_stderr_on(file_descriptor: int) -> Iterator[None]:
    """Sends Python's stderr writes (`sys.stderr`, the service's log handler) to `file_descriptor`."""
    stream = open(file_descriptor, "w", buffering=1, closefd=False, errors="backslashreplace")
    handler = find_service_handler()
    previous_stream = handler.setStream(stream) if isinstance(handler, logging.StreamHandler) else None
    try:
        with contextlib.redirect_stderr(stream):
            yield
    finally:
        if previous_stream is not None:
            handler.setStream(previous_stream)
        _repoint_handlers(stream, sys.__stderr__)  # the process's own stderr, which outlives any redirection
        stream.close()


def _repoint_handlers(stale: object, stream: object) -> None:
    """Points every logging handler created inside the block on `stale` (TensorFlow's own logger
    takes `sys.stderr` when it is imported) at `stream`, so that it never writes to a closed file."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for each in loggers:
        for handler in getattr(each, "handlers", ()):
            if isinstance(handler, logging.StreamHandler) and handler.stream is stale:
                handler.setStream(stream)


@contextlib.contextmanager
def relayed_native_stderr() -> Iterator[None]:
    """Catches what native code writes to file descriptor 2 inside the block, then logs it
    (`relay_native_lines`), even when the block raises.

    Into a temporary file, not a pipe: a library that writes much cannot block on a full pipe.
    """
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        original_stderr = os.dup(STDERR_FILE_DESCRIPTOR)
        os.dup2(captured.fileno(), STDERR_FILE_DESCRIPTOR)
        try:
            with python_stderr_on(original_stderr):
                yield
        finally:
            os.dup2(original_stderr, STDERR_FILE_DESCRIPTOR)
            os.close(original_stderr)
            captured.seek(0)
            relay_native_lines(captured.read().decode("utf-8", errors="replace"))
