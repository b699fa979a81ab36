"""Bytes on a connection -> requests for the app, within the connection limits: the size and the time
of a request head, the pace of a body, the connections held at once.

uvicorn's httptools protocol (llhttp, in C) bounds none of these: a head may be of any size (httptools
joins a long header value piece by piece, at a cost growing with the square of its length) and take
forever, a body may trickle, connections are never too many. uvicorn's h11 protocol bounds the head
but costs ~70 us more per request (README, "Hardening"); this subclass keeps httptools and adds the
limits with counters and clock readings on parser events, ~1 us a request. One timer per connection
watches its deadlines, re-armed only when it fires: a request that arrives in one read reads no
clock and arms no timer (an uvloop timer costs ~5 us to arm and cancel).

A connection is in one phase at a time:
- HEAD, from its opening or the first byte of its next request: past `http_header_timeout_seconds`,
  408 `request_header_timeout` (a plain close if nothing came); past `http_max_header_bytes` or
  `max_header_fields`, 431 `request_header_too_large`.
- BODY: no byte for `upload_idle_timeout_seconds`, or incomplete after `upload_timeout_seconds`: the
  app's `receive` is woken with the scope marked, and `app.api.body_limits` raises the 408.
- HANDLING: the server's turn, then keep-alive idleness (uvicorn's `timeout_keep_alive`).
- IDLE: answered before its body ended (an early refusal) and the body now in: uvicorn no longer
  times such a connection, so this phase closes it after `timeout_keep_alive`.
Past `http_max_connections` connections, requests get 503 `too_many_connections`, except the health
probes: a busy replica must be neither restarted nor taken out of rotation for being busy.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.api.body_limits import UPLOAD_TIMEOUT_SCOPE_KEY
from app.api.error_handlers import render_domain_error
from app.connection_limits import ConnectionLimits, RefusalLog, describe_client, encode_refusal
from digits.errors import DigitServeError

logger = logging.getLogger(__name__)

# After a body deadline has woken the app, the time it has to answer before the connection is closed.
EXPIRED_UPLOAD_GRACE_SECONDS = 1.0
# The phases of a connection (see above), compared by identity: plain strings, since an Enum member
# costs ~50 ns a lookup and a request goes through a dozen of them.
HEAD, BODY, HANDLING, IDLE = "head", "body", "handling", "idle"
EXPIRED = "expired"  # a body deadline passed; the app has a moment to answer


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the connection limits; one instance per connection.

    Args:
        config, server_state, app_state: what uvicorn passes every protocol.
        limits: the limits (keyword, as the next; `app.server` binds both with `functools.partial`).
        refusal_log: counts and logs refusals; one for all the connections of a server.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
        refusal_log: RefusalLog,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.refusal_log = refusal_log
        self.service_app = self.app
        self.phase = HEAD
        self.head_bytes = 0  # bytes read while the head was incomplete
        self.read_bytes = 0  # size of the read being parsed
        self.head_deadline = self.idle_deadline = self.body_started_at = self.body_arrived_at = 0.0
        self.is_refused = False
        self.watch_timer: asyncio.TimerHandle | None = None
        self.watch_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self.begin_head()
        self.head_deadline = self.loop.time() + self.limits.header_timeout_seconds
        self.watch(self.head_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.watch_timer is not None:
            self.watch_timer.cancel()
            self.watch_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.is_refused:
            return
        is_answered = self.cycle is None or self.cycle.response_complete
        if self.phase is IDLE or (self.phase is HANDLING and is_answered):
            self.begin_head()  # the next request of a keep-alive connection begins
        self.read_bytes = len(data)
        super().data_received(data)
        # A request that fits in one read ends here, having read no clock and armed no timer.
        if self.phase is HANDLING or self.is_refused or self.transport.is_closing():
            return
        if self.phase is HEAD:
            # Every read that leaves the head incomplete is all head (or a pipelined request's tail).
            self.head_bytes += len(data)
            if self.head_bytes > self.limits.max_header_bytes:
                self.refuse(self.limits.head_size_error(self.head_bytes))
                return
            if not self.head_deadline:  # timed from the request's first read
                self.head_deadline = self.loop.time() + self.limits.header_timeout_seconds
            self.watch(self.head_deadline)
        elif self.phase is BODY:
            self.body_arrived_at = self.loop.time()
            if not self.body_started_at:
                self.body_started_at = self.body_arrived_at
            self.watch(self.body_deadline())
        elif self.phase is IDLE:
            self.watch(self.idle_deadline)

    # llhttp's callbacks, in the order of a request

    def on_message_begin(self) -> None:
        if self.phase is not HEAD:
            self.begin_head()  # a pipelined request, parsed while the previous one is handled
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if self.is_refused:
            return
        limits = self.limits
        # A head is no longer than what was read since it began: it is measured only if that is too much.
        may_be_over = (
            self.head_bytes + self.read_bytes > limits.max_header_bytes
            or len(self.headers) > limits.max_header_fields
        )
        if may_be_over and (error := limits.head_error(self.url, self.headers)):
            self.refuse(error)
            return
        self.phase = BODY
        self.body_started_at = 0.0  # timed from the end of this read, if the body is not in it
        is_over_capacity = len(self.connections) > limits.max_connections and not self.is_probe()
        self.app = self.answer_over_capacity if is_over_capacity else self.service_app
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.is_refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.is_refused:
            return
        if self.phase is BODY and self.cycle.response_complete:
            self.phase = IDLE
            self.idle_deadline = self.loop.time() + self.config.timeout_keep_alive
        elif self.phase is BODY:
            self.phase = HANDLING
        super().on_message_complete()

    # the limits

    def begin_head(self) -> None:
        self.phase = HEAD
        self.head_bytes = 0
        self.head_deadline = 0.0  # set by the first read that leaves the head incomplete

    def is_probe(self) -> bool:
        return self.url.partition(b"?")[0] in self.limits.probe_paths

    def body_deadline(self) -> float:
        return min(
            self.body_arrived_at + self.limits.upload_idle_timeout_seconds,
            self.body_started_at + self.limits.upload_timeout_seconds,
        )

    def watch(self, deadline: float) -> None:
        """Makes sure that the deadlines are checked at `deadline` at the latest."""
        if self.watch_timer is not None:
            if self.watch_at <= deadline:
                return
            self.watch_timer.cancel()
        self.watch_at = deadline
        self.watch_timer = self.loop.call_at(deadline, self.check_deadlines)

    def check_deadlines(self) -> None:
        self.watch_timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self.phase is HEAD:
            if now < self.head_deadline:
                self.watch(self.head_deadline)
            elif self.head_bytes:
                self.refuse(self.limits.head_timeout_error())
            else:
                client = describe_client(self.client)
                logger.debug("idle connection closed", extra={"fields": {"client": client}})
                self.transport.close()
        elif self.phase is BODY:
            if self.flow.read_paused:
                self.body_arrived_at = now  # the app, not the client, holds the body back
            if now < self.body_deadline():
                self.watch(self.body_deadline())
            else:
                self.expire_upload(now)
        elif self.phase is IDLE and now < self.idle_deadline:
            self.watch(self.idle_deadline)
        elif self.phase is IDLE or self.phase is EXPIRED:
            self.transport.close()

    def expire_upload(self, now: float) -> None:
        """Has the app answer 408 to a body that missed a deadline, or closes if it has answered already."""
        cycle = self.cycle
        if cycle is None or cycle.response_started:
            self.transport.close()  # answered before reading the body: nobody waits for the rest
            return
        is_idle = now >= self.body_arrived_at + self.limits.upload_idle_timeout_seconds
        self.phase = EXPIRED
        cycle.scope[UPLOAD_TIMEOUT_SCOPE_KEY] = self.limits.upload_timeout_detail(is_idle)
        cycle.keep_alive = False
        cycle.message_event.set()
        self.watch(now + EXPIRED_UPLOAD_GRACE_SECONDS)

    # the answers

    def refuse(self, error: DigitServeError) -> None:
        """Answers `error` for a request the app never saw, and closes the connection."""
        self.is_refused = True
        self.refusal_log.record(error, self.app_state, self.client)
        self.transport.write(encode_refusal(error, self.server_state.default_headers))
        self.transport.close()

    async def answer_over_capacity(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app of requests past the connection cap: 503 + Retry-After, and the connection closed."""
        error = self.limits.over_capacity_error(len(self.connections))
        self.refusal_log.record(error, self.app_state, self.client)
        await render_domain_error(error)(scope, receive, send)
