"""The OCPI 2.2.1 CDR object of a priced session: the bill partners and drivers read.

Pure: a ``PricedSession`` (``stekker.domain.pricing``), its ``Bill``
(``stekker.domain.billing``: whole cents, the cap applied) and the session's metadata in, a
JSON-ready dict out. Amounts are whole cents; volumes JSON numbers with at most 4 decimals
(an OCPI ``number``).

- ``total_cost`` is what the driver pays: the billed total. The per-dimension costs
  (``total_fixed_cost``, ``total_energy_cost``, ``total_time_cost``, ``total_parking_cost``)
  add up to it exactly, excl. and incl. VAT, also when a bound lowered or raised the total
  (the lines are scaled to it); ``remark`` then says by which bound, and what the tariff asked.
- ``total_time`` is the whole session, charging and parked; ``total_parking_time`` the
  part not charging (idle-fee grace included).
- Charging periods that follow each other with the same prices are one period, so a
  session sampled every minute still reads as a few lines.
- A credit CDR (``credit_document``) repeats the original with every amount negated,
  ``credit: true`` and ``credit_reference_id`` naming the CDR it cancels.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stekker.domain.billing import Bill
from stekker.domain.pricing import ChargingPeriod, PricedSession
from stekker.domain.tariffs import DimensionType

_FOUR = Decimal("0.0001")
_US_PER_HOUR = Decimal(3_600_000_000)
REMARK_MAX = 255

#: The cost fields of a CDR; a credit CDR negates each of them.
COST_FIELDS = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)

_CAP_WORDS = {
    "cap.per_kwh": "capped by the municipal maximum price per kWh",
    "cap.per_session": "capped by the municipal maximum price per session",
    "cap.parking": "capped by the municipal maximum parking price per hour",
    "cap": "capped by the municipal maximum price",
    "max_price": "capped by the tariff's max_price",
    "min_price": "raised to the tariff's min_price",
}


@dataclass(frozen=True, slots=True)
class CdrToken:
    """Who charged (OCPI ``CdrToken``): the token uid, its OCPI type and contract id."""

    uid: str
    type: str = "RFID"
    contract_id: str | None = None


@dataclass(frozen=True, slots=True)
class CdrLocation:
    """Where it happened (OCPI ``CdrLocation``): the location, EVSE and connector at the time."""

    id: str
    name: str | None
    address: str
    city: str
    postal_code: str | None
    country: str
    latitude: Decimal | None
    longitude: Decimal | None
    evse_uid: str
    evse_id: str
    connector_id: str
    connector_standard: str = "IEC_62196_T2"
    connector_format: str = "SOCKET"
    connector_power_type: str = "AC_3_PHASE"


@dataclass(frozen=True, slots=True)
class CdrFacts:
    """Everything a CDR says besides prices: ids, parties, times, token, place, tariff.

    ``tariff`` is the OCPI Tariff object that priced the session (None: none applied);
    ``periods_end`` is where the last charging period ends (normally ``end``).
    """

    country_code: str
    party_id: str
    cdr_id: str
    session_id: str
    start: datetime
    end: datetime
    periods_end: datetime
    token: CdrToken
    auth_method: str
    location: CdrLocation
    currency: str
    tariff: Mapping[str, Any] | None
    last_updated: datetime
    meter_id: str | None = None
    remark: str | None = None


def number(value: Decimal | int) -> float | int:
    """An OCPI ``number``: at most 4 decimals (half up), as a JSON number."""
    if isinstance(value, int):
        return value
    rounded = value.quantize(_FOUR, rounding=ROUND_HALF_UP)
    if rounded == rounded.to_integral_value():
        return int(rounded)
    return float(rounded)


def price(excl_vat: Decimal, incl_vat: Decimal) -> dict[str, float | int]:
    """An OCPI ``Price``."""
    return {"excl_vat": number(excl_vat), "incl_vat": number(incl_vat)}


def timestamp(value: datetime) -> str:
    """OCPI DateTime (at most 25 characters): UTC with a Z, whole seconds, or milliseconds when
    the station gave fractions. Finer fractions are cut, not rounded, so a moment never moves
    into the next second."""
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    millis = utc.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


#: The DateTime fields of a CDR document, at any depth (charging periods, the tariff).
DATETIME_KEYS = frozenset({"start_date_time", "end_date_time", "last_updated"})


def _datetime_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return timestamp(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def with_ocpi_times(value: Any) -> Any:
    """A stored document with every DateTime field in the OCPI form (``timestamp``): CDRs
    stored before that form carry microseconds (27 characters), and are served and pushed
    normalised rather than rewritten (a CDR is immutable)."""
    if isinstance(value, Mapping):
        return {
            key: _datetime_text(item) if key in DATETIME_KEYS else with_ocpi_times(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [with_ocpi_times(item) for item in value]
    return value


def cap_remark(capped_by: str | None) -> str | None:
    """In words, which bound changed the total."""
    return None if capped_by is None else _CAP_WORDS.get(capped_by, f"total bounded ({capped_by})")


def _hours(start: datetime, end: datetime) -> Decimal:
    delta = end - start
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Decimal(us) / _US_PER_HOUR


def _time_kind(period: ChargingPeriod) -> DimensionType:
    for dimension in period.dimensions:
        if dimension.type in (DimensionType.TIME, DimensionType.PARKING_TIME):
            return dimension.type
    return DimensionType.TIME


def charging_periods(
    periods: Sequence[ChargingPeriod], end: datetime, tariff_id: str | None
) -> list[dict[str, Any]]:
    """OCPI charging periods; adjacent periods with the same prices and state are merged."""
    groups: list[tuple[ChargingPeriod, Decimal, DimensionType]] = []
    for period in periods:
        energy = sum((d.volume for d in period.dimensions if d.type is DimensionType.ENERGY), Decimal(0))
        kind = _time_kind(period)
        if groups:
            first, total, last_kind = groups[-1]
            if last_kind is kind and first.tariff_elements == period.tariff_elements:
                groups[-1] = (first, total + energy, kind)
                continue
        groups.append((period, energy, kind))
    result: list[dict[str, Any]] = []
    for index, (first, energy, kind) in enumerate(groups):
        until = groups[index + 1][0].start_date_time if index + 1 < len(groups) else end
        dimensions: list[dict[str, Any]] = []
        if energy > 0:
            dimensions.append({"type": DimensionType.ENERGY.value, "volume": number(energy)})
        dimensions.append(
            {
                "type": kind.value,
                "volume": number(_hours(first.start_date_time, max(until, first.start_date_time))),
            }
        )
        item: dict[str, Any] = {"start_date_time": timestamp(first.start_date_time), "dimensions": dimensions}
        if tariff_id is not None:
            item["tariff_id"] = tariff_id
        result.append(item)
    return result


def build_document(facts: CdrFacts, priced: PricedSession, billed: Bill) -> dict[str, Any]:
    """The OCPI 2.2.1 CDR of a priced and billed session."""
    location = facts.location
    cdr_location: dict[str, Any] = {
        "id": location.id,
        "address": location.address,
        "city": location.city,
        "country": location.country,
        "evse_uid": location.evse_uid,
        "evse_id": location.evse_id,
        "connector_id": location.connector_id,
        "connector_standard": location.connector_standard,
        "connector_format": location.connector_format,
        "connector_power_type": location.connector_power_type,
    }
    if location.name is not None:
        cdr_location["name"] = location.name
    if location.postal_code is not None:
        cdr_location["postal_code"] = location.postal_code
    if location.latitude is not None and location.longitude is not None:
        cdr_location["coordinates"] = {
            "latitude": f"{location.latitude:.6f}",
            "longitude": f"{location.longitude:.6f}",
        }
    token = facts.token
    tariff_id = None if facts.tariff is None else str(facts.tariff.get("id"))
    document: dict[str, Any] = {
        "country_code": facts.country_code,
        "party_id": facts.party_id,
        "id": facts.cdr_id,
        "start_date_time": timestamp(facts.start),
        "end_date_time": timestamp(facts.end),
        "session_id": facts.session_id,
        "cdr_token": {
            "uid": token.uid,
            "type": token.type,
            "contract_id": token.contract_id or token.uid,
        },
        "auth_method": facts.auth_method,
        "cdr_location": cdr_location,
        "currency": facts.currency,
        "tariffs": [] if facts.tariff is None else [dict(facts.tariff)],
        "charging_periods": charging_periods(priced.charging_periods, facts.periods_end, tariff_id),
        "total_cost": price(billed.total_excl_vat, billed.total_incl_vat),
        "total_energy": number(priced.total_energy_kwh),
        "total_time": number(_hours(facts.start, facts.end)),
        "total_parking_time": number(priced.total_parking_time_hours),
        "last_updated": timestamp(facts.last_updated),
    }
    if facts.meter_id:
        document["meter_id"] = facts.meter_id
    for kind, name in (
        (DimensionType.FLAT, "total_fixed_cost"),
        (DimensionType.ENERGY, "total_energy_cost"),
        (DimensionType.TIME, "total_time_cost"),
        (DimensionType.PARKING_TIME, "total_parking_cost"),
    ):
        line = billed.line(kind)
        if line is not None:
            document[name] = price(line.excl_vat, line.incl_vat)
    bound = cap_remark(billed.capped_by)
    if bound is not None and billed.asked_incl_vat != billed.total_incl_vat:
        bound = f"{bound} (the tariff asked {billed.asked_incl_vat} {billed.currency} incl. VAT)"
    remarks = [r for r in (facts.remark, bound) if r]
    if remarks:
        document["remark"] = "; ".join(remarks)[:REMARK_MAX]
    return document


def _negate(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _negate(v) for k, v in value.items()}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return -value if value else value
    return value


def credit_document(
    original: Mapping[str, Any], *, cdr_id: str, remark: str, last_updated: datetime
) -> dict[str, Any]:
    """The credit CDR that cancels ``original``: the same session, every amount negated."""
    document: dict[str, Any] = with_ocpi_times(copy.deepcopy(dict(original)))
    for name in COST_FIELDS:
        if name in document:
            document[name] = _negate(document[name])
    document["id"] = cdr_id
    document["credit"] = True
    document["credit_reference_id"] = str(original["id"])
    document["remark"] = remark[:REMARK_MAX]
    document["last_updated"] = timestamp(last_updated)
    return document
