"""`digitserve`: serve the service, and read image files and folders through it, from a shell.

    digitserve serve [--host H] [--port P] [--print-settings]        (what `python -m app` does)
    digitserve predict PATH... [--url URL] [--csv OUT] [--batch-size N] [--api-key KEY] [--local]
    digitserve read PATH...    (numbers, through POST /read; the same options)

`predict` and `read` write one CSV row per image (`digitserve.rows`) to stdout or `--csv`, as each
batch is answered, and draw a progress bar on stderr at a terminal. Exit status: 0 when every image
got a row (an unreadable image is a row with its error code), 1 when the service failed the run
(unreachable, a refused request, still busy after the retries), 2 for a bad command line (a missing
path, a bad URL, a refused setting), 3 when `--local` cannot load the model.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Protocol, TextIO

from app.__main__ import add_serve_arguments, read_settings
from app.__main__ import run as run_serve
from app.observability.native_logs import relayed_native_stderr
from digits.errors import ModelLoadError
from digitserve.client import DEFAULT_BATCH_SIZE, DEFAULT_TIMEOUT_SECONDS, DEFAULT_URL, Client
from digitserve.exchange import Image, RetryPolicy
from digitserve.files import PathProblemError, find_images
from digitserve.progress import is_progress_shown, progress_bar
from digitserve.results import ImageError, Prediction, Reading, ServiceError
from digitserve.rows import PREDICTION_COLUMNS, READING_COLUMNS, prediction_row, reading_row

PROG = "digitserve"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MODEL_NOT_LOADED = 3
API_KEY_VARIABLE = "DIGITSERVE_CLIENT_API_KEY"
# What each reading command sends, and how its rows look.
COMMANDS = {
    "predict": ("the digit in each image", "iter_predictions", PREDICTION_COLUMNS, prediction_row),
    "read": ("the number in each image", "iter_readings", READING_COLUMNS, reading_row),
}


class Reader(Protocol):
    """What reads the images: a `Client` of the service, or a `LocalReader` (`--local`)."""

    def iter_predictions(
        self, images: Iterable[Image], batch_size: int
    ) -> Iterator[Prediction | ImageError]: ...

    def iter_readings(self, images: Iterable[Image], batch_size: int) -> Iterator[Reading | ImageError]: ...


def positive_integer(text: str) -> int:
    """An option's type: an integer of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def positive_seconds(text: str) -> float:
    """An option's type: a number of seconds above 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return seconds


def add_reading_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `predict` and `read`."""
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="image files, or folders (searched recursively)"
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="the running service (default: %(default)s)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_VARIABLE),
        help=f"the service's API key (default: {API_KEY_VARIABLE})",
    )
    parser.add_argument("--csv", metavar="OUT", help="write the CSV to this file (default: standard output)")
    parser.add_argument(
        "--batch-size",
        type=positive_integer,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="images per request (default: %(default)s); a batch too large for the service is split",
    )
    parser.add_argument(
        "--max-attempts",
        type=positive_integer,
        default=RetryPolicy().max_attempts,
        metavar="N",
        help="tries of a request answered 503 (busy), each after its Retry-After (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="longest wait for one answer (default: %(default)s)",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="read in this process, through the service's pipeline and model, without a service",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="with --local: the model folder (default: DIGITSERVE_MODEL_DIR, else models/digits)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (drawn only at a terminal)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The `digitserve` command line: `serve`, `predict`, `read`."""
    parser = argparse.ArgumentParser(prog=PROG, description="Reads handwritten digits and numbers.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('digitserve')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the service (as `python -m app`)",
        description="Serves the digitserve API. Every setting is a DIGITSERVE_* environment variable "
        "(README: Settings).",
    )
    add_serve_arguments(serve)
    for name, (what, _, columns, _) in COMMANDS.items():
        command = commands.add_parser(
            name,
            help=f"read {what}; one CSV row each",
            description=f"Reads {what} through a running service (or --local) and writes a CSV of "
            f"{', '.join(columns)}; an image that cannot be read is a row with its error code as the reason.",
        )
        add_reading_arguments(command)
    return parser


def fail(status: int, message: str) -> int:
    """Writes `digitserve: error: message` on stderr, and returns the exit status."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return status


def describe_service_error(error: ServiceError, options: argparse.Namespace) -> str:
    """A failed run's one-line message, with what to do about it."""
    if error.status_code == 0:
        return f"{error.detail}; is it running (`digitserve serve`)? or read in this process with --local"
    advice = ""
    if error.status_code == 401:
        advice = f"; give the service's key with --api-key or {API_KEY_VARIABLE}"
    elif error.status_code == 503:
        advice = f"; still busy after {options.max_attempts} attempts (--max-attempts)"
    return f"the service at {options.url} answered {error.status_code} {error.code}: {error.detail}{advice}"


def open_reader(options: argparse.Namespace, stack: contextlib.ExitStack) -> Reader:
    """A `Client` of `--url`, or with `--local` a `LocalReader` of the model.

    Raises:
        ValueError: `--url` is no http(s) URL.
        ModelLoadError: with `--local`, the model cannot be loaded.
    """
    if not options.local:
        retry = RetryPolicy(max_attempts=options.max_attempts)
        client = Client(options.url, api_key=options.api_key, timeout=options.timeout, retry=retry)
        return stack.enter_context(client)
    # TensorFlow's native start-up notices (oneDNN, CPU instructions) are caught and logged, which
    # without a configured handler shows its warnings and errors only, not its notices.
    with relayed_native_stderr():
        from digitserve.local import LocalReader

        return LocalReader(read_settings(model_dir=options.model_dir))


def tally_key(result: Prediction | Reading | ImageError) -> str:
    """What a result counts as in the summary: `sure`, `unsure`, or its error code."""
    if isinstance(result, ImageError):
        return result.code
    return "unsure" if result.unsure else "sure"


def summarize(tally: collections.Counter[str]) -> str:
    """`40 images: 38 read (3 unsure), 2 not (no_digit_found: 2)`."""
    errors = {code: count for code, count in sorted(tally.items()) if code not in ("sure", "unsure")}
    total = tally.total()
    line = f"{PROG}: {total} image{'' if total == 1 else 's'}: {tally['sure'] + tally['unsure']} read "
    line += f"({tally['unsure']} unsure)"
    if errors:
        counts = ", ".join(f"{code}: {count}" for code, count in errors.items())
        line += f", {sum(errors.values())} not ({counts})"
    return line


def write_rows(options: argparse.Namespace, reader: Reader, images: list[str], output: TextIO) -> str:
    """Reads the images with `reader`, writing each row as its batch is answered; returns the summary.

    Raises:
        ServiceError: the service failed the run.
        OSError: an image could not be read from disk.
    """
    _, iterate_name, columns, to_row = COMMANDS[options.command]
    writer = csv.writer(output)
    writer.writerow(columns)
    tally: collections.Counter[str] = collections.Counter()
    bar_stream = sys.stderr if is_progress_shown(sys.stderr, options.no_progress) else None
    with progress_bar(len(images), options.command, bar_stream) as advance:
        for result in getattr(reader, iterate_name)(images, options.batch_size):
            writer.writerow(to_row(result))
            output.flush()  # each row as soon as it is known: a long run can be followed, or resumed
            tally[tally_key(result)] += 1
            advance(1)
    return summarize(tally)


def read_images(options: argparse.Namespace) -> int:
    """`predict` and `read`: the images of `options.paths` -> CSV rows; returns the exit status."""
    try:
        images = find_images(options.paths)
    except PathProblemError as error:
        return fail(EXIT_USAGE, str(error))
    with contextlib.ExitStack() as stack:
        # The reader first: a mistyped URL must not empty the CSV of an earlier run.
        try:
            reader = open_reader(options, stack)
        except ValueError as error:
            if options.local:
                raise
            return fail(EXIT_USAGE, f"--url: {error}")
        except ModelLoadError as error:
            return fail(EXIT_MODEL_NOT_LOADED, error.detail)
        try:
            output = stack.enter_context(open(options.csv, "w", newline="")) if options.csv else sys.stdout
        except OSError as error:
            return fail(EXIT_USAGE, f"--csv {options.csv}: {error.strerror}")
        try:
            summary = write_rows(options, reader, images, output)
        except ServiceError as error:
            return fail(EXIT_FAILED, describe_service_error(error, options))
        except BrokenPipeError:  # `digitserve read dir | head`: the reader has had enough
            # Python would complain again when it flushes stdout at exit: point it at nothing first.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILED
        except OSError as error:  # a file gone or unreadable since it was found
            return fail(EXIT_FAILED, f"{error.filename}: {error.strerror}")
    sys.stderr.write(summary + "\n")
    return 0


def main(arguments: Sequence[str] | None = None) -> int:
    """The `digitserve` console script; returns the exit status."""
    options = build_parser().parse_args(arguments)
    if options.command == "serve":
        run_serve(options)
        return 0
    return read_images(options)


if __name__ == "__main__":
    raise SystemExit(main())
