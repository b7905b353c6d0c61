"""What every service function needs, passed explicitly: database, bus, clock, command port."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stekker.bus import EventBus
from stekker.cluster.leases import Leases, LocalLeases
from stekker.cluster.node import NodeInfo
from stekker.cluster.redis_link import Keys
from stekker.config import Settings
from stekker.db.base import utcnow
from stekker.db.writer import GroupCommitWriter, run_in_transaction
from stekker.domain.sampling import Sampler
from stekker.domain.storage_budget import StorageBudget
from stekker.services.credentials import CredentialCache
from stekker.services.directory import ConnectorDirectory
from stekker.services.ports import CommandPort

T = TypeVar("T")


@dataclass
class ServiceContext:
    """The dependencies of the service layer, injected so tests can swap clock and port."""

    settings: Settings
    db: async_sessionmaker[AsyncSession]
    bus: EventBus
    commands: CommandPort | None = None
    clock: Callable[[], datetime] = field(default=utcnow)
    writer: GroupCommitWriter | None = None
    directory: ConnectorDirectory = field(default_factory=ConnectorDirectory)
    credentials: CredentialCache = field(default_factory=CredentialCache)
    storage: StorageBudget = field(default_factory=StorageBudget)  # what each station made us store
    refusals: Sampler = field(default_factory=lambda: Sampler(timedelta(minutes=1)))  # refused handshakes
    _limiters: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    # the cluster (stekker.cluster): who this process is, and the Redis client when
    # STEKKER_REDIS_URL is set (None: one process, everything in memory is the truth)
    node: NodeInfo = field(default_factory=NodeInfo.single)
    redis: Redis | None = None
    keys: Keys = field(default_factory=Keys)
    leases: Leases = field(default_factory=LocalLeases)

    @property
    def clustered(self) -> bool:
        """True when other processes may share the work (Redis configured)."""
        return self.redis is not None

    def now(self) -> datetime:
        return self.clock()

    def limiter(self, name: str, concurrency: int) -> asyncio.Semaphore:
        """A process-wide bound on concurrent background work of one kind."""
        semaphore = self._limiters.get(name)
        if semaphore is None:
            semaphore = self._limiters[name] = asyncio.Semaphore(concurrency)
        return semaphore

    async def write(self, job: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run a write job in a committed transaction (group-committed when a writer runs).

        Every state change goes through here, so on SQLite there is one writer at a time.
        """
        if self.writer is None:
            return await run_in_transaction(self.db, job)
        return await self.writer.run(job)
