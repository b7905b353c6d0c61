"""The tariff model: what charging costs, in the shape of an OCPI 2.2.1 Tariff.

Pure data, no I/O. Every class is a frozen dataclass so a tariff version can be
shared between threads, cached and compared, and never edited in place (a change
is a new version, see issue 5). Prices are ``Decimal`` and exclude VAT, as in
OCPI 2.2.1. OCPI 2.3.0 adds ``tax_included`` and a list of taxes on ``Price``;
``Tariff.tax_included`` is already here (2.2.1 semantics: ``NO``) and ``Price``
can grow a ``taxes`` tuple without changing its existing fields.

``tariff_from_ocpi`` reads an OCPI 2.2.1 Tariff object (a parsed JSON dict).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Any


class DimensionType(enum.StrEnum):
    """What a price component charges for (OCPI ``TariffDimensionType``).

    ENERGY is per kWh (step_size in Wh), TIME per hour of charging and
    PARKING_TIME per hour of not charging while connected (step_size in seconds),
    FLAT a fixed amount once per session (step_size ignored).
    """

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class DayOfWeek(enum.StrEnum):
    """A day of the week in the location's local time (OCPI ``DayOfWeek``)."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"

    @property
    def iso_index(self) -> int:
        """0 for Monday .. 6 for Sunday, as ``date.weekday()``."""
        return list(DayOfWeek).index(self)


class ReservationRestriction(enum.StrEnum):
    """Marks an element that prices a reservation rather than a charging session.

    RESERVATION: the time between reservation and the start of charging;
    RESERVATION_EXPIRES: a reservation that expired unused. The pricing engine
    does not price reservations yet; such elements never apply to a session.
    """

    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class TaxIncluded(enum.StrEnum):
    """Whether component prices include taxes (OCPI 2.3.0 ``TaxIncluded``).

    OCPI 2.2.1 prices always exclude VAT, which is ``NO``; the engine supports
    only ``NO`` for now and refuses the others rather than guess.
    """

    YES = "YES"
    NO = "NO"
    NOT_APPLICABLE = "N/A"


@dataclass(frozen=True, slots=True)
class Price:
    """An amount of money with and without VAT (OCPI ``Price``).

    ``incl_vat`` may be unknown (OCPI makes it optional). In OCPI 2.3.0 the same
    concept is ``before_taxes`` plus a list of taxes; a ``taxes`` tuple can be
    added here with a default without touching callers.
    """

    excl_vat: Decimal
    incl_vat: Decimal | None = None

    def __post_init__(self) -> None:
        if self.excl_vat < 0 or (self.incl_vat is not None and self.incl_vat < 0):
            raise ValueError(f"a price cannot be negative: {self}")


@dataclass(frozen=True, slots=True)
class PriceComponent:
    """The price of one dimension inside a tariff element (OCPI ``PriceComponent``).

    ``price`` is per unit excl. VAT: per kWh for ENERGY, per hour for TIME and
    PARKING_TIME, per session for FLAT. ``vat`` is a percentage; ``None`` means no
    VAT applies (different from 0 %). ``step_size`` is the billing block: Wh for
    ENERGY, seconds for TIME and PARKING_TIME; the session total of the dimension
    is rounded up to a multiple of it (see ``stekker.domain.pricing``).
    """

    type: DimensionType
    price: Decimal
    vat: Decimal | None = None
    step_size: int = 1

    def __post_init__(self) -> None:
        if self.price < 0:
            raise ValueError(f"{self.type} price cannot be negative: {self.price}")
        if self.vat is not None and self.vat < 0:
            raise ValueError(f"{self.type} VAT cannot be negative: {self.vat}")
        if self.step_size < 0:
            raise ValueError(f"{self.type} step_size cannot be negative: {self.step_size}")


@dataclass(frozen=True, slots=True)
class TariffRestrictions:
    """When a tariff element applies (OCPI ``TariffRestrictions``); all set fields must hold.

    Times of day and dates are in the location's local time. ``start_time`` is
    inclusive and ``end_time`` exclusive; ``end_time`` before ``start_time`` wraps
    past midnight (20:00-06:00), equal times mean the whole day. ``start_date`` is
    inclusive and ``end_date`` exclusive. ``min_*`` bounds are inclusive and
    ``max_*`` bounds exclusive: energy in kWh consumed so far in the session,
    current in A (summed over phases) and power in kW while charging, duration in
    seconds since the session started. ``day_of_week`` lists local days;
    ``reservation`` makes the element price a reservation instead of charging.
    """

    start_time: time | None = None
    end_time: time | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: frozenset[DayOfWeek] | None = None
    reservation: ReservationRestriction | None = None

    def __post_init__(self) -> None:
        for name in ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"restriction {name} cannot be negative: {value}")
        for name in ("min_duration", "max_duration"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"restriction {name} cannot be negative: {value}")


NO_RESTRICTIONS = TariffRestrictions()


