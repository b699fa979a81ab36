"""Settings -> how uvicorn serves the app: the address, one worker, the connection limits, the drain.

`build_uvicorn_options` is the one place where the server is configured, and `serve` the one way to
start it: `python -m app` calls it, and every entry point runs that command (`make serve`, the
image's CMD and so compose and Kubernetes, `testkit.server` for the tests and benchmarks), so that
none of them can serve without the limits. The limits themselves are enforced by
`app.http_protocol` (the connection: head, body pace, connection count) and `app.api.body_limits`
(the body: size, spooled bytes).

A model that cannot be served (`ModelLoadError`: no model folder, a smoke-test model, a malformed
card) stops the start-up with one error line and exit status 3 (uvicorn's for a failed start-up); its
traceback is logged at DEBUG only. Any other start-up failure keeps its traceback: it is a bug.
"""

from __future__ import annotations

import functools
import logging
import resource
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.routes import health
from app.connection_limits import ConnectionLimits, RefusalLog
from app.http_protocol import LimitedHttpToolsProtocol
from app.observability.access_log import enable_access_log
from app.observability.logging import configure_logging
from app.observability.native_logs import relayed_native_stderr
from app.settings import Settings
from digits.errors import ModelLoadError

logger = logging.getLogger(__name__)

# uvicorn's drain after SIGTERM; compose and Kubernetes wait longer before SIGKILL (30 s).
GRACEFUL_SHUTDOWN_SECONDS = 20
# Apache's default (LimitRequestFields): browsers send about 20, proxies add a few.
HTTP_MAX_HEADER_FIELDS = 100
# Each connection holds a socket, and an upload over 1 MiB a spooled temp file; the rest is the
# process's own (model files, logs, the event loop's, the decode workers' pipes).
OPEN_FILES_PER_CONNECTION = 2
OPEN_FILES_RESERVED = 128
SERVER_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
# What uvicorn logs after any failed start-up; `report_start_up_failures` has said why already.
UVICORN_START_UP_FAILED_MESSAGE = "Application startup failed. Exiting."


def build_connection_limits(settings: Settings) -> ConnectionLimits:
    """The limits of one connection, and of their number, from the settings."""
    return ConnectionLimits(
        max_header_bytes=settings.http_max_header_bytes,
        max_header_fields=HTTP_MAX_HEADER_FIELDS,
        header_timeout_seconds=settings.http_header_timeout_seconds,
        upload_idle_timeout_seconds=settings.upload_idle_timeout_seconds,
        upload_timeout_seconds=settings.upload_timeout_seconds,
        max_connections=settings.http_max_connections,
        probe_paths=frozenset(route.path.encode("ascii") for route in health.router.routes),
    )


