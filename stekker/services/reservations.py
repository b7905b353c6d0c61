"""Reservations: an EVSE held for a token until it expires, as requested and as it ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingStation
from stekker.db.models_functions import Reservation
from stekker.services.audit import station_event
from stekker.services.context import ServiceContext
from stekker.services.device_model import UnknownStation

_MAX_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """What the operator asked for: an id (None: we choose), an EVSE (None: any), a token, an expiry."""

    reservation_id: int | None
    evse_number: int | None
    token_uid: str
    expires_at: datetime


async def open_reservation(
    ctx: ServiceContext, actor: str, station_id: str, request: ReservationRequest
) -> tuple[int, int]:
    """Record the request before it is sent; returns (row id, the reservationId to send)."""
    now = ctx.now()

    async def job(db: AsyncSession) -> tuple[int, int]:
        if await db.get(ChargingStation, station_id) is None:
            raise UnknownStation(f"no station {station_id!r}")
        row = Reservation(
            station_id=station_id,
            reservation_id=request.reservation_id or 0,
            evse_number=request.evse_number,
            token_uid=request.token_uid,
            expires_at=request.expires_at,
            status="Requested",
            requested_by=actor,
            requested_at=now,
            updated_at=now,
        )
        db.add(row)
        await db.flush()
        if request.reservation_id is None:
            row.reservation_id = row.id  # unique among ours, and stable
        return row.id, row.reservation_id

    return await ctx.write(job)


async def set_row_status(ctx: ServiceContext, row_id: int, status: str) -> None:
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        row = await db.get(Reservation, row_id)
        if row is not None:
            row.status, row.updated_at = status[:32], now

    await ctx.write(job)


async def _latest(db: AsyncSession, station_id: str, reservation_id: int) -> Reservation | None:
    if not 0 < reservation_id <= _MAX_ID:
        return None  # not one of ours (ours fit 32 bits)
    query = (
        select(Reservation)
        .where(Reservation.station_id == station_id, Reservation.reservation_id == reservation_id)
        .order_by(Reservation.id.desc())
        .limit(1)
    )
    return (await db.execute(query)).scalar_one_or_none()


async def mark(ctx: ServiceContext, station_id: str, reservation_id: int, status: str) -> None:
    """The reservation ended: Cancelled by us, or Expired/Removed as the station reports."""
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        row = await _latest(db, station_id, reservation_id)
        if row is not None:
            row.status, row.updated_at = status[:32], now

    await ctx.write(job)


async def report_update(
    ctx: ServiceContext, station_id: str, reservation_id: int, status: str, detail: dict[str, Any]
) -> None:
    """A 2.0.1 ReservationStatusUpdate: on the station's timeline (with `detail`, the message as
    sent) and on the reservation."""
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        station_event(db, station_id, "reservation_status", now, **detail)
        row = await _latest(db, station_id, reservation_id)
        if row is not None:
            row.status, row.updated_at = status[:32], now

    await ctx.write(job)


async def list_reservations(ctx: ServiceContext, station_id: str, limit: int = 50) -> list[Reservation]:
    async with ctx.db() as db:
        if await db.get(ChargingStation, station_id) is None:
            raise UnknownStation(f"no station {station_id!r}")
        query = (
            select(Reservation)
            .where(Reservation.station_id == station_id)
            .order_by(Reservation.id.desc())
            .limit(limit)
        )
        return list((await db.execute(query)).scalars().all())
