"""The municipality's maximum price (requirement 157) and the reference sessions tariffs are
judged on.

Pure: a priced session and a cap in, the capped totals out. All cap amounts include VAT,
because that is what a driver pays and what a municipality publishes. Three bounds, each
optional:

- ``max_per_kwh``: what charging costs (ENERGY, TIME and FLAT: everything but parking) per
  kWh delivered. A session that delivers nothing may cost nothing for charging.
- ``max_parking_per_hour``: the idle fee (PARKING_TIME) per hour parked.
- ``max_per_session``: the whole session.

Parking is bounded on its own, not per kWh, so that an idle fee (requirement 4) is possible
at all under a per-kWh cap. A cap in another currency than the tariff does not apply; the
approval workflow refuses such tariffs before they can price anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import ROUND_DOWN, Decimal
from typing import Any

from stekker.domain.pricing import PricedSession, SessionPeriod
from stekker.domain.tariffs import DayOfWeek, DimensionType

_FOUR = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class PriceCapRule:
    """The maximum price in force: amounts incl. VAT in ``currency``; None means no bound."""

    currency: str
    max_per_kwh: Decimal | None = None
    max_per_session: Decimal | None = None
    max_parking_per_hour: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("max_per_kwh", "max_per_session", "max_parking_per_hour"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} cannot be negative: {value}")


@dataclass(frozen=True, slots=True)
class CapOutcome:
    """A session's totals after the cap.

    ``capped_by`` names the bound that changed the total: ``cap.per_session``, ``cap.per_kwh``
    or ``cap.parking``; when the cap changed nothing, the tariff's own ``max_price`` /
    ``min_price`` if that bound, else None. ``limit_incl_vat`` is the most the session
    could cost under the cap (None when no cap applied).
    """

    total_excl_vat: Decimal
    total_incl_vat: Decimal
    capped_by: str | None
    limit_incl_vat: Decimal | None


def _cost_incl(priced: PricedSession, kind: DimensionType) -> Decimal:
    item = priced.dimension(kind)
    return Decimal(0) if item is None else item.incl_vat


def cap_limit(priced: PricedSession, cap: PriceCapRule) -> tuple[Decimal, str | None]:
    """The most ``priced`` may cost incl. VAT under ``cap``, and the bound that sets it when
    that is below the session's own total (None: the cap does not bite)."""
    total = priced.total_incl_vat
    parking = min(_cost_incl(priced, DimensionType.PARKING_TIME), total)
    charging = total - parking
    reason: str | None = None
    if cap.max_per_kwh is not None:
        allowed = cap.max_per_kwh * priced.total_energy_kwh
        if charging > allowed:
            charging, reason = allowed, "cap.per_kwh"
    if cap.max_parking_per_hour is not None:
        allowed = cap.max_parking_per_hour * priced.total_parking_time_hours
        if parking > allowed:
            parking = allowed
            reason = reason or "cap.parking"
    limit = charging + parking
    if cap.max_per_session is not None and limit > cap.max_per_session:
        limit, reason = cap.max_per_session, "cap.per_session"
    return limit.quantize(_FOUR, rounding=ROUND_DOWN), reason


def apply_cap(priced: PricedSession, cap: PriceCapRule | None) -> CapOutcome:
    """``priced``'s totals, lowered to the cap when above it (never raised).

    Excl. VAT follows incl. VAT at the session's own VAT ratio and is rounded down, so
    neither amount ever exceeds what the cap allows.
    """
    if cap is None or cap.currency != priced.currency:
        return CapOutcome(priced.total_excl_vat, priced.total_incl_vat, priced.capped_by, None)
    limit, reason = cap_limit(priced, cap)
    if reason is None or limit >= priced.total_incl_vat:
        return CapOutcome(priced.total_excl_vat, priced.total_incl_vat, priced.capped_by, limit)
    if priced.total_incl_vat > 0:
        excl = (priced.total_excl_vat * limit / priced.total_incl_vat).quantize(_FOUR, rounding=ROUND_DOWN)
    else:
        excl = Decimal(0)
    return CapOutcome(min(excl, limit), limit, reason, limit)


