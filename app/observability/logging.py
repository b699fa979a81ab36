"""Log records -> one line each on stderr: `time level logger message key=value ...`.

Configured once at start-up from `Settings.log_level`. Modules log through `logging.getLogger(__name__)`
and pass context as `extra={"fields": {...}}`, which this formatter appends as sorted key=value pairs,
so that lines stay greppable without a JSON log pipeline. Every line logged while a request is handled
also carries `request_id=...`: `app.api.middleware.RequestIdMiddleware` sets `request_id_context` for
the request's task (worker threads of `asyncio.to_thread` inherit it), and `RequestIdFilter` copies it
onto each record.
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar

SERVICE_LOGGER_NAME = "app"
_HANDLER_NAME = "digitserve"

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


class KeyValueFormatter(logging.Formatter):
    """Formats a record as `time level logger message key=value ...` (values with spaces quoted)."""

    def __init__(self) -> None:
        super().__init__(fmt="%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = dict(getattr(record, "fields", None) or {})
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            fields["request_id"] = request_id
        if not fields:
            return line
        pairs = []
        for key, value in sorted(fields.items()):
            text = str(value)
            pairs.append(f'{key}="{text}"' if " " in text else f"{key}={text}")
        # The traceback (if any) follows the first line; the fields stay on the first line.
        first_line, newline, rest = line.partition("\n")
        return f"{first_line} {' '.join(pairs)}{newline}{rest}"


def configure_logging(log_level: str) -> None:
    """Sends the service's logs (logger `app` and below) to stderr at `log_level`.

    Idempotent: a second call (a second app in the same test process) only changes the level.

    Args:
        log_level: a `logging` level name such as "INFO".
    """
    logger = logging.getLogger(SERVICE_LOGGER_NAME)
    logger.setLevel(log_level)
    if any(handler.get_name() == _HANDLER_NAME for handler in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(KeyValueFormatter())
    # On the handler, not the logger: a logger's filters skip records of its child loggers.
    handler.addFilter(RequestIdFilter())
    logger.addHandler(handler)
