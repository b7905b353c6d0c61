"""Live updates of console pages over Server-Sent Events, driven by the event bus.

The browser opens one EventSource per page (`/console/events`, static/live.js) and hears
*what kind* of thing changed: `station` (connected, disconnected, a status) or `session`
(started, stopped, meter values). Elements that show such data refresh themselves with htmx
(`hx-trigger="stekker:station from:body"`), so a page decides what to reload and the
stream carries no data that would need its own role check. Changes are coalesced per client
(at most one message per kind per `COALESCE` seconds), so a fleet of 10,000 stations sending
status bursts costs a browser a refresh a second, not thousands.

A stream ends after `MAX_STREAM_SECONDS` (the browser reconnects at once), so a session that
was revoked stops hearing within that time and a shutdown never waits long for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from stekker.bus import Event, EventBus

COALESCE = 0.5
HEARTBEAT = 15.0
MAX_STREAM_SECONDS = 300.0
MAX_CLIENTS = 500
KINDS = ("station", "session")


class _Client:
    __slots__ = ("pending", "wake")

    def __init__(self) -> None:
        self.pending: set[str] = set()
        self.wake = asyncio.Event()


class Live:
    """The fan-out of bus events to the console's SSE clients in this process."""

    def __init__(self, bus: EventBus) -> None:
        self._clients: set[_Client] = set()
        self._closed = asyncio.Event()
        self._unsubscribe = [bus.subscribe(f"{kind}.", self._on_event) for kind in KINDS]

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def _on_event(self, event: Event) -> None:
        kind = event.topic.split(".", 1)[0]
        for client in self._clients:
            client.pending.add(kind)
            client.wake.set()

    def close(self) -> None:
        """End every stream (shutdown) and stop listening."""
        self._closed.set()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for client in self._clients:
            client.wake.set()

    async def stream(
        self, request: Request, *, max_seconds: float = MAX_STREAM_SECONDS
    ) -> AsyncIterator[bytes]:
        client = _Client()
        self._clients.add(client)
        loop = asyncio.get_running_loop()
        ends = loop.time() + max_seconds
        try:
            yield b"retry: 2000\n: connected\n\n"
            while not self._closed.is_set():
                left = ends - loop.time()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.wake.wait(), min(HEARTBEAT, left))
                if self._closed.is_set() or await request.is_disconnected():
                    break
                if not client.wake.is_set():
                    yield b": ping\n\n"
                    continue
                await asyncio.sleep(COALESCE)  # let a burst of changes collect into one message
                kinds, client.pending = sorted(client.pending), set()
                client.wake.clear()
                for kind in kinds:
                    yield f"event: {kind}\ndata: {kind}\n\n".encode()
        finally:
            self._clients.discard(client)


def live(request: Request) -> Live:
    """This app's fan-out (made on first use, listening to the app's bus)."""
    state = request.app.state
    found: Live | None = getattr(state, "console_live", None)
    if found is None:
        found = state.console_live = Live(request.app.state.ctx.bus)
    return found


def stop(app: Any) -> None:
    """End the console's live streams (call at shutdown, before the HTTP server stops: an open
    stream would otherwise hold it open until its time runs out)."""
    found: Live | None = getattr(app.state, "console_live", None)
    if found is not None:
        found.close()
