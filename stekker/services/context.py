"""What every service function needs, passed explicitly: database, bus, clock, command port."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stekker.bus import EventBus
from stekker.config import Settings
from stekker.db.base import utcnow
from stekker.services.ports import CommandPort


@dataclass
class ServiceContext:
    """The dependencies of the service layer, injected so tests can swap clock and port."""

    settings: Settings
    db: async_sessionmaker[AsyncSession]
    bus: EventBus
    commands: CommandPort | None = None
    clock: Callable[[], datetime] = field(default=utcnow)

    def now(self) -> datetime:
        return self.clock()
