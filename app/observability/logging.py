"""Log records -> one line each on stderr, in one format for every line: `text` or `json`.

Configured once at start-up from `Settings.log_level` and `Settings.log_format`, for the service's
loggers (`app`, `digits`) and uvicorn's (`uvicorn.*`), which share one handler, so that the server's
lines, the application's and the access lines (`app.observability.access_log`) read alike. Modules log
through `logging.getLogger(__name__)` and pass context as `extra={"fields": {...}}`.

`text` writes `time level logger message key=value ...`, the fields sorted (logfmt: a value with
spaces, quotes, `=` or control characters is quoted and escaped as a JSON string), so that lines stay
greppable without a JSON log pipeline, and no value, however hostile, can split a line or forge a
field. `json` writes one JSON object per line (python-json-logger): `time` (ISO 8601, UTC), `level`,
`logger`, `message`, then the fields as keys of their own. Every line logged while a request is handled
also carries `request_id`: `app.api.middleware.RequestIdMiddleware` sets `request_id_context` for the
request's task (the decode pool's threads get a copy of it), and `RequestIdFilter` copies it onto each
record.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]

# The service's own code and the shared core it loads the model with.
SERVICE_LOGGER_NAMES = ("app", "digits")
# uvicorn's loggers (`uvicorn.error`, ...): its levels are its own `log_level` option.
SERVER_LOGGER_NAME = "uvicorn"
_HANDLER_NAME = "digitserve"
# Record attributes that are not fields: the fields themselves (flattened), the request ID (added
# when set), and the copy of the message with terminal colours that uvicorn attaches.
_NOT_FIELDS = (*RESERVED_ATTRS, "taskName", "fields", "request_id", "color_message")
_NEEDS_QUOTING = re.compile(r'[\s"=\\]|[\x00-\x1f\x7f]')
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

request_id_context: ContextVar[str | None] = ContextVar("digitserve_request_id", default=None)
"""The ID of the request being handled in this context; None outside requests (start-up, batcher)."""


class RequestIdFilter(logging.Filter):
    """Sets `record.request_id` from `request_id_context`, unless the record already names one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_context.get()
        return True


class LogThrottle:
    """Lets one event per `interval_seconds` through and counts the ones it holds back.

    For lines that come in floods exactly when the service is busiest (queue-full refusals under
    overload): writing thousands of them a second would take the CPU the overload lacks. Their
    metric still counts every one.
    """

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self._next_at_seconds = 0.0
        self._held_back = 0

    def admit(self) -> int | None:
        """Returns None when this event is held back, else how many were held back since the last one."""
        now_seconds = time.monotonic()
        if now_seconds < self._next_at_seconds:
            self._held_back += 1
            return None
        self._next_at_seconds = now_seconds + self.interval_seconds
        held_back, self._held_back = self._held_back, 0
        return held_back


def format_logfmt_value(value: object) -> str:
    """A field value as logfmt writes it: bare when safe, else a quoted, escaped JSON string."""
    text = str(value)
    if text and not _NEEDS_QUOTING.search(text):
        return text
    return json.dumps(text, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """Formats a record as `time level logger message key=value ...` on one line (a traceback follows)."""

    def __init__(self) -> None:
        super().__init__(fmt="%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The first line only: `format` appends a traceback after it, on lines of its own.
        line = _CONTROL_CHARACTERS.sub(_escape_character, super().formatMessage(record))
        fields = dict(getattr(record, "fields", None) or {})
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            fields["request_id"] = request_id
        pairs = [f"{key}={format_logfmt_value(value)}" for key, value in sorted(fields.items())]
        return " ".join([line, *pairs])


def _escape_character(match: re.Match[str]) -> str:
    return json.dumps(match.group())[1:-1]


class JsonLineFormatter(JsonFormatter):
    """Formats a record as one JSON object: time, level, logger, message, its fields, its request ID.

    A traceback goes into `exc_info`, inside the object: a JSON line is never split.
    """

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=_NOT_FIELDS,
            json_ensure_ascii=False,
        )

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        super().add_fields(log_data, record, message_dict)
        # A field never overwrites time, level, logger or message.
        for key, value in sorted((getattr(record, "fields", None) or {}).items()):
            log_data.setdefault(key, value)
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            log_data["request_id"] = request_id


def build_formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter of `log_format`: "text" (key=value) or "json"."""
    if log_format == "json":
        return JsonLineFormatter()
    if log_format == "text":
        return KeyValueFormatter()
    raise ValueError(f"unknown log format {log_format!r}: text or json")


def find_service_handler() -> logging.Handler | None:
    """The handler `configure_logging` installed (None before it ran): tests point it at a buffer."""
    handlers = logging.getLogger(SERVICE_LOGGER_NAMES[0]).handlers
    return next((handler for handler in handlers if handler.get_name() == _HANDLER_NAME), None)


def configure_logging(log_level: str, log_format: LogFormat | None = None) -> None:
    """Sends the service's logs (`app`, `digits`, and below) and uvicorn's to stderr, in one format.

    Idempotent: a second call (a second app in the same test process) changes only the level and,
    when given, the format; every logger keeps the one shared handler.

    Args:
        log_level: a `logging` level name such as "INFO", for the service's loggers (uvicorn's own
            level is its `log_level` option).
        log_format: "text" or "json"; None keeps the format in place (text at first), so that the
            app's lifespan leaves the format `python -m app` chose.
    """
    handler = find_service_handler()
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(KeyValueFormatter())
        # On the handler, not the logger: a logger's filters skip records of its child loggers.
        handler.addFilter(RequestIdFilter())
    if log_format is not None:
        handler.setFormatter(build_formatter(log_format))
    for logger_name in (*SERVICE_LOGGER_NAMES, SERVER_LOGGER_NAME):
        logger = logging.getLogger(logger_name)
        if not any(existing.get_name() == _HANDLER_NAME for existing in logger.handlers):
            logger.addHandler(handler)
    for logger_name in SERVICE_LOGGER_NAMES:
        logging.getLogger(logger_name).setLevel(log_level)
