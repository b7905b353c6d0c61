"""The operator's inventory: locations, stations, EVSEs, connectors and groups.

Every change is a service function (check → one transaction → change → audit → event);
the rules on values live in stekker.domain.inventory_rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import (
    ChargingSession,
    ChargingStation,
    Connector,
    Evse,
    Location,
    StationGroup,
    StationGroupMember,
)
from stekker.domain import inventory_rules as rules
from stekker.domain.identifiers import evse_emi3_id
from stekker.domain.passwords import hash_password
from stekker.domain.station_auth import (
    NO_AUTHENTICATION_PROFILE,
    Authentication,
    authentication_of,
    missing_credentials_problem,
)
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
    # the operator's explicit choice to let it connect without credentials (profile 0)
    no_authentication: bool = False


def credentials_of(
    security_profile: int | None, has_password: bool, no_authentication: bool = False
) -> int | None:
    """The profile to store for a station with these credentials, after every check: profile 0
    for "no authentication" (which must come without a password and another profile); raises
    InvalidSecurityProfile when the profile does not fit the password, or the station would have
    no credentials without the explicit choice (`stekker.domain.station_auth`)."""
    if no_authentication:
        if has_password or security_profile not in (None, NO_AUTHENTICATION_PROFILE):
            raise InvalidSecurityProfile(
                'authentication "none" means no password and no security profile above 0: '
                "leave them out, or drop authentication none"
            )
        security_profile = NO_AUTHENTICATION_PROFILE
    problem = security_profile_problem(security_profile, has_password) or missing_credentials_problem(
        security_profile, has_password
    )
    if problem is not None:
        raise InvalidSecurityProfile(problem)
    return security_profile


def audit_no_authentication(db: AsyncSession, ctx: ServiceContext, actor: str, station_id: str) -> None:
    """The choice to run a station without authentication gets an audit entry of its own, so
    an auditor finds every such decision under one action name."""
    audit(
        db,
        actor=actor,
        action="station.authentication_none",
        object_type="station",
        object_id=station_id,
        at=ctx.now(),
        risk="anyone who knows the station id can connect as this station",
    )


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
    """Register a station so it may connect: with a password, a certificate (profile 3) or,
    chosen explicitly and audited, no authentication."""
    profile = credentials_of(data.security_profile, data.password is not None, data.no_authentication)
    password_hash = None if data.password is None else hash_password(data.password)

    async def job(db: AsyncSession) -> ChargingStation:
        if await db.get(ChargingStation, data.station_id) is not None:
            raise StationExists(f"station {data.station_id!r} is already registered")
        await _usable_location(db, data.location_id)
        station = ChargingStation(
            id=data.station_id,
            password_hash=password_hash,
            location_id=data.location_id,
            registration_status=data.registration_status,
            security_profile=profile,
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
            security_profile=profile,
            authentication=authentication_of(profile, data.password is not None).value,
        )
        if profile == NO_AUTHENTICATION_PROFILE:
            audit_no_authentication(db, ctx, actor, data.station_id)
        return station

    station = await ctx.write(job)
    await ctx.bus.publish(Event("station.registered", {"station_id": data.station_id}))
    return station


# --- shared -----------------------------------------------------------------------------


class InventoryNotFound(LookupError):
    """A location, station, EVSE, connector or group that does not exist."""


class InventoryConflict(ValueError):
    """A change that clashes with what exists (a duplicate, something still in use)."""


class InvalidInventory(ValueError):
    """A value that breaks an inventory rule (see stekker.domain.inventory_rules)."""


def jsonable(value: Any) -> Any:
    """A value as the audit log's JSON column and the import report can hold it."""
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value.to_integral() else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def apply_changes(obj: Any, changes: dict[str, Any]) -> dict[str, list[Any]]:
    """Set the attributes that differ; return {field: [old, new]} of what changed."""
    changed: dict[str, list[Any]] = {}
    for name, new in changes.items():
        old = getattr(obj, name)
        if old != new:
            changed[name] = [jsonable(old), jsonable(new)]
            setattr(obj, name, new)
    return changed


