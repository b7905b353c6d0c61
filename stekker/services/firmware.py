"""Firmware updates: the request, the station's answer, and its progress reports over time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingStation
from stekker.db.models_functions import FirmwareUpdate
from stekker.services.audit import station_event
from stekker.services.context import ServiceContext
from stekker.services.device_model import UnknownStation

#: Progress reports after which an update is over, for better or worse.
FINISHED = frozenset(
    {
        "Installed",
        "DownloadFailed",
        "InstallationFailed",
        "InstallVerificationFailed",
        "InvalidSignature",
    }
)
_MAX_ID = 2**31 - 1  # ids we hand out fit 32 bits; anything else cannot be ours

#: Answers to the request that mean the station took it on.
TAKEN = frozenset({"Accepted", "AcceptedCanceled"})


@dataclass(frozen=True, slots=True)
class FirmwareRequest:
    """What the operator asked for (a neutral update_firmware's arguments)."""

    location: str
    retrieve_at: datetime
    install_at: datetime | None
    signed: bool


async def open_update(ctx: ServiceContext, actor: str, station_id: str, request: FirmwareRequest) -> int:
    """Record the request before it is sent (a fast station may report progress before we
    read its answer); returns its id, the requestId the station is given."""
    now = ctx.now()

    async def job(db: AsyncSession) -> int:
        if await db.get(ChargingStation, station_id) is None:
            raise UnknownStation(f"no station {station_id!r}")
        update = FirmwareUpdate(
            station_id=station_id,
            location=request.location,
            retrieve_at=request.retrieve_at,
            install_at=request.install_at,
            signed=request.signed,
            requested_by=actor,
            requested_at=now,
            history=[],
            updated_at=now,
        )
        db.add(update)
        await db.flush()
        return update.id

    return await ctx.write(job)


async def record_answer(ctx: ServiceContext, update_id: int, answer: str) -> None:
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        update = await db.get(FirmwareUpdate, update_id)
        if update is not None:
            update.answer = answer[:32]
            update.updated_at = now

    await ctx.write(job)


async def _target(db: AsyncSession, station_id: str, request_id: int | None) -> FirmwareUpdate | None:
    if request_id is not None and 0 < request_id <= _MAX_ID:
        update = await db.get(FirmwareUpdate, request_id)
        if update is not None and update.station_id == station_id:
            return update
    # 1.6 sends no requestId: the latest update of the station still under way
    query = (
        select(FirmwareUpdate)
        .where(
            FirmwareUpdate.station_id == station_id,
            or_(FirmwareUpdate.answer.is_(None), FirmwareUpdate.answer.in_(TAKEN)),
            or_(FirmwareUpdate.status.is_(None), FirmwareUpdate.status.not_in(FINISHED)),
        )
        .order_by(FirmwareUpdate.id.desc())
        .limit(1)
    )
    return (await db.execute(query)).scalar_one_or_none()


async def report_status(
    ctx: ServiceContext, station_id: str, status: str, request_id: int | None, detail: dict[str, Any]
) -> None:
    """A FirmwareStatusNotification: kept on the station's timeline (with `detail`, the message
    as sent) and, when it belongs to an update we requested, as that update's progress."""
    now = ctx.now()

    async def job(db: AsyncSession) -> int | None:
        update = await _target(db, station_id, request_id)
        attached = {} if update is None else {"update_id": update.id}
        station_event(db, station_id, "firmware_status", now, **detail, **attached)
        if update is None:
            return None
        update.status = status
        update.history = [*update.history, {"status": status, "at": now.isoformat()}]
        update.updated_at = now
        return update.id

    update_id = await ctx.write(job)
    await ctx.bus.publish(
        Event("station.firmware_status", {"station_id": station_id, "status": status, "update_id": update_id})
    )


async def list_updates(ctx: ServiceContext, station_id: str, limit: int = 50) -> list[FirmwareUpdate]:
    """The station's firmware updates, newest first."""
    async with ctx.db() as db:
        if await db.get(ChargingStation, station_id) is None:
            raise UnknownStation(f"no station {station_id!r}")
        query = (
            select(FirmwareUpdate)
            .where(FirmwareUpdate.station_id == station_id)
            .order_by(FirmwareUpdate.id.desc())
            .limit(limit)
        )
        return list((await db.execute(query)).scalars().all())
