"""`python -m app`: serves the app with uvicorn on DIGITSERVE_HOST:DIGITSERVE_PORT, one worker, with
the connection limits of the settings (`app.server`).

The one command that starts the service: `make serve`, the image's CMD (and so compose and
Kubernetes), `digitserve serve`, and `testkit.server` for the tests and benchmarks all run it. Its few
options, named as uvicorn names them, are about the process rather than the service: where it listens
(over DIGITSERVE_HOST and DIGITSERVE_PORT), uvicorn's own log level and access log, the graceful drain.
One worker per process (and per container): the model and the batcher live in that process, and
batching works best when every request of the machine reaches the same queue.

What it says before serving, on stderr: a refused setting is one line naming the variable, its value
and what it allows, and the process exits 2 (as any command given a bad argument); a `DIGITSERVE_*`
variable that no setting reads is a warning naming the closest one. A model that cannot be loaded
stops the process with exit status 3 (`app.server`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from app.server import GRACEFUL_SHUTDOWN_SECONDS, SERVER_LOG_LEVELS, serve
from app.settings import Settings, describe_settings, describe_settings_error, unknown_variable_warnings

# A bad command line or setting, as argparse exits for a bad argument.
USAGE_EXIT_STATUS = 2
PORT_MAX = 65535


def port_number(text: str) -> int:
    """`--port`'s type: a TCP port, 1..65535."""
    if not text.isdigit() or not 1 <= int(text) <= PORT_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1..{PORT_MAX})")
    return int(text)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the options of the service's command (`python -m app`, `digitserve serve`) to `parser`."""
    parser.add_argument("--host", help="interface to listen on (default: DIGITSERVE_HOST, else 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, help="port to listen on (default: DIGITSERVE_PORT, else 8000)"
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=SERVER_LOG_LEVELS,
        help="level of uvicorn's own logs (default: DIGITSERVE_LOG_LEVEL)",
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one line per response (default: on)",
    )
    parser.add_argument(
        "--timeout-graceful-shutdown",
        type=int,
        default=GRACEFUL_SHUTDOWN_SECONDS,
        metavar="SECONDS",
        help=f"how long in-flight requests may finish after SIGTERM (default: {GRACEFUL_SHUTDOWN_SECONDS})",
    )
    parser.add_argument(
        "--print-settings",
        action="store_true",
        help="print the effective settings (DIGITSERVE_* variables and the options above; API keys "
        "hidden) and exit without serving",
    )


def parse_arguments(arguments: Sequence[str] | None = None) -> argparse.Namespace:
    """Reads the command line (`sys.argv` when `arguments` is None); a repeated option's last value wins."""
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Serves the digitserve API. Every setting is a DIGITSERVE_* environment variable "
        "(README: Settings).",
    )
    add_serve_arguments(parser)
    return parser.parse_args(arguments)


def read_settings(**overrides: object) -> Settings:
    """The settings from the environment, with `overrides` (command-line options) winning; exits 2 with
    one line per refused variable (no traceback: a typo in a variable is a usage error, not a crash)."""
    try:
        return Settings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as error:
        for line in describe_settings_error(error).splitlines():
            sys.stderr.write(f"error: invalid setting {line}\n")
        raise SystemExit(USAGE_EXIT_STATUS) from None


def run(options: argparse.Namespace) -> None:
    """Reads and checks the settings, then prints them (`--print-settings`) or serves until SIGINT or
    SIGTERM."""
    settings = read_settings(host=options.host, port=options.port)
    for warning in unknown_variable_warnings(os.environ):
        sys.stderr.write(f"warning: {warning}\n")
    if options.print_settings:
        sys.stdout.write("".join(f"{line}\n" for line in describe_settings(settings)))
        return
    serve(
        settings,
        access_log=options.access_log,
        server_log_level=options.log_level,
        graceful_shutdown_seconds=options.timeout_graceful_shutdown,
    )


def main(arguments: Sequence[str] | None = None) -> None:
    """`python -m app [options]`: see `parse_arguments`."""
    run(parse_arguments(arguments))


if __name__ == "__main__":
    main()
