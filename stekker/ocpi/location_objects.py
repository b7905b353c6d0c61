"""Our locations as OCPI 2.2.1 Location, EVSE and Connector objects (CPO, sender side).

The GET handlers (`stekker.ocpi.locations`) and the pushes to partners build the same objects
here: `load_locations` reads the rows, `location_object` turns one location into the wire
model, `evse_object`/`connector_object` the parts a PATCH or a GET by id needs.

The Dutch national access point (NDW) makes five optional fields mandatory, so they are always
filled (issue 6, item 11):
- `opening_times`: our None means open around the clock → `{"twentyfourseven": true}`;
- `energy_mix`: from the tariff an ad-hoc driver pays at the location when that tariff states
  one, else `{"is_green_energy": false}` (we do not know the supply is 100 % renewable, and
  claiming it would be the worse error);
- `parking_restrictions`: `[]` — OCPI allows an empty list (cardinality `*`) and it says
  "no restriction applies"; we hold no restriction data, and inventing `EV_ONLY` could send a
  driver to a spot the traffic rules do not reserve for them;
- `max_electric_power`: the stored value, else volts x amperes x phases (3 for AC_3_PHASE,
  whose max_voltage is line to neutral; 1 for AC_1_PHASE and DC);
- `tariff_ids`: the tariffs that price a session there now, for an ad-hoc driver and for the
  drivers of the partner asking (see `TariffIndex`); `[]` when no approved tariff covers the
  connector (then nothing prices it, and saying so is the truth).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from stekker.db.models import ChargingStation, Connector, Evse, Location
from stekker.db.models_tariffs import TariffRecord, TariffVersion
from stekker.domain.opening_hours import published_hours
from stekker.domain.plugs import max_power_w
from stekker.domain.tariff_scope import Customer, Place, ScopedVersion, choose, place_rank
from stekker.ocpi.envelope import ocpi_time
from stekker.services.tariff_lookup import approved_versions

OcpiDateTime = Annotated[datetime, PlainSerializer(ocpi_time, return_type=str)]

#: OCPP connector status (1.6 and 2.0.1 vocabularies) → OCPI EVSE status.
CONNECTOR_STATUS: Mapping[str, str] = {
    "Available": "AVAILABLE",
    "Preparing": "CHARGING",
    "Charging": "CHARGING",
    "SuspendedEV": "CHARGING",
    "SuspendedEVSE": "CHARGING",
    "Finishing": "CHARGING",
    "Occupied": "CHARGING",
    "Reserved": "RESERVED",
    "Unavailable": "INOPERATIVE",
    "Faulted": "OUTOFORDER",
}
#: An EVSE charges one vehicle at a time: one connector in use makes the whole EVSE in use,
#: one usable connector makes it usable; only when none is do the fault states show.
_EVSE_PRIORITY = ("CHARGING", "RESERVED", "AVAILABLE", "BLOCKED", "OUTOFORDER", "INOPERATIVE", "UNKNOWN")
#: What every station we manage over OCPP can do: authorize cards and be started remotely.
CAPABILITIES = ("RFID_READER", "REMOTE_START_STOP_CAPABLE")
NOT_GREEN: dict[str, Any] = {"is_green_energy": False}
_SIX = Decimal("0.000001")


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON object a partner receives (absent optionals left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class OcpiConnector(_Wire):
    id: str
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int
    tariff_ids: list[str]
    last_updated: OcpiDateTime


class OcpiEvse(_Wire):
    uid: str
    evse_id: str | None = None
    status: str
    capabilities: list[str]
    connectors: list[OcpiConnector]
    physical_reference: str | None = None
    parking_restrictions: list[str]
    last_updated: OcpiDateTime


class GeoLocation(_Wire):
    latitude: str
    longitude: str


class BusinessDetails(_Wire):
    name: str


class OcpiLocation(_Wire):
    country_code: str
    party_id: str
    id: str
    publish: bool
    name: str | None = None
    address: str
    city: str
    postal_code: str | None = None
    country: str
    coordinates: GeoLocation
    evses: list[OcpiEvse]
    operator: BusinessDetails
    time_zone: str
    opening_times: dict[str, Any]
    energy_mix: dict[str, Any]
    last_updated: OcpiDateTime


# --- pure pieces -----------------------------------------------------------------------------


def evse_uid(station_id: str, evse_number: int, evse_id: str | None) -> str:
    """The EVSE's OCPI uid: its public eMI3 id, or station*number before it has one (the same
    rule the CDRs follow, so a partner matches a CDR's EVSE to the location's)."""
    return evse_id or f"{station_id}*{evse_number}"


def coordinate(value: Decimal | float | str) -> str:
    """OCPI GeoLocation text: 6 decimals (we store 6; OCPI wants 5-7)."""
    return str(Decimal(str(value)).quantize(_SIX, rounding=ROUND_HALF_EVEN))


def max_power(power_type: str, voltage: int, amperage: int, given: int | None) -> int:
    """The connector's maximum power in W: the stored value, else V x A x phases
    (`stekker.domain.plugs.max_power_w`, as the public page shows it)."""
    return max_power_w(power_type, voltage, amperage, given)


def connector_status(ocpp_status: str | None) -> str:
    return CONNECTOR_STATUS.get(ocpp_status or "", "UNKNOWN")


def evse_status(
    connector_statuses: Iterable[str | None],
    *,
    online: bool,
    retired: bool,
    station_status: str | None = None,
) -> str:
    """The OCPI status of an EVSE from its connectors' OCPP statuses and its station's state.

    Retired (station or location): REMOVED. Offline: UNKNOWN (OCPI: "also used when offline").
    A 1.6 station that reports connector 0 Unavailable or Faulted is out as a whole."""
    if retired:
        return "REMOVED"
    if not online:
        return "UNKNOWN"
    if station_status in ("Unavailable", "Faulted"):
        return connector_status(station_status)
    found = {connector_status(s) for s in connector_statuses}
    return next((s for s in _EVSE_PRIORITY if s in found), "UNKNOWN")


def opening_times(hours: Mapping[str, Any] | None) -> dict[str, Any]:
    """OCPI Hours, always present: None is open 24/7 (`stekker.domain.opening_hours`, the one
    reading of every edge); exceptional periods in UTC with a Z."""
    result = published_hours(hours)
    for key in ("exceptional_openings", "exceptional_closings"):
        if result.get(key):
            result[key] = [
                {name: _utc_text(period[name]) for name in ("period_begin", "period_end")}
                for period in result[key]
            ]
    return result


def _utc_text(value: Any) -> Any:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return value
    return ocpi_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _second(moment: datetime) -> datetime:
    """Whole seconds, UTC: what a partner sees, so date_from/date_to filter on that."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _newest(*moments: datetime | None, ceiling: datetime) -> datetime | None:
    """The latest of the moments, none later than `ceiling` (a station clock ahead of ours
    must not put an object's last_updated in the future)."""
    known = [min(_second(m), ceiling) for m in moments if m is not None]
    return max(known) if known else None