@dataclass(frozen=True, slots=True)
class TariffElement:
    """A set of price components valid under one set of restrictions (OCPI ``TariffElement``).

    The order of elements in a tariff matters: for each dimension the first
    element whose restrictions hold and that prices that dimension applies.
    """

    price_components: tuple[PriceComponent, ...]
    restrictions: TariffRestrictions = NO_RESTRICTIONS

    def __post_init__(self) -> None:
        if not self.price_components:
            raise ValueError("a tariff element needs at least one price component")

    def component(self, dimension: DimensionType) -> PriceComponent | None:
        """This element's component for ``dimension``, if it has one (the first, per OCPI)."""
        for component in self.price_components:
            if component.type is dimension:
                return component
        return None


@dataclass(frozen=True, slots=True)
class Tariff:
    """A tariff (OCPI ``Tariff``): ordered elements, currency and price bounds.

    ``min_price`` / ``max_price`` bound the total cost of a session (a minimum is
    not a FLAT fee: it only lifts a cheaper session to that amount).
    ``alt_text`` holds the human description per language code.
    """

    id: str
    currency: str
    elements: tuple[TariffElement, ...]
    min_price: Price | None = None
    max_price: Price | None = None
    tax_included: TaxIncluded = TaxIncluded.NO
    alt_text: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.currency) != 3:
            raise ValueError(f"currency must be an ISO 4217 code: {self.currency!r}")
        if not self.elements:
            raise ValueError("a tariff needs at least one element")
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price.excl_vat > self.max_price.excl_vat
        ):
            raise ValueError("min_price is above max_price")


# --- reading OCPI JSON ---------------------------------------------------------------------------


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def _opt_decimal(data: Mapping[str, Any], key: str) -> Decimal | None:
    value = data.get(key)
    return None if value is None else _decimal(value, key)


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    return value


def _time(value: Any, key: str) -> time | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be 'HH:MM', got {value!r}")
    if value == "24:00":
        return time(0, 0)
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{key} must be 'HH:MM', got {value!r}") from exc


def _date(value: Any, key: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key} must be 'YYYY-MM-DD', got {value!r}") from exc


def _price(value: Any, key: str) -> Price | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or "excl_vat" not in value:
        raise ValueError(f"{key} must be an object with excl_vat, got {value!r}")
    return Price(_decimal(value["excl_vat"], f"{key}.excl_vat"), _opt_decimal(value, "incl_vat"))


def _restrictions(data: Mapping[str, Any] | None) -> TariffRestrictions:
    if not data:
        return NO_RESTRICTIONS
    days = data.get("day_of_week")
    reservation = data.get("reservation")
    try:
        return TariffRestrictions(
            start_time=_time(data.get("start_time"), "start_time"),
            end_time=_time(data.get("end_time"), "end_time"),
            start_date=_date(data.get("start_date"), "start_date"),
            end_date=_date(data.get("end_date"), "end_date"),
            min_kwh=_opt_decimal(data, "min_kwh"),
            max_kwh=_opt_decimal(data, "max_kwh"),
            min_current=_opt_decimal(data, "min_current"),
            max_current=_opt_decimal(data, "max_current"),
            min_power=_opt_decimal(data, "min_power"),
            max_power=_opt_decimal(data, "max_power"),
            min_duration=_opt_int(data, "min_duration"),
            max_duration=_opt_int(data, "max_duration"),
            day_of_week=None if days is None else frozenset(DayOfWeek(d) for d in days),
            reservation=None if reservation is None else ReservationRestriction(reservation),
        )
    except (TypeError, KeyError) as exc:
        raise ValueError(f"invalid tariff restrictions {dict(data)!r}: {exc}") from exc


def _component(data: Mapping[str, Any]) -> PriceComponent:
    try:
        kind = DimensionType(data["type"])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"price component needs a known type, got {data.get('type')!r}") from exc
    step = _opt_int(data, "step_size")
    return PriceComponent(
        type=kind,
        price=_decimal(data.get("price"), f"{kind} price"),
        vat=_opt_decimal(data, "vat"),
        step_size=1 if step is None else step,
    )


def tariff_from_ocpi(data: Mapping[str, Any]) -> Tariff:
    """Build a ``Tariff`` from an OCPI 2.2.1 Tariff object; ValueError says what is wrong."""
    elements_data = data.get("elements")
    if not isinstance(elements_data, list):
        raise ValueError("tariff needs an 'elements' list")
    elements = tuple(
        TariffElement(
            price_components=tuple(_component(c) for c in element.get("price_components") or ()),
            restrictions=_restrictions(element.get("restrictions")),
        )
        for element in elements_data
    )
    alt_text = {
        str(entry["language"]): str(entry["text"])
        for entry in data.get("tariff_alt_text") or ()
        if isinstance(entry, Mapping) and "language" in entry and "text" in entry
    }
    return Tariff(
        id=str(data.get("id", "")),
        currency=str(data.get("currency", "")),
        elements=elements,
        min_price=_price(data.get("min_price"), "min_price"),
        max_price=_price(data.get("max_price"), "max_price"),
        tax_included=TaxIncluded(data.get("tax_included", "NO")),
        alt_text=alt_text,
    )
