"""Where the stream bus keeps events while Redis is away, until a relay can send them.

In a cluster the events are rows of `event_backlog` (PostgreSQL), each written in its own
small transaction, so they survive this process and any process can relay them. Without a
database (unit tests), or when the database refuses too, they wait in a bounded deque in
memory: better than losing them at once, but gone if the process stops (logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stekker.db.models_cluster import EventBacklog

log = logging.getLogger(__name__)

# One relay at a time on PostgreSQL, so the stream gets the rows in their order even when
# several processes relay ("STKEVB": any constant; one database is one installation).
_RELAY_LOCK = 0x53544B455642
# A database that does not answer within this long: keep the event in memory instead, so a
# station's frame is not held up by two outages at once.
KEEP_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Kept:
    """An event waiting to be sent: its data already JSON-safe (as the stream would carry it)."""

    topic: str
    data: dict[str, Any]
    at: datetime
    node: str
    fanned: bool


Send = Callable[[list[Kept]], Awaitable[None]]


class Backlog:
    """Events kept while Redis is away: `keep` one, `relay` them all (oldest first) through `send`.

    `send` must raise when it could not send the whole batch: the batch then stays (rows are
    deleted only in the transaction that sent them), and may be sent again later, so a consumer
    can see an event twice across an outage, never zero times.
    """

    def __init__(
        self, db: async_sessionmaker[AsyncSession] | None, *, memory_limit: int = 100_000, batch: int = 200
    ) -> None:
        self._db = db
        self._memory: deque[Kept] = deque()
        self._memory_limit = memory_limit
        self._batch = batch
        self.dropped = 0
        self._db_failing = False

    async def keep(self, item: Kept) -> None:
        """Keep one event; never raises."""
        if self._db is not None:
            try:
                async with asyncio.timeout(KEEP_TIMEOUT):  # not wait_for: see stekker.bus.streams
                    await self._insert(item)
                if self._db_failing:
                    log.warning("event backlog: the database takes kept events again")
                self._db_failing = False
                return
            except Exception as exc:  # the database is away too: memory is what is left
                if not self._db_failing:
                    log.error("event backlog: the database refused an event (%s); keeping in memory", exc)
                self._db_failing = True
        if len(self._memory) >= self._memory_limit:
            lost = self._memory.popleft()
            self.dropped += 1
            log.error(
                "event backlog full (%d in memory): event %s of %s lost",
                self._memory_limit,
                lost.topic,
                lost.at,
            )
        self._memory.append(item)

    async def _insert(self, item: Kept) -> None:
        assert self._db is not None
        async with self._db() as session, session.begin():
            session.add(
                EventBacklog(topic=item.topic, data=item.data, at=item.at, node=item.node, fanned=item.fanned)
            )

    async def size(self) -> int:
        """Events waiting (database rows and memory); the database part is skipped when it fails."""
        count = len(self._memory)
        if self._db is not None:
            try:
                async with self._db() as session:
                    count += int((await session.execute(select(func.count(EventBacklog.id)))).scalar_one())
            except Exception as exc:
                log.debug("event backlog size unknown: %s", exc)
        return count

    @property
    def in_memory(self) -> int:
        return len(self._memory)

    async def relay(self, send: Send) -> int:
        """Send every kept event, oldest first, deleting what was sent; returns how many.
        Raises what `send` raises (Redis away again): what was not sent stays."""
        sent = 0
        if self._db is not None:
            while True:
                done = await self._relay_rows(send)
                if done == 0:
                    break
                sent += done
        while self._memory:
            batch = [self._memory[i] for i in range(min(self._batch, len(self._memory)))]
            await send(batch)
            for _ in batch:
                self._memory.popleft()
            sent += len(batch)
        return sent

    async def _relay_rows(self, send: Send) -> int:
        assert self._db is not None
        async with self._db() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                took = await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _RELAY_LOCK})
                if not took.scalar_one():
                    return 0  # another process relays right now; it sends these too
            rows = (
                (
                    await session.execute(
                        select(EventBacklog)
                        .order_by(EventBacklog.id)
                        .limit(self._batch)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            if not rows:
                return 0
            await send([Kept(r.topic, r.data, r.at, r.node, r.fanned) for r in rows])
            await session.execute(delete(EventBacklog).where(EventBacklog.id.in_([r.id for r in rows])))
            return len(rows)
