"""Write the audit log and station events inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import AuditEntry, StationEvent


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
