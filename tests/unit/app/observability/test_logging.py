"""Log lines are `time level logger message key=value ...`, configured once per process."""

from __future__ import annotations

import logging

import pytest

from app.observability.logging import (
    KeyValueFormatter,
    LogThrottle,
    RequestIdFilter,
    configure_logging,
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
