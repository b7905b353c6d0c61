"""Finding the tariff version, the price cap and the time zone that price a session.

Read-only queries; the choice itself is the pure `stekker.domain.tariff_scope`. Parsed
tariffs are cached by their content: approved versions never change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingSession, ChargingStation, Evse, Location, Token
from stekker.db.models_tariffs import APPROVED_STATUSES, PriceCap, TariffRecord, TariffVersion
from stekker.domain.price_caps import PriceCapRule
from stekker.domain.tariff_scope import Customer, Place, ScopedVersion, choose
from stekker.domain.tariffs import Tariff, tariff_from_ocpi
from stekker.domain.timeutil import HOME_TIME_ZONE

_CACHE_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class ResolvedTariff:
    """The approved tariff version that prices something, parsed and ready for the engine."""

    version_id: int
    tariff_id: int
    code: str
    version: int
    tariff: Tariff
    parking_grace: timedelta
    effective_from: datetime


_parsed: dict[str, Tariff] = {}


def parse_version(row: TariffVersion, record: TariffRecord) -> Tariff:
    """The engine's `Tariff` of a version. Cached by content (not by row id, which another
    database, say a test's or a restored backup's, may give to other prices)."""
    content = dict(row.content)
    content["id"] = record.code
    content["currency"] = record.currency
    key = json.dumps(content, sort_keys=True, default=str)
    cached = _parsed.get(key)
    if cached is not None:
        return cached
    tariff = tariff_from_ocpi(content)
    if len(_parsed) >= _CACHE_LIMIT:
        _parsed.clear()
    _parsed[key] = tariff
    return tariff


def scoped(row: TariffVersion) -> ScopedVersion:
    assert row.effective_from is not None
    return ScopedVersion(
        version_id=row.id,
        tariff_id=row.tariff_id,
        effective_from=row.effective_from,
        ends_tariff=row.ends_tariff,
        applies_to=tuple(row.applies_to or ()),
        audience=row.audience,
        parties=frozenset(row.parties or ()),
        energy_suppliers=frozenset(row.energy_suppliers or ()),
    )


async def approved_versions(db: AsyncSession) -> list[ScopedVersion]:
    rows = (
        await db.execute(
            select(TariffVersion).where(
                TariffVersion.status.in_([s.value for s in APPROVED_STATUSES]),
                TariffVersion.effective_from.is_not(None),
            )
        )
    ).scalars()
    return [scoped(row) for row in rows]


async def place_of(db: AsyncSession, station_id: str, evse_number: int, connector: int | None) -> Place:
    row = (
        await db.execute(
            select(ChargingStation.location_id, Evse.evse_id)
            .select_from(ChargingStation)
            .outerjoin(Evse, (Evse.station_id == ChargingStation.id) & (Evse.evse_number == evse_number))
            .where(ChargingStation.id == station_id)
        )
    ).first()
    if row is None:
        return Place(None, None, connector)
    return Place(row.location_id, row.evse_id, connector)


async def resolved(db: AsyncSession, version_id: int) -> ResolvedTariff:
    """A version by id, parsed (for CDRs that name their version, and comparisons)."""
    row = await db.get(TariffVersion, version_id)
    if row is None:
        raise LookupError(f"tariff version {version_id} does not exist")
    record = await db.get(TariffRecord, row.tariff_id)
    assert record is not None
    return ResolvedTariff(
        version_id=row.id,
        tariff_id=row.tariff_id,
        code=record.code,
        version=row.version,
        tariff=parse_version(row, record),
        parking_grace=timedelta(minutes=row.parking_grace_minutes or 0),
        effective_from=row.effective_from or record.created_at,
    )


async def resolve_tariff(
    db: AsyncSession,
    *,
    station_id: str,
    evse_number: int,
    connector_number: int | None,
    party: str | None,
    energy_supplier: str | None,
    at: datetime,
) -> ResolvedTariff | None:
    """The approved tariff version in effect at `at` for that connector and customer
    (`party` "NL-ABC" of the driver's eMSP, None for an ad-hoc driver)."""
    place = await place_of(db, station_id, evse_number, connector_number)
    chosen = choose(await approved_versions(db), place, Customer(party, energy_supplier), at)
    return None if chosen is None else await resolved(db, chosen.version_id)


async def session_customer(db: AsyncSession, session: ChargingSession) -> tuple[str | None, str | None]:
    """(party, energy supplier) of a session: its token's eMSP, or ad hoc without a known token."""
    supplier = session.energy_supplier
    if session.token_id is None:
        return None, supplier
    token = await db.get(Token, session.token_id)
    if token is None:
        return None, supplier
    return f"{token.country_code}-{token.party_id}", supplier or token.energy_supplier


async def cap_at(db: AsyncSession, at: datetime) -> tuple[int, PriceCapRule] | None:
    """The municipality's cap in force at `at` (the newest set before it), if any."""
    row = (
        await db.execute(
            select(PriceCap)
            .where(PriceCap.effective_from <= at)
            .order_by(PriceCap.effective_from.desc(), PriceCap.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return row.id, cap_rule(row)


def cap_rule(row: PriceCap) -> PriceCapRule:
    return PriceCapRule(row.currency, row.max_per_kwh, row.max_per_session, row.max_parking_per_hour)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or HOME_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(HOME_TIME_ZONE)


async def station_time_zone(db: AsyncSession, station_id: str) -> ZoneInfo:
    """The time zone of the station's location, in which tariff restrictions are read."""
    name = (
        await db.execute(
            select(Location.time_zone)
            .join(ChargingStation, ChargingStation.location_id == Location.id)
            .where(ChargingStation.id == station_id)
        )
    ).scalar_one_or_none()
    return zone(name)
