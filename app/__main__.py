"""`python -m app`: serves the app with uvicorn on DIGITSERVE_HOST:DIGITSERVE_PORT, one worker, with
the connection limits of the settings (`app.server`).

The one command that starts the service: `make serve`, the image's CMD (and so compose and
Kubernetes), and `testkit.server` for the tests and benchmarks all run it. Its few options, named as
uvicorn names them, are about the process rather than the service: where it listens (over
DIGITSERVE_HOST and DIGITSERVE_PORT), uvicorn's own log level and access log, the graceful drain.
One worker per process (and per container): the model and the batcher live in that process, and
batching works best when every request of the machine reaches the same queue.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from app.server import GRACEFUL_SHUTDOWN_SECONDS, SERVER_LOG_LEVELS, serve
from app.settings import Settings, describe_settings_error


def parse_arguments(arguments: Sequence[str] | None = None) -> argparse.Namespace:
    """Reads the command line (`sys.argv` when `arguments` is None); a repeated option's last value wins."""
    parser = argparse.ArgumentParser(prog="python -m app", description="Serves the digitserve API.")
    parser.add_argument("--host", help="interface to listen on (default: DIGITSERVE_HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: DIGITSERVE_PORT, else 8000)")
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
    return parser.parse_args(arguments)


def main(arguments: Sequence[str] | None = None) -> None:
    """Reads the settings and the command line, and runs the service until SIGINT or SIGTERM."""
    options = parse_arguments(arguments)
    address = {name: value for name in ("host", "port") if (value := getattr(options, name)) is not None}
    try:
        settings = Settings(**address)
    except ValidationError as error:
        # Exit status 2, like any command given a bad argument; no traceback for a typo in a variable.
        sys.stderr.write(f"error: invalid configuration:\n{describe_settings_error(error)}\n")
        raise SystemExit(2) from None
    serve(
        settings,
        access_log=options.access_log,
        server_log_level=options.log_level,
        graceful_shutdown_seconds=options.timeout_graceful_shutdown,
    )


if __name__ == "__main__":
    main()
