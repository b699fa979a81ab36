"""Log lines are `time level logger message key=value ...` or one JSON object each, configured once per
process, with one handler for the service's loggers and uvicorn's."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from app.observability.logging import (
    JsonLineFormatter,
    KeyValueFormatter,
    LogThrottle,
    RequestIdFilter,
    build_formatter,
    configure_logging,
    find_service_handler,
    request_id_context,
)

pytestmark = pytest.mark.unit


def make_record(fields: dict | None) -> logging.LogRecord:
    record = logging.LogRecord("app.test", logging.WARNING, __file__, 1, "model call failed", None, None)
    if fields is not None:
        record.fields = fields
    return record


def test_fields_are_appended_sorted_and_quoted_when_they_hold_spaces():
    line = KeyValueFormatter().format(make_record({"path": "/predict", "detail": "too big", "batch_size": 4}))
    assert line.endswith('WARNING app.test model call failed batch_size=4 detail="too big" path=/predict')


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('say "hi"', '"say \\"hi\\""'),
        ("a\nforged=1", '"a\\nforged=1"'),
        ("key=value", '"key=value"'),
        ("back\\slash", '"back\\\\slash"'),
        ("", '""'),
        ("tab\there", '"tab\\there"'),
    ],
    ids=["quotes", "newline", "equals", "backslash", "empty", "tab"],
)
def test_field_values_that_could_forge_a_field_or_a_line_are_quoted_and_escaped(value, written):
    line = KeyValueFormatter().format(make_record({"detail": value}))
    assert "\n" not in line
    assert line.endswith(f"model call failed detail={written}")


def test_a_message_holding_a_newline_stays_on_one_line_and_a_traceback_follows_it():
    record = logging.LogRecord("app.test", logging.ERROR, __file__, 1, "bad\r\nupload", None, None)
    record.fields = {"code": "x"}
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    first_line, _, traceback = KeyValueFormatter().format(record).partition("\n")
    assert first_line.endswith("ERROR app.test bad\\r\\nupload code=x")
    assert traceback.startswith("Traceback") and "ValueError: boom" in traceback


def test_the_shared_core_logs_through_the_same_handler():
    configure_logging("INFO")
    for name in ("app", "digits"):
        handlers = logging.getLogger(name).handlers
        assert sum(handler.get_name() == "digitserve" for handler in handlers) == 1


def test_record_without_fields_is_the_plain_message():
    assert KeyValueFormatter().format(make_record(None)).endswith("WARNING app.test model call failed")


def test_configuring_twice_adds_one_handler_and_updates_the_level():
    configure_logging("INFO")
    configure_logging("DEBUG")
    logger = logging.getLogger("app")
    assert sum(handler.get_name() == "digitserve" for handler in logger.handlers) == 1
    assert logger.level == logging.DEBUG
    configure_logging("INFO")


def test_request_id_filter_copies_the_context_into_each_record():
    filter_ = RequestIdFilter()
    outside = make_record({"code": "queue_full"})
    filter_.filter(outside)
    token = request_id_context.set("abc123")
    try:
        inside = make_record({"code": "queue_full"})
        filter_.filter(inside)
    finally:
        request_id_context.reset(token)
    assert outside.request_id is None and inside.request_id == "abc123"
    assert KeyValueFormatter().format(inside).endswith("model call failed code=queue_full request_id=abc123")
    assert "request_id" not in KeyValueFormatter().format(outside)


def test_request_id_alone_makes_a_field():
    record = make_record(None)
    record.request_id = "abc123"
    assert KeyValueFormatter().format(record).endswith("model call failed request_id=abc123")


def test_configured_handler_adds_request_ids():
    configure_logging("INFO")
    handlers = logging.getLogger("app").handlers
    [handler] = [handler for handler in handlers if handler.get_name() == "digitserve"]
    assert any(isinstance(filter_, RequestIdFilter) for filter_ in handler.filters)


def test_log_throttle_passes_one_event_per_interval_and_counts_the_rest(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("app.observability.logging.time.monotonic", lambda: now[0])
    throttle = LogThrottle(interval_seconds=1.0)
    assert throttle.admit() == 0
    assert [throttle.admit() for _ in range(5)] == [None] * 5
    now[0] += 0.999
    assert throttle.admit() is None
    now[0] += 0.002
    assert throttle.admit() == 6
    now[0] += 5.0
    assert throttle.admit() == 0


def test_a_json_line_holds_time_level_logger_message_then_each_field_and_the_request_id():
    record = make_record({"path": "/predict", "batch_size": 4})
    record.request_id = "abc123"
    line = JsonLineFormatter().format(record)
    assert "\n" not in line
    document = json.loads(line)
    assert list(document)[:4] == ["time", "level", "logger", "message"]
    assert document["time"].endswith("+00:00") and "T" in document["time"]
    assert document == {
        "time": document["time"],
        "level": "WARNING",
        "logger": "app.test",
        "message": "model call failed",
        "batch_size": 4,
        "path": "/predict",
        "request_id": "abc123",
    }


def test_a_json_line_outside_requests_has_no_request_id_and_no_internal_attributes():
    record = make_record(None)
    record.request_id = None
    record.color_message = "\x1b[1mmodel call failed\x1b[0m"  # what uvicorn attaches to its records
    document = json.loads(JsonLineFormatter().format(record))
    assert set(document) == {"time", "level", "logger", "message"}


def test_a_field_never_overwrites_the_level_or_the_message_in_json():
    document = json.loads(JsonLineFormatter().format(make_record({"level": "DEBUG", "message": "forged"})))
    assert (document["level"], document["message"]) == ("WARNING", "model call failed")


def test_a_json_traceback_stays_inside_the_one_line():
    record = logging.LogRecord("app.test", logging.ERROR, __file__, 1, "bad\nupload", None, None)
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonLineFormatter().format(record)
    assert "\n" not in line
    document = json.loads(line)
    assert document["message"] == "bad\nupload" and "ValueError: boom" in document["exc_info"]


def test_build_formatter_knows_text_and_json_only():
    assert isinstance(build_formatter("text"), KeyValueFormatter)
    assert isinstance(build_formatter("json"), JsonLineFormatter)
    with pytest.raises(ValueError, match="text or json"):
        build_formatter("xml")


def test_service_and_uvicorn_loggers_share_one_handler_in_one_format():
    configure_logging("INFO", "json")
    try:
        handler = find_service_handler()
        for name in ("app", "digits", "uvicorn"):
            assert [h for h in logging.getLogger(name).handlers if h.get_name() == "digitserve"] == [handler]
        stream = io.StringIO()
        previous_stream = handler.setStream(stream)
        try:
            logging.getLogger("app.main").info("ready", extra={"fields": {"model_version": "6"}})
            # ERROR: uvicorn sets its loggers' levels itself (a test of the server may have).
            logging.getLogger("uvicorn.error").error("Exception in ASGI application")
        finally:
            handler.setStream(previous_stream)
        application, server = (json.loads(line) for line in stream.getvalue().splitlines())
        assert (application["logger"], application["message"], application["model_version"]) == (
            "app.main",
            "ready",
            "6",
        )
        assert (server["logger"], server["level"]) == ("uvicorn.error", "ERROR")
    finally:
        configure_logging("INFO", "text")


def test_configuring_without_a_format_keeps_the_one_in_place():
    configure_logging("INFO", "json")
    try:
        configure_logging("DEBUG")
        assert isinstance(find_service_handler().formatter, JsonLineFormatter)
        assert logging.getLogger("digits").level == logging.DEBUG
    finally:
        configure_logging("INFO", "text")
    assert isinstance(find_service_handler().formatter, KeyValueFormatter)