# --- locations ----------------------------------------------------------------------------

LOCATION_FIELDS = (
    "name",
    "address",
    "city",
    "postal_code",
    "country",
    "latitude",
    "longitude",
    "time_zone",
    "opening_times",
)


def location_problems(fields: dict[str, Any]) -> list[str]:
    """What is wrong with these location fields (only the ones given are checked)."""
    problems: list[str] = []
    checks: list[tuple[str, Callable[[Any], str | None]]] = [
        ("country", rules.country_problem),
        ("time_zone", rules.time_zone_problem),
        ("latitude", lambda v: rules.coordinate_problem("latitude", v, 90)),
        ("longitude", lambda v: rules.coordinate_problem("longitude", v, 180)),
        ("opening_times", lambda v: None if v is None else rules.opening_times_problem(v)),
    ]
    for name, check in checks:
        if name in fields:
            problem = check(fields[name])
            if problem is not None:
                problems.append(problem)
    for name in ("name", "address", "city"):
        if name in fields and not str(fields[name] or "").strip():
            problems.append(f"{name} must not be empty")
    return problems


def _check_location(fields: dict[str, Any]) -> None:
    problems = location_problems(fields)
    if problems:
        raise InvalidInventory("; ".join(problems))


async def _location(db: AsyncSession, location_id: int) -> Location:
    location = await db.get(Location, location_id)
    if location is None:
        raise InventoryNotFound(f"no location {location_id}")
    return location


async def create_location(ctx: ServiceContext, actor: str, fields: dict[str, Any]) -> Location:
    _check_location(fields)
    missing = [f for f in ("name", "address", "city", "latitude", "longitude") if fields.get(f) is None]
    if missing:
        raise InvalidInventory(f"a location needs {', '.join(missing)}")

    async def job(db: AsyncSession) -> Location:
        now = ctx.now()
        location = Location(**{k: v for k, v in fields.items() if k in LOCATION_FIELDS})
        location.created_at = location.updated_at = now
        db.add(location)
        await db.flush()
        audit(
            db,
            actor=actor,
            action="location.created",
            object_type="location",
            object_id=location.id,
            at=now,
            **{k: jsonable(v) for k, v in fields.items()},
        )
        return location

    location = await ctx.write(job)
    await ctx.bus.publish(Event("location.changed", {"location_id": location.id}))
    return location


async def update_location(
    ctx: ServiceContext, actor: str, location_id: int, changes: dict[str, Any]
) -> Location:
    _check_location(changes)
    for name in ("name", "address", "city", "latitude", "longitude", "country", "time_zone"):
        if name in changes and changes[name] is None:
            raise InvalidInventory(f"{name} cannot be cleared")

    async def job(db: AsyncSession) -> Location:
        location = await _location(db, location_id)
        changed = apply_changes(location, {k: v for k, v in changes.items() if k in LOCATION_FIELDS})
        if changed:
            location.updated_at = ctx.now()
            audit(
                db,
                actor=actor,
                action="location.updated",
                object_type="location",
                object_id=location_id,
                at=ctx.now(),
                changes=changed,
            )
        return location

    location = await ctx.write(job)
    await ctx.bus.publish(Event("location.changed", {"location_id": location_id}))
    return location


