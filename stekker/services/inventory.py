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


class InvalidSecurityProfile(ValueError):
    """A security profile that is not 0..3, or does not fit the credentials given with it."""


@dataclass(frozen=True, slots=True)
class StationInput:
    station_id: str
    password: str | None = None
    evse_count: int = 0
    location_id: int | None = None
    registration_status: str = "Accepted"
    security_profile: int | None = None  # the lowest OCPP security profile it may connect at


def security_profile_problem(profile: int | None, has_password: bool) -> str | None:
    """What is wrong with this profile for a station with (or without) a password, or None.

    Profiles 1 and 2 authenticate with the Basic-auth password, so they need one; 0 means no
    authentication, so a password would be a contradiction; 3 authenticates with the client
    certificate (a password is allowed, for falling back to 2 by changing the profile)."""
    if profile is None:
        return None
    if not 0 <= profile <= 3:
        return f"security_profile must be 0, 1, 2 or 3 (OCPP security profiles), not {profile}"
    if profile in (1, 2) and not has_password:
        return f"security profile {profile} authenticates with a password: give one"
    if profile == 0 and has_password:
        return "security profile 0 means no authentication: leave the password out, or use profile 1 or 2"
    return None


async def register_station(ctx: ServiceContext, actor: str, data: StationInput) -> ChargingStation:
    problem = security_profile_problem(data.security_profile, data.password is not None)
    if problem is not None:
        raise InvalidSecurityProfile(problem)
    password_hash = None if data.password is None else hash_password(data.password)

    async def job(db: AsyncSession) -> ChargingStation:
        if await db.get(ChargingStation, data.station_id) is not None:
            raise StationExists(f"station {data.station_id!r} is already registered")
        station = ChargingStation(
            id=data.station_id,
            password_hash=password_hash,
            location_id=data.location_id,
            registration_status=data.registration_status,
            security_profile=data.security_profile,
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
            security_profile=data.security_profile,
        )
        return station

    station = await ctx.write(job)
    await ctx.bus.publish(Event("station.registered", {"station_id": data.station_id}))
    return station