@dataclass(frozen=True, slots=True)
class TariffIndex:
    """The approved tariff versions, read once, answering per connector which tariff ids apply
    now and when that last changed.

    `customers` are the drivers whose tariffs a connector lists: an ad-hoc driver first, then
    the drivers of each party the reading partner speaks for (its country-party pairs). A
    tariff limited to some energy suppliers is for particular drivers and is not listed.
    """

    versions: Sequence[ScopedVersion]
    codes: Mapping[int, str]
    energy_mix: Mapping[int, Mapping[str, Any]]
    customers: tuple[Customer, ...]
    at: datetime

    def tariff_ids(self, place: Place) -> list[str]:
        ids: list[str] = []
        for customer in self.customers:
            chosen = choose(self.versions, place, customer, self.at)
            if chosen is not None:
                code = self.codes.get(chosen.tariff_id)
                if code is not None and code not in ids:
                    ids.append(code)
        return ids

    def changed_at(self, place: Place) -> datetime | None:
        """When a tariff covering the place last took effect (or was retired)."""
        moments = [
            v.effective_from
            for v in self.versions
            if v.effective_from <= self.at and place_rank(v.applies_to, place)
        ]
        return max(moments) if moments else None

    def location_energy_mix(self, location_id: int) -> dict[str, Any]:
        chosen = choose(self.versions, Place(location_id, None, None), Customer(None), self.at)
        mix = None if chosen is None else self.energy_mix.get(chosen.version_id)
        return dict(mix) if mix else dict(NOT_GREEN)


def customers_of(parties: Iterable[str]) -> tuple[Customer, ...]:
    """An ad-hoc driver, then one contract driver per party ("NL-ABC"), without repeats."""
    seen: list[str] = []
    for party in parties:
        if party and party not in seen:
            seen.append(party)
    return (Customer(None), *(Customer(p) for p in seen))


@dataclass(frozen=True, slots=True)
class Identity:
    """Who publishes: our (country_code, party_id) and the operator name drivers see."""

    country_code: str
    party_id: str
    operator_name: str


@dataclass(slots=True)
class _Stamp:
    """Collects the moments an object changed."""

    ceiling: datetime
    moments: list[datetime] = field(default_factory=list)

    def add(self, *moments: datetime | None) -> None:
        newest = _newest(*moments, ceiling=self.ceiling)
        if newest is not None:
            self.moments.append(newest)

    def latest(self, fallback: datetime) -> datetime:
        return max(self.moments) if self.moments else _second(fallback)