# --- reference sessions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferenceSession:
    """A typical session every tariff proposal is priced on, so the municipality sees what a
    change means for real drivers: it starts on a ``day`` at local ``start``, charges
    ``energy_kwh`` evenly in ``charging_minutes`` at ``power_kw``, then stays parked for
    ``parking_minutes``."""

    name: str
    day: DayOfWeek
    start: time
    charging_minutes: int
    energy_kwh: Decimal
    parking_minutes: int = 0
    power_kw: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 100:
            raise ValueError("a reference session needs a name of at most 100 characters")
        if not 0 < self.charging_minutes <= 7 * 24 * 60:
            raise ValueError(f"{self.name}: charging_minutes must be 1..10080")
        if not 0 <= self.parking_minutes <= 7 * 24 * 60:
            raise ValueError(f"{self.name}: parking_minutes must be 0..10080")
        if not Decimal(0) <= self.energy_kwh <= Decimal(1000):
            raise ValueError(f"{self.name}: energy_kwh must be 0..1000")
        if self.power_kw is not None and not Decimal(0) < self.power_kw <= Decimal(1000):
            raise ValueError(f"{self.name}: power_kw must be above 0 and at most 1000")

    def describe(self) -> str:
        parked = f", then {self.parking_minutes} min parked" if self.parking_minutes else ""
        return (
            f"{self.day.value.title()} {self.start.strftime('%H:%M')}: "
            f"{self.energy_kwh} kWh in {self.charging_minutes} min{parked}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "day": self.day.value,
            "start": self.start.strftime("%H:%M"),
            "charging_minutes": self.charging_minutes,
            "energy_kwh": str(self.energy_kwh),
            "parking_minutes": self.parking_minutes,
            "power_kw": None if self.power_kw is None else str(self.power_kw),
        }


def reference_session_from_json(data: Mapping[str, Any]) -> ReferenceSession:
    """Read one reference session as stored (``to_json``); ValueError says what is wrong."""
    try:
        power = data.get("power_kw")
        return ReferenceSession(
            name=str(data["name"]),
            day=DayOfWeek(data["day"]),
            start=time.fromisoformat(str(data["start"])),
            charging_minutes=int(data["charging_minutes"]),
            energy_kwh=Decimal(str(data["energy_kwh"])),
            parking_minutes=int(data.get("parking_minutes") or 0),
            power_kw=None if power is None else Decimal(str(power)),
        )
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"invalid reference session {dict(data)!r}: {exc}") from exc


def _ref(
    name: str, day: DayOfWeek, start: str, minutes: int, kwh: str, parked: int = 0, kw: str | None = None
) -> ReferenceSession:
    return ReferenceSession(
        name,
        day,
        time.fromisoformat(start),
        minutes,
        Decimal(kwh),
        parked,
        None if kw is None else Decimal(kw),
    )


#: The built-in set: the sessions a Dutch public AC/DC network mostly sees.
DEFAULT_REFERENCE_SESSIONS: tuple[ReferenceSession, ...] = (
    _ref("Short top-up", DayOfWeek.TUESDAY, "12:00", 30, "5", 0, "11"),
    _ref("Daytime visit", DayOfWeek.WEDNESDAY, "09:00", 150, "20", 90, "11"),
    _ref("Evening, overnight", DayOfWeek.THURSDAY, "18:00", 240, "30", 600, "7.4"),
    _ref("Weekend afternoon", DayOfWeek.SATURDAY, "14:00", 120, "15", 30, "11"),
    _ref("Fast charge", DayOfWeek.MONDAY, "16:00", 30, "40", 5, "80"),
    _ref("Night charge", DayOfWeek.SUNDAY, "23:00", 360, "40", 60, "11"),
)


def reference_periods(ref: ReferenceSession, not_before: datetime, tz: tzinfo) -> list[SessionPeriod]:
    """The periods of ``ref`` on its first weekday at or after ``not_before`` (local time in
    ``tz``): one charging period, then one parked period when it parks."""
    local = not_before.astimezone(tz)
    day = local.date() + timedelta(days=(ref.day.iso_index - local.date().weekday()) % 7)
    start = datetime.combine(day, ref.start, tzinfo=tz)
    if start < not_before:
        start = datetime.combine(day + timedelta(days=7), ref.start, tzinfo=tz)
    start = start.astimezone(UTC)  # arithmetic in UTC: local wall-clock sums go wrong across DST
    charge_end = start + timedelta(minutes=ref.charging_minutes)
    energy_wh = int((ref.energy_kwh * 1000).to_integral_value())
    power_w = (
        ref.power_kw * 1000
        if ref.power_kw is not None
        else Decimal(energy_wh) * 60 / Decimal(ref.charging_minutes)
    )
    periods = [SessionPeriod(start, charge_end, energy_wh, True, max_power=power_w)]
    if ref.parking_minutes:
        periods.append(
            SessionPeriod(charge_end, charge_end + timedelta(minutes=ref.parking_minutes), 0, False)
        )
    return periods
