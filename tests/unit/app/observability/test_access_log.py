"""One access line per answered request: method, path, status, duration, bytes, client and request ID,
in the format of every other line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from app.observability.access_log import (
    describe_access,
    enable_access_log,
    is_access_log_enabled,
    write_access_line,
)
from app.observability.logging import configure_logging, find_service_handler, request_id_context

pytestmark = pytest.mark.unit

SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/predict",
    "query_string": b"token=secret",
    "client": ("127.0.0.1", 50000),
}


@contextmanager
def service_log(log_format: str) -> Iterator[io.StringIO]:
    """The service's log lines in `log_format`, into a buffer; text again afterwards."""
    configure_logging("INFO", log_format)
    handler = find_service_handler()
    stream = io.StringIO()
    previous_stream = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous_stream)
        configure_logging("INFO", "text")


def test_the_access_fields_name_method_path_status_duration_bytes_and_client():
    fields = describe_access(SCOPE, 200, 0.004213, 312)
    assert fields == {
        "method": "POST",
        "path": "/predict",
        "status": 200,
        "duration_ms": 4.21,
        "response_bytes": 312,
        "client": "127.0.0.1:50000",
    }


def test_a_request_without_a_known_client_has_no_client_field():
    assert "client" not in describe_access({**SCOPE, "client": None}, 404, 0.001, 80)


def test_a_text_access_line_carries_the_request_id_and_every_field():
    token = request_id_context.set("req-42")
    try:
        with service_log("text") as stream:
            write_access_line(SCOPE, 200, 0.004213, 312)
    finally:
        request_id_context.reset(token)
    [line] = stream.getvalue().splitlines()
    assert line.endswith(
        " INFO app.access request client=127.0.0.1:50000 duration_ms=4.21 method=POST path=/predict "
        "request_id=req-42 response_bytes=312 status=200"
    )
    assert "secret" not in line


def test_a_json_access_line_carries_the_same_fields_as_values_of_their_types():
    token = request_id_context.set("req-42")
    try:
        with service_log("json") as stream:
            write_access_line(SCOPE, 503, 0.0005, 95)
    finally:
        request_id_context.reset(token)
    [line] = stream.getvalue().splitlines()
    document = json.loads(line)
    assert {key: document[key] for key in ("level", "logger", "message")} == {
        "level": "INFO",
        "logger": "app.access",
        "message": "request",
    }
    assert (document["method"], document["path"], document["status"]) == ("POST", "/predict", 503)
    assert (document["duration_ms"], document["response_bytes"]) == (0.5, 95)
    assert document["request_id"] == "req-42"


def test_a_hostile_path_cannot_split_the_line_or_forge_a_field():
    with service_log("text") as stream:
        write_access_line({**SCOPE, "path": "/x status=200\nforged=1"}, 404, 0.001, 80)
    [line] = stream.getvalue().splitlines()
    assert 'path="/x status=200\\nforged=1"' in line and line.endswith(" status=404")


def test_the_access_line_can_be_turned_off_and_on():
    configure_logging("INFO")
    enable_access_log(False)
    try:
        assert not is_access_log_enabled()
    finally:
        enable_access_log(True)
    assert is_access_log_enabled()


def test_the_service_log_level_silences_access_lines_too():
    configure_logging("WARNING")
    try:
        assert not is_access_log_enabled()
    finally:
        configure_logging("INFO")
