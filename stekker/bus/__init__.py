"""Event bus: what happened, fanned out to whoever listens (OCPI push, open data, notifications)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from stekker.db.base import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """A fact the system announces after it is committed, e.g. `session.started`."""

    topic: str
    data: dict[str, Any]
    at: datetime = field(default_factory=utcnow)


Handler = Callable[[Event], Awaitable[None]]


class EventBus(Protocol):
    """Publish committed facts; subscribe by topic prefix ("" receives everything).

    Two kinds of subscriber:
    - fan-out (`group=None`): every process that subscribed sees every event (caches, live
      pages, waiters on a station's answer). Best effort across a Redis outage.
    - a consumer group (`group="cdr"`, ...): work that must be done once per event in the whole
      cluster. Across processes (stekker.bus.streams) each event goes to one member of the
      group, is acknowledged only after the handler returned, and is handed to another member
      when its process dies; a handler that raises gets the event again later. Handlers must
      therefore be idempotent. In one process both kinds are the same.
    """

    async def publish(self, event: Event) -> None: ...

    def subscribe(self, prefix: str, handler: Handler, *, group: str | None = None) -> Callable[[], None]: ...


class InProcessBus:
    """The single-process bus: handlers run as tasks so a slow listener never delays a station."""

    def __init__(self) -> None:
        self._handlers: list[tuple[str, Handler]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self, event: Event) -> None:
        for prefix, handler in list(self._handlers):
            if event.topic.startswith(prefix):
                task = asyncio.create_task(self._deliver(handler, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def subscribe(self, prefix: str, handler: Handler, *, group: str | None = None) -> Callable[[], None]:
        # one process: a group has one member, so it is a plain subscriber
        entry = (prefix, handler)
        self._handlers.append(entry)
        return lambda: self._handlers.remove(entry)

    # the same life cycle as the cluster's StreamBus (stekker.bus.streams), so the app treats both alike
    async def start(self) -> None:
        """Nothing to connect in one process."""

    async def stop(self) -> None:
        """Nothing to close; handlers still running finish on their own."""

    async def refresh_metrics(self) -> None:
        """No stream, no backlog: the gauges stay at zero."""

    @staticmethod
    async def _deliver(handler: Handler, event: Event) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("event handler failed for %s", event.topic)