async def set_location_retired(ctx: ServiceContext, actor: str, location_id: int, retired: bool) -> Location:
    """Retire (or bring back) a location. A location with stations in service cannot retire:
    move or retire them first, so no live station points at a retired place."""

    async def job(db: AsyncSession) -> Location:
        location = await _location(db, location_id)
        if retired and location.retired_at is None:
            active = await db.scalar(
                select(func.count())
                .select_from(ChargingStation)
                .where(ChargingStation.location_id == location_id, ChargingStation.retired_at.is_(None))
            )
            if active:
                raise InventoryConflict(
                    f"location {location_id} still has {active} station(s) in service: "
                    "move or retire them first"
                )
            location.retired_at = ctx.now()
        elif not retired and location.retired_at is not None:
            location.retired_at = None
        else:
            return location  # already so: nothing to audit
        audit(
            db,
            actor=actor,
            action="location.retired" if retired else "location.unretired",
            object_type="location",
            object_id=location_id,
            at=ctx.now(),
        )
        return location

    location = await ctx.write(job)
    await ctx.bus.publish(Event("location.changed", {"location_id": location_id}))
    return location


async def _usable_location(db: AsyncSession, location_id: int | None) -> None:
    if location_id is None:
        return
    location = await db.get(Location, location_id)
    if location is None:
        raise InventoryNotFound(f"no location {location_id}")
    if location.retired_at is not None:
        raise InventoryConflict(f"location {location_id} is retired")


# --- stations -------------------------------------------------------------------------------

STATION_FIELDS = ("location_id", "registration_status", "security_profile", "password", "notes")


async def _station(db: AsyncSession, station_id: str) -> ChargingStation:
    station = await db.get(ChargingStation, station_id)
    if station is None:
        raise InventoryNotFound(f"no station {station_id!r}")
    return station


async def update_station(
    ctx: ServiceContext, actor: str, station_id: str, changes: dict[str, Any]
) -> ChargingStation:
    """Change what the operator sets on a station. `password` rotates the Basic-auth secret
    (None removes it); the security profile must fit the credentials the station ends with,
    and it must end with some, unless `authentication` is "none" (the explicit choice)."""
    new_hash: str | None = None
    if changes.get("password") is not None:
        new_hash = await asyncio.to_thread(hash_password, changes["password"])  # scrypt: off the loop

    async def job(db: AsyncSession) -> ChargingStation:
        station = await _station(db, station_id)
        if "location_id" in changes and changes["location_id"] != station.location_id:
            await _usable_location(db, changes["location_id"])
        has_password = station.password_hash is not None
        if "password" in changes:
            has_password = changes["password"] is not None
        profile = changes.get("security_profile", station.security_profile)
        was_none = authentication_of(station.security_profile, station.password_hash is not None)
        plain = {k: v for k, v in changes.items() if k in STATION_FIELDS and k != "password"}
        if {"password", "security_profile", "authentication"} & changes.keys():
            # only a change of credentials is checked: a legacy station may still get notes
            profile = credentials_of(profile, has_password, changes.get("authentication") == "none")
            plain["security_profile"] = profile
        changed = apply_changes(station, plain)
        if "password" in changes:
            if changes["password"] is None and station.password_hash is not None:
                station.password_hash = None
                changed["password"] = ["(set)", "(removed)"]
            elif new_hash is not None:
                changed["password"] = ["(set)" if station.password_hash else None, "(changed)"]
                station.password_hash = new_hash
        if changed:
            audit(
                db,
                actor=actor,
                action="station.updated",
                object_type="station",
                object_id=station_id,
                at=ctx.now(),
                changes=changed,
            )
            if profile == NO_AUTHENTICATION_PROFILE and was_none is not Authentication.NONE:
                audit_no_authentication(db, ctx, actor, station_id)
        return station

    station = await ctx.write(job)
    await ctx.bus.publish(Event("station.changed", {"station_id": station_id}))
    return station


async def set_station_retired(
    ctx: ServiceContext, actor: str, station_id: str, retired: bool
) -> ChargingStation:
    """Retire a station (refused at its next connect, left out of lists and selections) or
    bring it back. Its sessions and history stay."""

    async def job(db: AsyncSession) -> ChargingStation:
        station = await _station(db, station_id)
        if retired == (station.retired_at is not None):
            return station
        station.retired_at = ctx.now() if retired else None
        audit(
            db,
            actor=actor,
            action="station.retired" if retired else "station.unretired",
            object_type="station",
            object_id=station_id,
            at=ctx.now(),
        )
        return station

    station = await ctx.write(job)
    await ctx.bus.publish(
        Event("station.retired" if retired else "station.unretired", {"station_id": station_id})
    )
    return station


