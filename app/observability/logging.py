"""Log records -> one line each on stderr: `time level logger message key=value ...`.

Configured once at start-up from `Settings.log_level`. Modules log through `logging.getLogger(__name__)`
and pass context as `extra={"fields": {...}}`, which this formatter appends as sorted key=value pairs
(logfmt: a value with spaces, quotes, `=` or control characters is quoted and escaped as a JSON
string), so that lines stay greppable without a JSON log pipeline, and no value, however hostile, can
split a line or forge a field. Every line logged while a request is handled also carries
`request_id=...`: `app.api.middleware.RequestIdMiddleware` sets `request_id_context` for the request's
task (the decode pool's threads get a copy of it), and `RequestIdFilter` copies it onto each record.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar

# The service's own code and the shared core it loads the model with.
SERVICE_LOGGER_NAMES = ("app", "digits")
_HANDLER_NAME = "digitserve"
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


def configure_logging(log_level: str) -> None:
    """Sends the service's logs (loggers `app` and `digits`, and below) to stderr at `log_level`.

    Idempotent: a second call (a second app in the same test process) only changes the level.

    Args:
        log_level: a `logging` level name such as "INFO".
    """
    for logger_name in SERVICE_LOGGER_NAMES:
        logger = logging.getLogger(logger_name)
        logger.setLevel(log_level)
        if any(handler.get_name() == _HANDLER_NAME for handler in logger.handlers):
            continue
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(KeyValueFormatter())
        # On the handler, not the logger: a logger's filters skip records of its child loggers.
        handler.addFilter(RequestIdFilter())
        logger.addHandler(handler)
