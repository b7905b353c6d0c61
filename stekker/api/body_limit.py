"""Request body limits, enforced before routing, parsing and authentication.

The OCPP gateway and the HTTP listener share one event loop: a request body that is read and
parsed in full (18 MB of JSON keys) stalls every station's heartbeat for seconds. So every
request gets a byte budget by its path (small for JSON, large only for uploads and imports):

- a declared `Content-Length` over the budget is answered 413 at once, without calling the
  application and without reading a byte of the body;
- a chunked body (or one whose length is not declared) is counted as it streams, and the
  read that crosses the budget raises `BodyTooLarge`, which this middleware answers with 413.

Either way the 413 carries `Connection: close`, so the server stops reading the rest of the
body instead of draining it. A pure ASGI middleware (not BaseHTTPMiddleware, which would
buffer and run the app in another task).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "BodyLimitMiddleware", "BodyTooLarge", "Render", "api_error_body"]

Render = Callable[[str], dict[str, Any]]
"""The JSON body of a 413 for a path, from its message (the operator API's error schema
by default; OCPI paths answer an OCPI envelope)."""


def api_error_body(message: str) -> dict[str, Any]:
    return {"error": "too_large", "detail": message}


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """At most `max_bytes` of body for requests whose path starts with `prefix`; the longest
    matching prefix wins. `render` shapes the 413 (None: the operator API's error schema)."""

    prefix: str
    max_bytes: int
    render: Render | None = None


class BodyTooLarge(HTTPException):
    """The body crossed its limit while being read. An HTTPException so that FastAPI's body
    parsing re-raises it unchanged (it turns other errors into a 400); the middleware below
    answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _message(limit))
        self.limit = limit


def _message(limit: int) -> str:
    return f"the request body is larger than {limit} bytes, the limit of this route"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodyLimitMiddleware:
    """Enforces `limits` (by path prefix) and `default` (every other path) on HTTP requests."""

    def __init__(
        self, app: ASGIApp, *, default: int, limits: Sequence[BodyLimit] = (), render: Render | None = None
    ) -> None:
        self.app = app
        self.default = BodyLimit("", default, render)
        # longest prefix first, so /upload/diagnostics/ wins over /upload/
        self.limits = sorted(limits, key=lambda rule: len(rule.prefix), reverse=True)

    def limit_for(self, path: str) -> BodyLimit:
        for rule in self.limits:
            if path.startswith(rule.prefix):
                return rule
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > rule.max_bytes:
            await self._reject(send, rule)  # before the app: no routing, no auth, no read
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > rule.max_bytes:
                    raise BodyTooLarge(rule.max_bytes)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except BodyTooLarge:
            if started:  # a streaming answer already went out: nothing better than closing
                raise
            await self._reject(send, rule)

    async def _reject(self, send: Send, rule: BodyLimit) -> None:
        render = rule.render or self.default.render or api_error_body
        body = json.dumps(render(_message(rule.max_bytes))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # the server closes instead of reading (and discarding) the rest of the body
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