# --- EVSEs and connectors ------------------------------------------------------------------

CONNECTOR_FIELDS = ("standard", "format", "power_type", "max_voltage", "max_amperage", "max_electric_power")


def _check_connector(fields: dict[str, Any]) -> None:
    problems = [p for k, v in fields.items() if (p := rules.connector_problem(k, v)) is not None]
    if problems:
        raise InvalidInventory("; ".join(problems))


async def _evse(db: AsyncSession, station_id: str, evse_number: int) -> Evse:
    evse = await db.scalar(select(Evse).where(Evse.station_id == station_id, Evse.evse_number == evse_number))
    if evse is None:
        await _station(db, station_id)
        raise InventoryNotFound(f"station {station_id!r} has no EVSE {evse_number}")
    return evse


async def _free_evse_id(db: AsyncSession, evse_id: str, own_pk: int | None) -> None:
    holder = await db.scalar(select(Evse).where(Evse.evse_id == evse_id))
    if holder is not None and holder.id != own_pk:
        raise InventoryConflict(f"EVSE id {evse_id} is already used by station {holder.station_id!r}")


def _checked_evse_id(evse_id: str) -> str:
    value = rules.normalise_evse_id(evse_id)
    problem = rules.evse_id_problem(value)
    if problem is not None:
        raise InvalidInventory(problem)
    return value


async def add_evse(
    ctx: ServiceContext,
    actor: str,
    station_id: str,
    evse_number: int,
    evse_id: str | None = None,
    connectors: list[dict[str, Any]] | None = None,
) -> Evse:
    """Register an EVSE before the station reports it. Without `evse_id` it gets the generated
    eMI3 id; without connectors, one connector with the default (Type 2 socket, 3-phase AC)."""
    public_id = None if evse_id is None else _checked_evse_id(evse_id)
    specs = connectors or [{"connector_number": 1}]
    for spec in specs:
        _check_connector({k: v for k, v in spec.items() if k in CONNECTOR_FIELDS})

    async def job(db: AsyncSession) -> Evse:
        await _station(db, station_id)
        exists = await db.scalar(
            select(Evse.id).where(Evse.station_id == station_id, Evse.evse_number == evse_number)
        )
        if exists is not None:
            raise InventoryConflict(f"station {station_id!r} already has EVSE {evse_number}")
        chosen = public_id or evse_emi3_id(ctx.settings.evse_id_prefix, station_id, evse_number)
        await _free_evse_id(db, chosen, None)
        evse = Evse(station_id=station_id, evse_number=evse_number, evse_id=chosen, created_at=ctx.now())
        db.add(evse)
        await db.flush()
        for spec in specs:
            db.add(Connector(evse_id=evse.id, **{k: v for k, v in spec.items() if v is not None}))
        audit(
            db,
            actor=actor,
            action="evse.added",
            object_type="station",
            object_id=station_id,
            at=ctx.now(),
            evse_number=evse_number,
            evse_id=chosen,
            connectors=[s.get("connector_number", 1) for s in specs],
        )
        return evse

    evse = await ctx.write(job)
    ctx.directory.forget(station_id)
    await ctx.bus.publish(Event("station.changed", {"station_id": station_id}))
    return evse


