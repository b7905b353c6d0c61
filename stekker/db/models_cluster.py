"""Tables of the cluster (issue 18): what a process keeps in PostgreSQL while Redis is away."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String, false
from sqlalchemy.orm import Mapped, mapped_column

from stekker.db.base import Base, utcnow
from stekker.db.models import BigId


class EventBacklog(Base):
    """An event published while Redis could not be reached, waiting to be put on the stream.

    The bus (`stekker.bus.streams.StreamBus`) writes a row here in its own small transaction
    when Redis refuses or times out, so a committed fact is never lost for the consumer
    groups (CDR building, OCPI pushes) that must handle every event once. A relay task in any
    process puts the rows on the stream again, oldest first (`id` order), and deletes what it
    sent; rows are claimed with `FOR UPDATE SKIP LOCKED`, so two processes never relay one row.

    `topic`, `data` and `at` are the event as published; `node` is the process that published
    it, and `fanned` says that process already gave it to its own fan-out listeners (they must
    not see it twice when it comes back through the stream); `created` is when it was kept.
    """

    __tablename__ = "event_backlog"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]]
    at: Mapped[datetime]
    node: Mapped[str] = mapped_column(String(100))
    fanned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created: Mapped[datetime] = mapped_column(default=utcnow)
