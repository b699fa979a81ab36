"""Settings -> uvicorn options, and `python -m app`'s command line: one way to start the service."""

from __future__ import annotations

import resource

import pytest
import uvicorn

import app.__main__ as entry_point
from app import server
from app.http_protocol import LimitedHttpToolsProtocol
from app.settings import Settings

pytestmark = pytest.mark.unit


def short_limits() -> Settings:
    return Settings(
        host="0.0.0.0",
        port=9000,
        log_level="WARNING",
        http_max_header_bytes=4096,
        http_header_timeout_seconds=1.5,
        http_keep_alive_timeout_seconds=3,
        http_max_connections=32,
        upload_idle_timeout_seconds=2.0,
        upload_timeout_seconds=30.0,
    )


def test_options_carry_the_address_one_worker_and_the_drain():
    options = server.build_uvicorn_options(short_limits())
    assert (options["host"], options["port"], options["workers"]) == ("0.0.0.0", 9000, 1)
    assert options["timeout_graceful_shutdown"] == server.GRACEFUL_SHUTDOWN_SECONDS
    assert options["log_level"] == "warning" and options["access_log"] is True


def test_options_carry_every_connection_limit_of_the_settings():
    options = server.build_uvicorn_options(short_limits())
    assert options["http"].func is LimitedHttpToolsProtocol
    limits = options["http"].keywords["limits"]
    assert (limits.max_header_bytes, limits.header_timeout_seconds, limits.max_connections) == (4096, 1.5, 32)
    assert (limits.upload_idle_timeout_seconds, limits.upload_timeout_seconds) == (2.0, 30.0)
    assert limits.max_header_fields == server.HTTP_MAX_HEADER_FIELDS
    assert limits.probe_paths == {b"/healthz", b"/readyz"}
    assert options["timeout_keep_alive"] == 3
    # uvicorn's own cap would refuse the health probes too: the protocol counts connections instead.
    assert "limit_concurrency" not in options
    # A WebSocket upgrade would leave the limited protocol for one without limits.
    assert options["ws"] == "none"


def test_uvicorn_accepts_the_options_and_builds_the_limited_protocol():
    async def asgi_app(scope, receive, send) -> None:
        pass

    options = server.build_uvicorn_options(short_limits(), access_log=False, server_log_level="error")
    config = uvicorn.Config(asgi_app, **options)
    config.load()
    assert config.http_protocol_class is options["http"]
    assert (config.timeout_keep_alive, config.limit_concurrency, config.access_log) == (3, None, False)
    assert config.log_level == "error" and config.ws_protocol_class is None


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ([], {"access_log": True, "server_log_level": None, "graceful_shutdown_seconds": 20}),
        (
            ["--no-access-log", "--log-level", "warning", "--access-log", "--log-level", "INFO"],
            {"access_log": True, "server_log_level": "info", "graceful_shutdown_seconds": 20},
        ),
        (
            ["--timeout-graceful-shutdown", "5"],
            {"access_log": True, "server_log_level": None, "graceful_shutdown_seconds": 5},
        ),
    ],
    ids=["defaults", "the last of a repeated option wins", "drain"],
)
def test_python_m_app_serves_with_the_settings_and_its_options(monkeypatch, arguments, expected):
    calls = []
    monkeypatch.setattr(entry_point, "serve", lambda settings, **options: calls.append((settings, options)))
    monkeypatch.setenv("DIGITSERVE_PORT", "8123")
    entry_point.main(arguments)
    ((settings, options),) = calls
    assert options == expected and settings.port == 8123 and settings.http_max_connections == 256


def test_host_and_port_options_win_over_the_environment(monkeypatch):
    calls = []
    monkeypatch.setattr(entry_point, "serve", lambda settings, **options: calls.append(settings))
    monkeypatch.setenv("DIGITSERVE_HOST", "10.0.0.1")
    entry_point.main(["--host", "0.0.0.0", "--port", "8000"])
    assert (calls[0].host, calls[0].port) == ("0.0.0.0", 8000)


def test_an_unknown_option_stops_python_m_app(monkeypatch):
    monkeypatch.setattr(entry_point, "serve", lambda settings, **options: None)
    with pytest.raises(SystemExit):
        entry_point.main(["--workers", "4"])


@pytest.mark.parametrize(
    ("soft", "hard", "required", "expected_soft"),
    [
        (1024, 65536, 640, 1024),
        (256, 65536, 640, 640),
        (256, 512, 640, 512),
        (256, resource.RLIM_INFINITY, 640, 640),
    ],
    ids=["enough already", "raised", "capped by the hard limit", "no hard limit"],
)
def test_the_open_file_limit_is_raised_towards_what_the_connections_need(
    monkeypatch, soft, hard, required, expected_soft
):
    set_limits = []
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (soft, hard))
    monkeypatch.setattr(resource, "setrlimit", lambda kind, limits: set_limits.append(limits))
    assert server.raise_open_file_limit(required) == expected_soft
    assert set_limits == ([] if soft >= required else [(expected_soft, hard)])


def test_serve_runs_uvicorn_on_the_app_with_the_built_options(monkeypatch):
    runs = []
    monkeypatch.setattr(server, "raise_open_file_limit", lambda required_files: required_files)
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: runs.append((target, options)))
    server.serve(short_limits(), access_log=False)
    ((target, options),) = runs
    assert target == "app.main:app" and options["access_log"] is False and options["port"] == 9000