async def update_evse(
    ctx: ServiceContext, actor: str, station_id: str, evse_number: int, evse_id: str
) -> Evse:
    public_id = _checked_evse_id(evse_id)

    async def job(db: AsyncSession) -> Evse:
        evse = await _evse(db, station_id, evse_number)
        await _free_evse_id(db, public_id, evse.id)
        changed = apply_changes(evse, {"evse_id": public_id})
        if changed:
            audit(
                db,
                actor=actor,
                action="evse.updated",
                object_type="station",
                object_id=station_id,
                at=ctx.now(),
                evse_number=evse_number,
                changes=changed,
            )
        return evse

    evse = await ctx.write(job)
    await ctx.bus.publish(Event("station.changed", {"station_id": station_id}))
    return evse


async def remove_evse(ctx: ServiceContext, actor: str, station_id: str, evse_number: int) -> None:
    """Remove an EVSE registered by mistake. One with sessions stays (they are history):
    retire the station instead. A station that reports it again gets it back by default."""

    async def job(db: AsyncSession) -> None:
        evse = await _evse(db, station_id, evse_number)
        used = await db.scalar(
            select(func.count()).select_from(ChargingSession).where(ChargingSession.evse_pk == evse.id)
        )
        if used:
            raise InventoryConflict(
                f"EVSE {evse_number} of station {station_id!r} has {used} session(s) on record and stays"
            )
        await db.delete(evse)
        audit(
            db,
            actor=actor,
            action="evse.removed",
            object_type="station",
            object_id=station_id,
            at=ctx.now(),
            evse_number=evse_number,
            evse_id=evse.evse_id,
        )

    await ctx.write(job)
    ctx.directory.forget(station_id)
    await ctx.bus.publish(Event("station.changed", {"station_id": station_id}))


async def _connector(db: AsyncSession, station_id: str, evse_number: int, connector_number: int) -> Connector:
    evse = await _evse(db, station_id, evse_number)
    connector = await db.scalar(
        select(Connector).where(Connector.evse_id == evse.id, Connector.connector_number == connector_number)
    )
    if connector is None:
        raise InventoryNotFound(
            f"EVSE {evse_number} of station {station_id!r} has no connector {connector_number}"
        )
    return connector


async def add_connector(
    ctx: ServiceContext, actor: str, station_id: str, evse_number: int, fields: dict[str, Any]
) -> Connector:
    _check_connector({k: v for k, v in fields.items() if k in CONNECTOR_FIELDS})
    number = int(fields.get("connector_number") or 1)

    async def job(db: AsyncSession) -> Connector:
        evse = await _evse(db, station_id, evse_number)
        exists = await db.scalar(
            select(Connector.id).where(Connector.evse_id == evse.id, Connector.connector_number == number)
        )
        if exists is not None:
            raise InventoryConflict(
                f"EVSE {evse_number} of station {station_id!r} already has connector {number}"
            )
        connector = Connector(evse_id=evse.id, **{k: v for k, v in fields.items() if v is not None})
        db.add(connector)
        await db.flush()
        audit(
            db,
            actor=actor,
            action="connector.added",
            object_type="station",
            object_id=station_id,
            at=ctx.now(),
            evse_number=evse_number,
            **{k: jsonable(v) for k, v in fields.items()},
        )
        return connector

    connector = await ctx.write(job)
    ctx.directory.forget(station_id)
    await ctx.bus.publish(Event("station.changed", {"station_id": station_id}))
    return connector


async def update_connector(
    ctx: ServiceContext,
    actor: str,
    station_id: str,
    evse_number: int,
    connector_number: int,
    changes: dict[str, Any],
) -> Connector:
    _check_connector(changes)
    for name in ("standard", "format", "power_type", "max_voltage", "max_amperage"):
        if name in changes and changes[name] is None:
            raise InvalidInventory(f"{name} cannot be cleared")

    async def job(db: AsyncSession) -> Connector:
        connector = await _connector(db, station_id, evse_number, connector_number)
        changed = apply_changes(connector, {k: v for k, v in changes.items() if k in CONNECTOR_FIELDS})
        if any(k in CONNECTOR_FIELDS for k in changes):
            connector.assumed = False  # the operator said what it is, even if it matched our guess
        if changed:
            audit(
                db,
                actor=actor,
                action="connector.updated",
                object_type="station",
                object_id=station_id,
                at=ctx.now(),
                evse_number=evse_number,
                connector_number=connector_number,
                changes=changed,
            )
        return connector

    connector = await ctx.write(job)
    await ctx.bus.publish(Event("station.changed", {"station_id": station_id}))
    return connector


