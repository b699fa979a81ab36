"""Log lines are `time level logger message key=value ...`, configured once per process."""

from __future__ import annotations

import logging

import pytest

from app.observability.logging import KeyValueFormatter, configure_logging

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