def connector_object(
    location: Location, station: ChargingStation, evse: Evse, connector: Connector, tariffs: TariffIndex
) -> OcpiConnector:
    place = Place(location.id, evse.evse_id, connector.connector_number)
    stamp = _Stamp(_second(tariffs.at))
    stamp.add(evse.created_at, connector.status_at, tariffs.changed_at(place))
    return OcpiConnector(
        id=str(connector.connector_number),
        standard=connector.standard,
        format=connector.format,
        power_type=connector.power_type,
        max_voltage=connector.max_voltage,
        max_amperage=connector.max_amperage,
        max_electric_power=max_power(
            connector.power_type, connector.max_voltage, connector.max_amperage, connector.max_electric_power
        ),
        tariff_ids=tariffs.tariff_ids(place),
        last_updated=stamp.latest(evse.created_at),
    )


def evse_object(location: Location, station: ChargingStation, evse: Evse, tariffs: TariffIndex) -> OcpiEvse:
    """The EVSE with its connectors. Its status also changes when the station connects,
    disconnects or is retired, so those moments count for last_updated too."""
    connectors = [connector_object(location, station, evse, c, tariffs) for c in evse.connectors]
    retired = station.retired_at is not None or location.retired_at is not None
    stamp = _Stamp(_second(tariffs.at))
    stamp.add(
        evse.created_at,
        station.status_at,
        station.connected_at,
        station.disconnected_at,
        station.retired_at,
        location.retired_at,
        *(c.last_updated for c in connectors),
    )
    return OcpiEvse(
        uid=evse_uid(station.id, evse.evse_number, evse.evse_id),
        evse_id=evse.evse_id,
        status=evse_status(
            (c.status for c in evse.connectors),
            online=station.online,
            retired=retired,
            station_status=station.status,
        ),
        capabilities=list(CAPABILITIES),
        connectors=connectors,
        physical_reference=str(evse.evse_number),
        parking_restrictions=[],
        last_updated=stamp.latest(evse.created_at),
    )


def publishable_evses(location: Location) -> list[tuple[ChargingStation, Evse]]:
    """The location's EVSEs in a stable order; an EVSE without a connector is left out (OCPI
    requires at least one)."""
    return [
        (station, evse)
        for station in sorted(location.stations, key=lambda s: s.id)
        for evse in station.evses
        if evse.connectors
    ]


def location_object(location: Location, identity: Identity, tariffs: TariffIndex) -> OcpiLocation:
    evses = [evse_object(location, station, evse, tariffs) for station, evse in publishable_evses(location)]
    stamp = _Stamp(_second(tariffs.at))
    stamp.add(location.created_at, location.updated_at, location.retired_at, *(e.last_updated for e in evses))
    return OcpiLocation(
        country_code=identity.country_code,
        party_id=identity.party_id,
        id=str(location.id),
        publish=True,
        name=location.name[:255] or None,
        # OCPI caps address and city at 45 characters and postal_code at 10
        address=location.address[:45],
        city=location.city[:45],
        postal_code=(location.postal_code or "")[:10] or None,
        country=location.country,
        coordinates=GeoLocation(
            latitude=coordinate(location.latitude), longitude=coordinate(location.longitude)
        ),
        evses=evses,
        operator=BusinessDetails(name=identity.operator_name or "Stekker"),
        time_zone=location.time_zone,
        opening_times=opening_times(location.opening_times),
        energy_mix=tariffs.location_energy_mix(location.id),
        last_updated=stamp.latest(location.created_at),
    )


# --- reading the rows --------------------------------------------------------------------------


async def tariff_index(db: AsyncSession, customers: tuple[Customer, ...], at: datetime) -> TariffIndex:
    versions = await approved_versions(db)
    codes = {row.id: row.code for row in (await db.execute(select(TariffRecord))).scalars()}
    mixes: dict[int, Mapping[str, Any]] = {}
    if versions:
        rows = await db.execute(
            select(TariffVersion.id, TariffVersion.content).where(
                TariffVersion.id.in_([v.version_id for v in versions])
            )
        )
        for version_id, content in rows:
            mix = (content or {}).get("energy_mix")
            if isinstance(mix, dict) and isinstance(mix.get("is_green_energy"), bool):
                mixes[version_id] = mix
    return TariffIndex(versions, codes, mixes, customers, at)


def _with_parts() -> Any:
    return selectinload(Location.stations).selectinload(ChargingStation.evses).selectinload(Evse.connectors)


async def load_locations(db: AsyncSession) -> list[Location]:
    """Every location with its stations, EVSEs and connectors, by id."""
    return list((await db.execute(select(Location).options(_with_parts()).order_by(Location.id))).scalars())


async def load_location(db: AsyncSession, location_id: int) -> Location | None:
    return (
        await db.execute(select(Location).options(_with_parts()).where(Location.id == location_id))
    ).scalar_one_or_none()


def parties_of(
    country_code: str | None, party_id: str | None, roles: Iterable[tuple[str, str, str]]
) -> list[str]:
    """A partner's parties as "NL-ABC": its main one, then every (country, party) it registered."""
    pairs = [(country_code or "", party_id or ""), *((c, p) for c, p, _ in roles)]
    result: list[str] = []
    for country, party in pairs:
        name = f"{country.upper()}-{party.upper()}"
        if len(country) == 2 and len(party) == 3 and name not in result:
            result.append(name)
    return result