async def remove_connector(
    ctx: ServiceContext, actor: str, station_id: str, evse_number: int, connector_number: int
) -> None:
    async def job(db: AsyncSession) -> None:
        connector = await _connector(db, station_id, evse_number, connector_number)
        await db.delete(connector)
        audit(
            db,
            actor=actor,
            action="connector.removed",
            object_type="station",
            object_id=station_id,
            at=ctx.now(),
            evse_number=evse_number,
            connector_number=connector_number,
        )

    await ctx.write(job)
    ctx.directory.forget(station_id)  # its primary key may be cached for status updates
    await ctx.bus.publish(Event("station.changed", {"station_id": station_id}))


# --- groups ---------------------------------------------------------------------------------


async def find_group(db: AsyncSession, ref: str | int) -> StationGroup:
    """A group by id (digits) or by name."""
    if isinstance(ref, int) or ref.isdigit():
        number = int(ref)
        group = await db.get(StationGroup, number) if 0 < number < 2**31 else None
    else:
        group = await db.scalar(select(StationGroup).where(StationGroup.name == ref))
    if group is None:
        raise InventoryNotFound(f"no group {ref!r}")
    return group


def group_name_problem(name: str) -> str | None:
    if not name.strip() or name != name.strip():
        return "a group name must not be empty or start or end with spaces"
    if name.isdigit():
        return "a group name needs a letter (digits alone read as a group id)"
    if len(name) > 100 or ";" in name or any(ord(c) < 32 for c in name):
        return "a group name has at most 100 characters, no ';' and no control characters"
    return None


async def create_group(ctx: ServiceContext, actor: str, name: str, description: str | None) -> StationGroup:
    problem = group_name_problem(name)
    if problem is not None:
        raise InvalidInventory(problem)

    async def job(db: AsyncSession) -> StationGroup:
        if await db.scalar(select(StationGroup.id).where(StationGroup.name == name)) is not None:
            raise InventoryConflict(f"a group named {name!r} exists already")
        group = StationGroup(name=name, description=description, created_at=ctx.now())
        db.add(group)
        await db.flush()
        audit(
            db,
            actor=actor,
            action="group.created",
            object_type="group",
            object_id=group.id,
            at=ctx.now(),
            name=name,
        )
        return group

    return await ctx.write(job)


async def update_group(
    ctx: ServiceContext, actor: str, ref: str | int, changes: dict[str, Any]
) -> StationGroup:
    if "name" in changes:
        problem = group_name_problem(changes["name"] or "")
        if problem is not None:
            raise InvalidInventory(problem)

    async def job(db: AsyncSession) -> StationGroup:
        group = await find_group(db, ref)
        if "name" in changes and changes["name"] != group.name:
            if (
                await db.scalar(select(StationGroup.id).where(StationGroup.name == changes["name"]))
                is not None
            ):
                raise InventoryConflict(f"a group named {changes['name']!r} exists already")
        changed = apply_changes(group, {k: v for k, v in changes.items() if k in ("name", "description")})
        if changed:
            audit(
                db,
                actor=actor,
                action="group.updated",
                object_type="group",
                object_id=group.id,
                at=ctx.now(),
                changes=changed,
            )
        return group

    return await ctx.write(job)


async def delete_group(ctx: ServiceContext, actor: str, ref: str | int) -> None:
    """Delete a group and its memberships (the stations stay)."""

    async def job(db: AsyncSession) -> None:
        group = await find_group(db, ref)
        await db.execute(delete(StationGroupMember).where(StationGroupMember.group_id == group.id))
        await db.delete(group)
        audit(
            db,
            actor=actor,
            action="group.deleted",
            object_type="group",
            object_id=group.id,
            at=ctx.now(),
            name=group.name,
        )

    await ctx.write(job)


