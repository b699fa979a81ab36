"""Settings -> uvicorn options, and `python -m app`'s command line: one way to start the service."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import resource
import subprocess
from pathlib import Path

import pytest
import uvicorn
from starlette.routing import Router

import app.__main__ as entry_point
from app import server
from app.http_protocol import LimitedHttpToolsProtocol
from app.observability.access_log import enable_access_log, is_access_log_enabled
from app.observability.logging import configure_logging, find_service_handler
from app.settings import Settings
from digits.errors import ModelLoadError

REPO_ROOT = Path(__file__).resolve().parents[3]

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
    # uvicorn's access line and logging set-up are off: the app writes its own (test at the end).
    assert options["log_level"] == "warning" and options["access_log"] is False


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

    options = server.build_uvicorn_options(short_limits(), server_log_level="error")
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
    runs, built_for = [], []
    monkeypatch.setattr(server, "raise_open_file_limit", lambda required_files: required_files)
    monkeypatch.setattr(server, "build_served_app", lambda settings: built_for.append(settings) or "the app")
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: runs.append((target, options)))
    settings = short_limits()
    server.serve(settings, access_log=False)
    ((target, options),) = runs
    # The app is built from the settings the command read, not read again from the environment.
    assert target == "the app" and built_for == [settings]
    assert options["access_log"] is False and options["port"] == 9000


def test_uvicorn_logs_through_the_service_handler_and_the_app_writes_the_access_line():
    async def asgi_app(scope, receive, send) -> None:
        pass

    settings = Settings(log_format="json", log_level="INFO")
    server.configure_process_logging(settings, access_log=False)
    try:
        uvicorn.Config(asgi_app, **server.build_uvicorn_options(settings))
        handler = find_service_handler()
        stream = io.StringIO()
        previous_stream = handler.setStream(stream)
        try:
            logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
        finally:
            handler.setStream(previous_stream)
        line = json.loads(stream.getvalue())
        assert (line["logger"], line["message"]) == ("uvicorn.error", "Started server process [42]")
        # uvicorn's own access line has no handler; the app's follows --[no-]access-log.
        assert not logging.getLogger("uvicorn.access").hasHandlers()
        assert not is_access_log_enabled()
    finally:
        configure_logging("INFO", "text")
        enable_access_log(True)


def test_make_serve_listens_on_loopback_unless_told_otherwise():
    def serve_command(*arguments: str) -> str:
        completed = subprocess.run(
            ["make", "-n", "serve", *arguments],
            cwd=REPO_ROOT,
            env={**os.environ, "HOST": "0.0.0.0"},  # a shell's HOST does not decide it
            capture_output=True,
            text=True,
            check=True,
        )
        return next(line for line in completed.stdout.splitlines() if " -m app " in line)

    assert serve_command().endswith("-m app --host 127.0.0.1 --port 8000")
    assert serve_command("HOST=0.0.0.0").endswith("-m app --host 0.0.0.0 --port 8000")


def test_python_m_app_help_prints_the_usage_and_serves_nothing(monkeypatch, capsys):
    monkeypatch.setattr(entry_point, "serve", lambda settings, **options: pytest.fail("it served"))
    with pytest.raises(SystemExit) as exited:
        entry_point.main(["--help"])
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: python -m app") and "--print-settings" in usage and "--port" in usage


def test_a_bad_setting_is_one_line_naming_the_variable_its_value_and_what_is_allowed(monkeypatch, capsys):
    monkeypatch.setattr(entry_point, "serve", lambda settings, **options: pytest.fail("it served"))
    monkeypatch.setenv("DIGITSERVE_BATCH_MAX_SIZE", "48")
    with pytest.raises(SystemExit) as exited:
        entry_point.main([])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "error: invalid setting DIGITSERVE_BATCH_MAX_SIZE=48: must be a power of 2: 1, 2, 4 ... 1024\n"
    )


@pytest.mark.parametrize("port", ["70000", "0", "http"])
def test_a_bad_port_option_is_refused_by_the_command_line(monkeypatch, capsys, port):
    monkeypatch.setattr(entry_point, "serve", lambda settings, **options: pytest.fail("it served"))
    with pytest.raises(SystemExit) as exited:
        entry_point.main(["--port", port])
    assert exited.value.code == 2
    assert f"--port: {port!r} is not a port number (1..65535)" in capsys.readouterr().err


def test_print_settings_shows_the_effective_settings_with_the_keys_hidden_and_serves_nothing(
    monkeypatch, capsys
):
    monkeypatch.setattr(entry_point, "serve", lambda settings, **options: pytest.fail("it served"))
    monkeypatch.setenv("DIGITSERVE_API_KEYS", "first-key-0123456789,second-key-987654321")
    monkeypatch.setenv("DIGITSERVE_BATCH_MAX_SIZE", "8")
    entry_point.main(["--print-settings", "--port", "9001"])
    printed = capsys.readouterr().out.splitlines()
    assert "DIGITSERVE_BATCH_MAX_SIZE=8" in printed and "DIGITSERVE_PORT=9001" in printed
    assert "DIGITSERVE_API_KEYS=<hidden: 2>" in printed
    assert not any("first-key" in line or "second-key" in line for line in printed)


def test_an_unknown_variable_is_warned_of_before_serving(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(entry_point, "serve", lambda settings, **options: calls.append(settings))
    monkeypatch.setenv("DIGITSERVE_BATCH_MAX_SIZ", "8")
    entry_point.main([])
    assert capsys.readouterr().err == (
        "warning: DIGITSERVE_BATCH_MAX_SIZ is not a setting of the service and is ignored; "
        "did you mean DIGITSERVE_BATCH_MAX_SIZE?\n"
    )
    assert calls and calls[0].batch_max_size == 32


async def _fail_to_load(app):
    raise ModelLoadError("model directory /nowhere does not exist")
    yield  # pragma: no cover - an async generator, as a lifespan is


async def run_lifespan_start_up(app) -> list[dict]:
    """Drives an ASGI app's lifespan start-up as uvicorn does -> the messages it sent."""
    sent = []

    async def receive() -> dict:
        return {"type": "lifespan.startup"}

    async def send(message: dict) -> None:
        sent.append(message)

    with pytest.raises(ModelLoadError):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent


async def test_a_model_that_cannot_be_loaded_is_one_error_line_with_its_traceback_at_debug(caplog):
    app = server.report_start_up_failures(Router(lifespan=contextlib.asynccontextmanager(_fail_to_load)))
    with caplog.at_level(logging.DEBUG, logger="app.server"):
        sent = await run_lifespan_start_up(app)
    # uvicorn logs the text of a failed start-up as an error: the wrapper leaves it none.
    assert sent == [{"type": "lifespan.startup.failed", "message": ""}]
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in errors] == [
        "cannot start: model directory /nowhere does not exist"
    ]
    assert errors[0].exc_info is None
    (debug,) = [record for record in caplog.records if record.levelno == logging.DEBUG]
    assert debug.exc_info is not None


def test_uvicorns_own_start_up_failed_line_is_dropped_and_its_other_lines_kept():
    line_filter = server.StartUpFailedLineFilter()

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, message, None, None)

    assert not line_filter.filter(record("Application startup failed. Exiting."))
    assert line_filter.filter(record("Started server process [1]"))
