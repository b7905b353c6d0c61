"""Write the audit log and station events inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import AuditEntry, StationEvent

if TYPE_CHECKING:
    from stekker.services.context import ServiceContext


def audit(
    db: AsyncSession,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    at: datetime,
    result: str = "ok",
    **detail: Any,
) -> None:
    db.add(
        AuditEntry(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            result=result,
            detail=detail,
            occurred_at=at,
        )
    )


def station_event(db: AsyncSession, station_id: str, kind: str, at: datetime, **detail: Any) -> None:
    db.add(StationEvent(station_id=station_id, kind=kind, detail=detail, occurred_at=at))


async def record_audit(
    ctx: ServiceContext,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    result: str = "ok",
    **detail: Any,
) -> None:
    """An audit entry in a transaction of its own (for outcomes learnt after the change)."""
    at = ctx.now()

    async def job(db: AsyncSession) -> None:
        audit(
            db,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            at=at,
            result=result,
            **detail,
        )

    await ctx.write(job)


async def record_station_event(ctx: ServiceContext, station_id: str, kind: str, **detail: Any) -> None:
    """A station event in a transaction of its own."""
    at = ctx.now()

    async def job(db: AsyncSession) -> None:
        station_event(db, station_id, kind, at, **detail)

    await ctx.write(job)
