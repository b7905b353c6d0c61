"""`X-Request-ID` and `X-Correlation-ID` on every OCPI answer (OCPI 2.2.1, transport and format,
"Unique message IDs"): the response to a request SHALL contain the same IDs.

A pure ASGI middleware, outermost on /ocpi, so that every answer carries them: the routes',
the envelopes of errors, the 413 of the body limit and the 500 of a failure it catches here.
The IDs are echoed only as sent; we do not make them up for a partner that sent none (the
spec asks the receiver to repeat them). An ID we would echo is checked first (at most 255
printable ASCII characters, sent once): anything else is refused with HTTP 400 and OCPI 2001
before the request reaches a route, so a hostile header cannot put its bytes into our answer.

It also answers an exception nobody handled with a 3000 envelope (and logs it): an OCPI
client reads an envelope, never Starlette's plain-text "Internal Server Error".
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stekker.ocpi.envelope import INVALID_PARAMETERS, PREFIX, SERVER_ERROR, envelope
from stekker.services.partner_http import correlated

log = logging.getLogger(__name__)

#: the ID headers we echo, as ASGI spells header names
ID_HEADERS = (b"x-request-id", b"x-correlation-id")
MAX_ID_LENGTH = 255


def id_problem(value: bytes) -> str | None:
    """What is wrong with an ID header's value, or None when it can be echoed."""
    if not value.strip():
        return "is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"is longer than {MAX_ID_LENGTH} characters"
    if any(byte < 0x20 or byte > 0x7E for byte in value):
        return "has characters other than printable ASCII"
    return None


def _under_ocpi(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _ids(scope: Scope) -> tuple[list[tuple[bytes, bytes]], str | None]:
    """The ID headers to echo, and what is wrong with them (the first problem)."""
    found: list[tuple[bytes, bytes]] = []
    for name, value in scope.get("headers", ()):
        if name not in ID_HEADERS:
            continue
        label = "X-Request-ID" if name == ID_HEADERS[0] else "X-Correlation-ID"
        if any(seen == name for seen, _ in found):
            return found, f"{label} is sent more than once"
        problem = id_problem(value)
        if problem is not None:
            return found, f"{label} {problem}"
        found.append((name, value.strip()))
    return found, None


async def _answer(
    send: Send, status: int, body: dict[str, object], headers: list[tuple[bytes, bytes]]
) -> None:
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


class RequestIds:
    """Echoes the ID headers on every answer under /ocpi (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _under_ocpi(scope["path"]):
            await self.app(scope, receive, send)
            return
        echo, problem = _ids(scope)
        if problem is not None:
            # refused before the body is read or a route runs; the valid ID (if any) is echoed
            await _answer(send, 400, envelope(None, INVALID_PARAMETERS, problem), echo)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in ID_HEADERS]
                message = {**message, "headers": [*kept, *echo]}
            await send(message)

        incoming = dict(echo).get(ID_HEADERS[1])
        try:
            # what we send a partner while answering (the handshake's GETs, a command's work)
            # carries the correlation ID of the request that caused it
            with correlated(incoming.decode() if incoming else None):
                await self.app(scope, receive, sending)
        except Exception:
            if started:  # part of an answer went out: closing is all that is left
                raise
            log.exception("OCPI %s %s failed", scope.get("method"), scope["path"])
            await _answer(send, 500, envelope(None, SERVER_ERROR, "internal error; retry later"), echo)
