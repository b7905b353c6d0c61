"""The HTTP listener's connection protocol: uvicorn's h11 protocol with a header deadline.

uvicorn closes a keep-alive connection that stays idle after a response, but it has no limit
on how long a client may take to send a request's line and headers: a client that sends
`GET / HTTP/1.1\\r\\n` and then one header byte every few seconds holds its connection (and a
file descriptor) for ever (slowloris). Here every connection must deliver a complete request
head within `header_timeout` seconds, counted from the moment it opens and again after each
response; a slower one gets a 408 and is closed. The request head itself is at most
`MAX_HEAD_BYTES` (h11 answers 400 to a larger one).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

__all__ = ["KEEP_ALIVE_SECONDS", "MAX_HEAD_BYTES", "protocol_with_header_timeout"]

MAX_HEAD_BYTES = 16 * 1024  # request line and headers; browsers and stations send far less
KEEP_ALIVE_SECONDS = 5  # an idle kept-alive connection is closed after this (uvicorn's own timer)

_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 40\r\n"
    b"connection: close\r\n\r\n"
    b"the request headers did not come in time"
)


class HeaderDeadlineProtocol(H11Protocol):
    """H11Protocol that closes a connection whose request head is not complete in time."""

    header_timeout: float = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in (or the socket is upgraded)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # waiting for the next request: uvicorn's keep-alive timer closes an idle connection;
        # this one also bounds a next request whose head trickles in
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.our_state is h11.IDLE:  # nothing of ours in flight: say why we close
            self.transport.write(_TIMEOUT_ANSWER)
        self.transport.close()


def protocol_with_header_timeout(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for uvicorn's `http=`, with its deadline set."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": seconds})