async def change_members(
    ctx: ServiceContext, actor: str, ref: str | int, station_ids: list[str], add: bool
) -> tuple[StationGroup, list[str]]:
    """Add stations to a group (or remove them); all or nothing when an id is unknown.
    Returns the group and the ids whose membership actually changed."""
    wanted = list(dict.fromkeys(station_ids))

    async def job(db: AsyncSession) -> tuple[StationGroup, list[str]]:
        group = await find_group(db, ref)
        known = set(
            (await db.execute(select(ChargingStation.id).where(ChargingStation.id.in_(wanted)))).scalars()
        )
        unknown = [s for s in wanted if s not in known]
        if unknown:
            shown = ", ".join(repr(s) for s in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            raise InventoryNotFound(f"no station(s) {shown}; nothing changed")
        members = set(
            (
                await db.execute(
                    select(StationGroupMember.station_id).where(
                        StationGroupMember.group_id == group.id, StationGroupMember.station_id.in_(wanted)
                    )
                )
            ).scalars()
        )
        if add:
            changed = [s for s in wanted if s not in members]
            db.add_all(StationGroupMember(group_id=group.id, station_id=s) for s in changed)
        else:
            changed = [s for s in wanted if s in members]
            if changed:
                await db.execute(
                    delete(StationGroupMember).where(
                        StationGroupMember.group_id == group.id, StationGroupMember.station_id.in_(changed)
                    )
                )
        if changed:
            audit(
                db,
                actor=actor,
                action="group.members_added" if add else "group.members_removed",
                object_type="group",
                object_id=group.id,
                at=ctx.now(),
                station_ids=changed,
            )
        return group, changed

    return await ctx.write(job)


async def groups_of(db: AsyncSession, station_ids: list[str]) -> dict[str, list[str]]:
    """Station id → names of its groups, in one query for any number of stations."""
    result: dict[str, list[str]] = {s: [] for s in station_ids}
    if not station_ids:
        return result
    rows = await db.execute(
        select(StationGroupMember.station_id, StationGroup.name)
        .join(StationGroup, StationGroup.id == StationGroupMember.group_id)
        .where(StationGroupMember.station_id.in_(station_ids))
        .order_by(StationGroup.name)
    )
    for station_id, name in rows:
        result[station_id].append(name)
    return result


#: `stekker demo`: where its simulated stations stand (public places, so the open data shows them)
DEMO_LOCATIONS = (
    {"name": "Stationsplein", "address": "Stationsplein 1", "city": "Utrecht", "postal_code": "3511 CE",
     "latitude": Decimal("52.089444"), "longitude": Decimal("5.110278")},
    {"name": "Museumplein", "address": "Museumplein 6", "city": "Amsterdam", "postal_code": "1071 DJ",
     "latitude": Decimal("52.357971"), "longitude": Decimal("4.881252")},
)  # fmt: skip


async def seed_demo_locations(ctx: ServiceContext, station_ids: list[str], password: str) -> int:
    """`stekker demo` only: on an empty database, two locations with the simulated stations
    registered at them (taking turns, each with `password`, which the simulated stations
    send), so the console, the public pages and the open data show them. Their EVSEs appear
    as the stations report them. Returns the stations placed."""
    async with ctx.db() as db:
        if (await db.execute(select(Location.id).limit(1))).first() is not None:
            return 0
    places = [await create_location(ctx, "demo", dict(fields)) for fields in DEMO_LOCATIONS]
    for n, station_id in enumerate(station_ids):
        await register_station(
            ctx, "demo", StationInput(station_id, password=password, location_id=places[n % len(places)].id)
        )
    return len(station_ids)