def build_uvicorn_options(
    settings: Settings,
    server_log_level: str | None = None,
    graceful_shutdown_seconds: int = GRACEFUL_SHUTDOWN_SECONDS,
) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run` / `uvicorn.Config` that serve the app with `settings`.

    Args:
        settings: the service's settings (address, connection limits, log level).
        server_log_level: the level of uvicorn's own logs; None follows `settings.log_level`.
        graceful_shutdown_seconds: how long in-flight requests may finish after SIGTERM.

    Returns:
        The options; uvicorn's own `limit_concurrency` stays off: the protocol counts connections
        itself, to let the health probes through and answer the error body of the API. uvicorn's
        logging set-up and access line are off too: `configure_process_logging` gives its loggers
        the service's handler, and the app writes the access line.
    """
    protocol = functools.partial(
        LimitedHttpToolsProtocol,
        limits=build_connection_limits(settings),
        refusal_log=RefusalLog(),
    )
    return {
        "host": settings.host,
        "port": settings.port,
        "workers": 1,
        "http": protocol,
        # The service has no WebSocket route; an upgrade would hand the connection to a protocol
        # without the limits.
        "ws": "none",
        "timeout_keep_alive": settings.http_keep_alive_timeout_seconds,
        "timeout_graceful_shutdown": graceful_shutdown_seconds,
        "log_level": (server_log_level or settings.log_level).lower(),
        # uvicorn's own configuration would give its loggers handlers and a format of their own.
        "log_config": None,
        # The app's access line (`app.observability.access_log`) has the request ID, the duration
        # and the bytes, which uvicorn's lacks.
        "access_log": False,
    }


def raise_open_file_limit(required_files: int) -> int:
    """Raises the soft limit on open files towards `required_files`, as far as the hard limit allows.

    Out of file descriptors, the server can accept no connection, not even a health probe's; shells
    often start processes with a soft limit of 1024 under a hard limit many times larger.

    Returns:
        The soft limit now in force (a warning is logged when it stays under `required_files`).
    """
    soft_limit, hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_limit == resource.RLIM_INFINITY or soft_limit >= required_files:
        return soft_limit
    new_limit = required_files if hard_limit == resource.RLIM_INFINITY else min(required_files, hard_limit)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new_limit, hard_limit))
    if new_limit < required_files:
        logger.warning(
            "the open-file limit (%d) is below what %d connections may need (%d); lower "
            "DIGITSERVE_HTTP_MAX_CONNECTIONS or raise the limit (ulimit -n)",
            new_limit,
            (required_files - OPEN_FILES_RESERVED) // OPEN_FILES_PER_CONNECTION,
            required_files,
        )
    return new_limit


def report_start_up_failures(app: ASGIApp) -> ASGIApp:
    """Wraps `app` so that a model that cannot be served is reported in one line, not a traceback.

    Starlette hands uvicorn the whole traceback of a failed lifespan, which uvicorn logs as an error:
    some 40 lines for "no model folder". The wrapper drops that text, and logs instead the error's
    own message for a `ModelLoadError` (its traceback at DEBUG), or the traceback of anything else.
    uvicorn still sees the failure and exits with status 3.
    """

    async def reported_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        has_started = False

        async def send_without_traceback(message: Message) -> None:
            nonlocal has_started
            has_started = has_started or message["type"] == "lifespan.startup.complete"
            if message["type"] == "lifespan.startup.failed":
                message = {**message, "message": ""}
            await send(message)

        try:
            await app(scope, receive, send_without_traceback)
        except ModelLoadError as error:
            logger.error("cannot start: %s", error.detail)
            logger.debug("why the model could not be loaded", exc_info=True)
            raise
        except Exception:
            if not has_started:  # a failed shutdown's traceback is uvicorn's to log
                logger.exception("cannot start")
            raise

    return reported_app


class StartUpFailedLineFilter(logging.Filter):
    """Drops uvicorn's "Application startup failed" line: `report_start_up_failures` said why."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != UVICORN_START_UP_FAILED_MESSAGE


def configure_process_logging(settings: Settings, access_log: bool) -> None:
    """One handler and format (`settings.log_format`) for uvicorn's lines and the app's, and the app's
    access line on or off (`--[no-]access-log`): once per process, before uvicorn starts."""
    configure_logging(settings.log_level, settings.log_format)
    enable_access_log(access_log)


def serve(
    settings: Settings,
    access_log: bool = True,
    server_log_level: str | None = None,
    graceful_shutdown_seconds: int = GRACEFUL_SHUTDOWN_SECONDS,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Runs the service with uvicorn until SIGINT or SIGTERM (arguments: `build_uvicorn_options`).

    Args:
        sockets: listening sockets to serve on instead of binding `settings.host` and `settings.port`
            (`bench.service_processes` hands each of several processes its own).

    Raises:
        SystemExit: status 3 when the start-up failed (the model could not be loaded).
    """
    configure_process_logging(settings, access_log)
    served_app = build_served_app(settings)
    raise_open_file_limit(settings.http_max_connections * OPEN_FILES_PER_CONNECTION + OPEN_FILES_RESERVED)
    options = build_uvicorn_options(settings, server_log_level, graceful_shutdown_seconds)
    logging.getLogger("uvicorn.error").addFilter(StartUpFailedLineFilter())
    if sockets is None:
        uvicorn.run(served_app, **options)
        return
    server = uvicorn.Server(uvicorn.Config(served_app, **options))
    server.run(sockets=sockets)  # a failed start-up exits with status 3 from inside, as uvicorn.run does


def build_served_app(settings: Settings) -> ASGIApp:
    """`create_app(settings)`, its start-up failures reported in one line (`report_start_up_failures`)."""
    # Imported here: the app loads TensorFlow, which `python -m app --help` or a refused setting need
    # not. TensorFlow's native start-up notices come out once, as log lines (`native_logs`).
    with relayed_native_stderr():
        from app.main import create_app

    return report_start_up_failures(create_app(settings))
