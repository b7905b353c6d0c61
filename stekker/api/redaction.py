"""Every JSON answer of the operator API passes the privacy policy (`stekker.services.redaction`)
on its way out: for the municipality and read-only roles token uids, contract ids and idTags
(also inside logged OCPP frames) become pseudonyms, and for everyone the secret of a diagnostics
upload URL becomes a marker.

Applied once, here, rather than in each endpoint: an endpoint added later cannot forget it. The
caller's role is what `deps.authenticate` found (it leaves the caller in the request state); a
request that never got that far (401, 422 on the path) is masked as for the least trusted role.
Streams (CSV, exports, live events) are not JSON and pass untouched; they apply the policy
themselves (the export pseudonymises by role).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stekker.db.models_users import Role
from stekker.services import redaction

PREFIX = "/api/"


def _json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/json"
    return False


async def _redacted(scope: Scope, body: bytes) -> bytes:
    caller = scope.get("state", {}).get("caller")
    role: Role = caller.role if caller is not None else Role.READ_ONLY
    if redaction.sees_identifiers(role) and b"/upload/diagnostics/" not in body:
        return body  # the common case costs a substring search
    try:
        value: Any = json.loads(body)
    except ValueError:
        return body
    redactor = await redaction.redactor_for(scope["app"].state.ctx, role)
    return json.dumps(redactor.value(value), ensure_ascii=False, separators=(",", ":")).encode()


class RedactResponses:
    """ASGI middleware: buffers a JSON answer under /api/, applies the policy, sends it on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX) or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if _json(list(message.get("headers", []))):
                    start = message
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = await _redacted(scope, b"".join(chunks))
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, capture)
