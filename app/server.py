"""Settings -> how uvicorn serves the app: the address, one worker, the connection limits, the drain.

`build_uvicorn_options` is the one place where the server is configured, and `serve` the one way to
start it: `python -m app` calls it, and every entry point runs that command (`make serve`, the
image's CMD and so compose and Kubernetes, `testkit.server` for the tests and benchmarks), so that
none of them can serve without the limits. The limits themselves are enforced by
`app.http_protocol` (the connection: head, body pace, connection count) and `app.api.body_limits`
(the body: size, spooled bytes).
"""

from __future__ import annotations

import functools
import logging
import resource
from typing import Any

import uvicorn

from app.api.routes import health
from app.connection_limits import ConnectionLimits, RefusalLog
from app.http_protocol import LimitedHttpToolsProtocol
from app.settings import Settings

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
    access_log: bool = True,
    server_log_level: str | None = None,
    graceful_shutdown_seconds: int = GRACEFUL_SHUTDOWN_SECONDS,
) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run` / `uvicorn.Config` that serve the app with `settings`.

    Args:
        settings: the service's settings (address, connection limits, log level).
        access_log: whether uvicorn logs one line per response.
        server_log_level: the level of uvicorn's own logs; None follows `settings.log_level`.
        graceful_shutdown_seconds: how long in-flight requests may finish after SIGTERM.

    Returns:
        The options; uvicorn's own `limit_concurrency` stays off: the protocol counts connections
        itself, to let the health probes through and answer the error body of the API.
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
        "access_log": access_log,
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


def serve(
    settings: Settings,
    access_log: bool = True,
    server_log_level: str | None = None,
    graceful_shutdown_seconds: int = GRACEFUL_SHUTDOWN_SECONDS,
) -> None:
    """Runs the service with uvicorn until SIGINT or SIGTERM (arguments: `build_uvicorn_options`)."""
    raise_open_file_limit(settings.http_max_connections * OPEN_FILES_PER_CONNECTION + OPEN_FILES_RESERVED)
    options = build_uvicorn_options(settings, access_log, server_log_level, graceful_shutdown_seconds)
    uvicorn.run("app.main:app", **options)
