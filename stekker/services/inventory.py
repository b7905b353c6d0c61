"""Registering charging stations: what an operator does before a station first connects."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingStation
from stekker.domain.passwords import hash_password
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.stations import ensure_connector, ensure_evse


class StationExists(ValueError):
    """A station with that id is already registered."""


@dataclass(frozen=True, slots=True)
class StationInput:
    station_id: str
    password: str | None = None
    evse_count: int = 0
    location_id: int | None = None
    registration_status: str = "Accepted"


async def register_station(ctx: ServiceContext, actor: str, data: StationInput) -> ChargingStation:
    password_hash = None if data.password is None else hash_password(data.password)

    async def job(db: AsyncSession) -> ChargingStation:
        if await db.get(ChargingStation, data.station_id) is not None:
            raise StationExists(f"station {data.station_id!r} is already registered")
        station = ChargingStation(
            id=data.station_id,
            password_hash=password_hash,
            location_id=data.location_id,
            registration_status=data.registration_status,
            created_at=ctx.now(),
        )
        db.add(station)
        await db.flush()
        for number in range(1, data.evse_count + 1):
            await ensure_connector(db, await ensure_evse(db, ctx, data.station_id, number), 1)
        audit(
            db,
            actor=actor,
            action="station.registered",
            object_type="station",
            object_id=data.station_id,
            at=ctx.now(),
            evse_count=data.evse_count,
            with_password=data.password is not None,
        )
        return station

    station = await ctx.write(job)
    await ctx.bus.publish(Event("station.registered", {"station_id": data.station_id}))
    return station
