"""The pricing engine: what a session costs under a tariff, by the OCPI 2.2.1 rules.

Pure and deterministic: a ``Tariff``, the session's periods (UTC, with the
location's time zone for local-time restrictions) in, a ``PricedSession`` out.

How it works, in period boundaries only (no per-second loops):

1. Each input period is cut where any restriction could change: the local
   times of day named by the tariff (and local midnight when a day or date
   restriction exists) at every instant the wall clock shows them (twice in
   the hour repeated when DST ends, never in the hour skipped when it starts,
   plus the DST jump itself), the moments the session reaches a ``min/max_duration``,
   and the moments the cumulative energy reaches a ``min/max_kwh`` (energy is
   taken as delivered evenly within a period, so the moment is interpolated).
2. At the start of each piece, for each dimension the piece consumes (ENERGY
   if it delivered energy, TIME if charging, PARKING_TIME if not), the FIRST
   element whose restrictions all hold and that has a component of that type
   applies. No match: the dimension is free in that piece.
3. FLAT is billed once, from the first element with a FLAT component whose
   restrictions hold at the session start.
4. ``step_size`` (OCPI 2.2.1 mod_tariffs): it is applied once per session, to
   the session total of a dimension, using the step_size of the LAST component
   that priced that dimension; the extra quantity it adds is billed at that
   component's price. It is taken into account once for ENERGY and once for
   TIME and PARKING_TIME combined: when both were billed, only PARKING_TIME is
   rounded. FLAT ignores step_size.
5. VAT per component: incl = excl x (1 + vat/100); no vat means no VAT.
6. ``min_price`` / ``max_price`` clamp the totals (excl. with excl_vat, incl.
   with incl_vat; when incl_vat is not given, incl. follows excl. at the
   session's own VAT ratio).
7. Money is exact ``Decimal`` throughout (quantities are integers: Wh and
   microseconds); only the reported amounts are rounded, half up, to 4
   decimals, the precision of an OCPI ``number``. The totals are rounded from
   the exact sum, so per-dimension amounts may differ from the total by a
   rounding step. What is billed is rounded to whole cents, once, from the
   exact amounts (``exact_*``), by ``stekker.domain.billing``.

Not done yet: reservations (elements with a ``reservation`` restriction never
apply), OCPI 2.3.0 ``tax_included=YES``, and a restriction on current or power
for a period whose current or power is unknown does not hold.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

from stekker.domain.tariffs import (
    DayOfWeek,
    DimensionType,
    PriceComponent,
    Tariff,
    TariffRestrictions,
    TaxIncluded,
)

FOUR_PLACES = Decimal("0.0001")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_S = 1_000_000
_US_PER_HOUR = 3600 * _US_PER_S
_US_PER_DAY = 24 * _US_PER_HOUR
_WEEK_US = 7 * _US_PER_DAY
_EPOCH_DATE = date(1970, 1, 1)
_WH_PER_KWH = 1000
_HUNDRED = Decimal(100)
_WEEKDAYS = tuple(DayOfWeek)  # index = date.weekday()
_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class SessionPeriod:
    """A stretch of a session with one state: charging or parked (connected, not charging).

    ``start``/``end`` are timezone-aware; ``energy_wh`` is the energy delivered in
    it. ``max_current`` (A, summed over phases) and ``max_power`` (W) are the
    highest values seen in it, when known. ``free_parking`` marks a parked
    stretch inside the idle-fee grace: it counts as parking time but no
    PARKING_TIME component prices it.
    """

    start: datetime
    end: datetime
    energy_wh: int
    charging: bool
    max_current: Decimal | None = None
    max_power: Decimal | None = None
    free_parking: bool = False


@dataclass(frozen=True, slots=True)
class CdrDimension:
    """One measured volume of an OCPI charging period: ENERGY in kWh, TIME/PARKING_TIME in hours."""

    type: DimensionType
    volume: Decimal


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    """An OCPI CDR charging period: from ``start_date_time`` until the next one, one price per dimension.

    ``tariff_elements`` maps each billed dimension to the index (0-based) of the
    tariff element that priced it.
    """

    start_date_time: datetime
    dimensions: tuple[CdrDimension, ...]
    tariff_elements: tuple[tuple[DimensionType, int], ...]


@dataclass(frozen=True, slots=True)
class DimensionCost:
    """What one dimension of the session cost.

    ``quantity`` is what was consumed and ``billed_quantity`` what was billed
    after step_size rounding (kWh, hours, or 1 for FLAT), both exact.
    Amounts are rounded to 4 decimals; ``exact_*`` are the same amounts unrounded, from
    which a bill rounds to cents once (``stekker.domain.billing``).
    """

    type: DimensionType
    quantity: Decimal
    billed_quantity: Decimal
    excl_vat: Decimal
    incl_vat: Decimal
    exact_excl_vat: Decimal = Decimal(0)
    exact_incl_vat: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class PricedSession:
    """The priced session: totals, per-dimension costs and OCPI charging periods.

    ``capped_by`` is ``"min_price"`` or ``"max_price"`` when a bound changed the total.
    """

    currency: str
    total_excl_vat: Decimal
    total_incl_vat: Decimal
    dimensions: tuple[DimensionCost, ...]
    charging_periods: tuple[ChargingPeriod, ...]
    total_energy_kwh: Decimal
    total_time_hours: Decimal
    total_parking_time_hours: Decimal
    capped_by: str | None = None

    def dimension(self, kind: DimensionType) -> DimensionCost | None:
        """The cost of one dimension, if the session billed it."""
        for item in self.dimensions:
            if item.type is kind:
                return item
        return None


def with_parking_grace(periods: Sequence[SessionPeriod], grace: timedelta) -> list[SessionPeriod]:
    """The periods with the first ``grace`` of every run of consecutive not-charging periods
    marked ``free_parking``: the idle fee starts only after the grace (a short pause while
    charging, or a driver walking back to the car, costs nothing). A period that straddles
    the end of the grace is split there; its energy is shared in proportion to time, in whole Wh.
    """
    if grace <= timedelta(0):
        return list(periods)
    result: list[SessionPeriod] = []
    left = grace  # grace still unused in the current run of parked periods
    previous_end: datetime | None = None
    for period in periods:
        if period.charging or (previous_end is not None and period.start != previous_end):
            left = grace  # a charging period, or a gap, ends the run
        previous_end = period.end
        length = period.end - period.start
        if period.free_parking:
            # Fix (H3): a stretch already free uses up grace too, else applying the grace twice (or to
            # periods that come with free stretches) gave free parking twice as long.
            left = max(timedelta(0), left - length)
        if period.charging or left <= timedelta(0) or period.free_parking:
            result.append(period)
            continue
        if length <= left:
            result.append(replace(period, free_parking=True))
            left -= length
            continue
        cut = period.start + left
        free_energy = (
            period.energy_wh * _us_between(period.start, cut) // max(1, _us_between(period.start, period.end))
        )
        result.append(replace(period, end=cut, energy_wh=free_energy, free_parking=True))
        result.append(replace(period, start=cut, energy_wh=period.energy_wh - free_energy))
        left = timedelta(0)
    return result


def with_start_grace(periods: Sequence[SessionPeriod], grace: timedelta) -> list[SessionPeriod]:
    """The periods with the first ``grace`` of the not-charging stretch at the session's start
    marked ``free_parking``: parking is time connected and not charging AFTER the car charged.
    The moment between the start and the car drawing power (the handshake, milliseconds; a
    car waking up) is not parking; a car that has not started charging when the grace is over
    parks from then on. Periods after the first charging one are left as they are.
    """
    lead = 0
    while lead < len(periods) and not periods[lead].charging:
        lead += 1
    return [*with_parking_grace(periods[:lead], grace), *periods[lead:]]


def _us_between(start: datetime, end: datetime) -> int:
    delta = end - start
    return (delta.days * 86_400 + delta.seconds) * _US_PER_S + delta.microseconds


# --- validation ----------------------------------------------------------------------------------


def _us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US_PER_S + delta.microseconds


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime):
        raise ValueError(f"{what} must be a datetime, got {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} is a naive datetime ({moment.isoformat()}); give a UTC offset")


def _validate(tariff: Tariff, periods: Sequence[SessionPeriod], tz: tzinfo) -> None:
    if not isinstance(tz, tzinfo):
        raise ValueError(f"time zone must be a tzinfo (e.g. ZoneInfo('Europe/Amsterdam')), got {tz!r}")
    if tariff.tax_included is not TaxIncluded.NO:
        raise ValueError(f"tariffs with tax_included={tariff.tax_included} are not supported yet")
    if not periods:
        raise ValueError("a session needs at least one period")
    previous_end: datetime | None = None
    for number, period in enumerate(periods):
        _aware(period.start, f"period {number} start")
        _aware(period.end, f"period {number} end")
        if period.end < period.start:
            raise ValueError(
                f"period {number} ends before it starts "
                f"({period.end.isoformat()} < {period.start.isoformat()})"
            )
        if isinstance(period.energy_wh, bool) or not isinstance(period.energy_wh, int):
            raise ValueError(f"period {number} energy_wh must be an integer (Wh), got {period.energy_wh!r}")
        if period.energy_wh < 0:
            raise ValueError(f"period {number} has negative energy: {period.energy_wh} Wh")
        if period.energy_wh > 0 and period.end == period.start:
            raise ValueError(f"period {number} delivers {period.energy_wh} Wh in zero time")
        for name in ("max_current", "max_power"):
            value = getattr(period, name)
            if value is not None and value < 0:
                raise ValueError(f"period {number} has negative {name}: {value}")
        if previous_end is not None and period.start < previous_end:
            raise ValueError(
                f"period {number} starts before the previous period ends (overlap or out of order)"
            )
        previous_end = period.end


# --- the tariff, prepared once per call ----------------------------------------------------------


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def _kwh_to_wh(value: Decimal) -> int:
    wh = value * _WH_PER_KWH
    return int(wh.to_integral_value(rounding="ROUND_CEILING"))


@dataclass(frozen=True, slots=True)
class _Prepared:
    by_dimension: dict[DimensionType, tuple[tuple[int, PriceComponent, TariffRestrictions], ...]]
    times_of_day: tuple[time, ...]
    times_of_day_us: tuple[int, ...]  # the same, in µs since midnight
    duration_marks_us: tuple[int, ...]
    kwh_marks_wh: tuple[int, ...]


_prepared_cache: dict[int, tuple[Tariff, _Prepared]] = {}


def _prepared(tariff: Tariff) -> _Prepared:
    """``_prepare`` once per tariff object (tariffs are frozen; the cache keeps the object alive, so ids
    are not reused while cached). Bounded; cleared when full."""
    hit = _prepared_cache.get(id(tariff))
    if hit is not None and hit[0] is tariff:
        return hit[1]
    if len(_prepared_cache) >= _CACHE_SIZE:
        _prepared_cache.clear()
    prepared = _prepare(tariff)
    _prepared_cache[id(tariff)] = (tariff, prepared)
    return prepared


def _prepare(tariff: Tariff) -> _Prepared:
    by_dimension: dict[DimensionType, list[tuple[int, PriceComponent, TariffRestrictions]]] = {
        kind: [] for kind in DimensionType
    }
    tods: set[time] = set()
    durations: set[int] = set()
    kwhs: set[int] = set()
    for index, element in enumerate(tariff.elements):
        r = element.restrictions
        if r.reservation is not None:
            continue  # prices a reservation, not a charging session
        for kind in DimensionType:
            component = element.component(kind)
            if component is not None:
                by_dimension[kind].append((index, component, r))
        for moment in (r.start_time, r.end_time):
            if moment is not None:
                tods.add(moment)
        if r.day_of_week is not None or r.start_date is not None or r.end_date is not None:
            tods.add(time(0, 0))
        for seconds in (r.min_duration, r.max_duration):
            if seconds is not None and seconds > 0:
                durations.add(seconds * _US_PER_S)
        for kwh in (r.min_kwh, r.max_kwh):
            if kwh is not None and kwh > 0:
                kwhs.add(_kwh_to_wh(kwh))
    return _Prepared(
        by_dimension={kind: tuple(items) for kind, items in by_dimension.items()},
        times_of_day=tuple(sorted(tods)),
        times_of_day_us=tuple(
            ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_S + t.microsecond for t in sorted(tods)
        ),
        duration_marks_us=tuple(sorted(durations)),
        kwh_marks_wh=tuple(sorted(kwhs)),
    )


@dataclass(frozen=True, slots=True)
class _State:
    """What restrictions are evaluated against, at the start of a piece."""

    local: datetime
    energy_wh: int
    elapsed_us: int
    current: Decimal | None
    power_w: Decimal | None


def _in_time_window(now: time, start: time | None, end: time | None) -> bool:
    if start is not None and end is not None:
        if start == end:
            return True
        if start < end:
            return start <= now < end
        return now >= start or now < end  # wraps past midnight
    if start is not None:
        return now >= start
    if end is not None:
        return now < end
    return True


def _holds(r: TariffRestrictions, s: _State) -> bool:
    if r.start_time is not None or r.end_time is not None:
        if not _in_time_window(s.local.time().replace(tzinfo=None), r.start_time, r.end_time):
            return False
    today = s.local.date()
    if r.start_date is not None and today < r.start_date:
        return False
    if r.end_date is not None and today >= r.end_date:
        return False
    if r.day_of_week is not None and _WEEKDAYS[today.weekday()] not in r.day_of_week:
        return False
    if r.min_kwh is not None and s.energy_wh < r.min_kwh * _WH_PER_KWH:
        return False
    if r.max_kwh is not None and s.energy_wh >= r.max_kwh * _WH_PER_KWH:
        return False
    if r.min_duration is not None and s.elapsed_us < r.min_duration * _US_PER_S:
        return False
    if r.max_duration is not None and s.elapsed_us >= r.max_duration * _US_PER_S:
        return False
    if r.min_current is not None or r.max_current is not None:
        if s.current is None:
            return False
        if r.min_current is not None and s.current < r.min_current:
            return False
        if r.max_current is not None and s.current >= r.max_current:
            return False
    if r.min_power is not None or r.max_power is not None:
        if s.power_w is None:
            return False
        kw = s.power_w / _WH_PER_KWH
        if r.min_power is not None and kw < r.min_power:
            return False
        if r.max_power is not None and kw >= r.max_power:
            return False
    return True


def _select(prepared: _Prepared, kind: DimensionType, state: _State) -> tuple[int, PriceComponent] | None:
    for index, component, restrictions in prepared.by_dimension[kind]:
        if _holds(restrictions, state):
            return index, component
    return None


# --- cutting periods at restriction boundaries ---------------------------------------------------


def _time_marks(
    prepared: _Prepared, start_us: int, end_us: int, session_start_us: int, tz: tzinfo
) -> list[int]:
    """Instants strictly inside (start, end) where a time or duration restriction may change."""
    marks: set[int] = set()
    if prepared.times_of_day:
        # a local time of day on local date d lies inside the period only if d is one of its local dates
        first_local = _from_us(start_us).astimezone(tz)
        last_local = _from_us(end_us).astimezone(tz)
        first, last = first_local.date(), last_local.date()
        # Same UTC offset at both ends of a period shorter than a week: no DST switch inside (zones
        # switch months apart), so each local time of day is one instant. The common, fast case.
        steady = first_local.utcoffset() == last_local.utcoffset() and end_us - start_us < _WEEK_US
        if steady:
            # one offset throughout: the wall clock shows ``moment`` on ``day`` at local midnight + moment
            # - offset, no time zone lookups needed
            utc_offset = first_local.utcoffset() or timedelta(0)
            offset_us = (utc_offset.days * 86_400 + utc_offset.seconds) * _US_PER_S + utc_offset.microseconds
            day_us = (first - _EPOCH_DATE).days * _US_PER_DAY
            for _ in range((last - first).days + 1):
                for moment_us in prepared.times_of_day_us:
                    at = day_us + moment_us - offset_us
                    if start_us < at < end_us:
                        marks.add(at)
                day_us += _US_PER_DAY
        day = first
        while not steady and day <= last:
            for moment in prepared.times_of_day:
                local = datetime.combine(day, moment, tzinfo=tz)
                at = _us(local)
                # Fix (H3): restrictions read the wall clock, so a boundary is every instant the wall clock
                # shows ``moment``: twice in the repeated hour when DST ends (fold 0 then 1), never in the
                # hour skipped when it starts (fold 0 is then the later instant, and taking it priced up to
                # an hour after the jump at the old rate); the jump itself is added below.
                again = _us(local.replace(fold=1))
                for instant in (at, again) if at < again else (at,) if at == again else ():
                    if start_us < instant < end_us:
                        marks.add(instant)
            day += timedelta(days=1)
        if not steady:
            marks.update(_offset_changes(start_us, end_us, first, last, tz))
    for offset in prepared.duration_marks_us:
        at = session_start_us + offset
        if start_us < at < end_us:
            marks.add(at)
    return sorted(marks)


def _offset_changes(start_us: int, end_us: int, first: date, last: date, tz: tzinfo) -> list[int]:
    """Instants strictly inside (start, end) where the UTC offset of ``tz`` changes (DST): the wall
    clock jumps there, so a time-of-day restriction may start or stop holding. Probed at each local
    midnight (zones change their offset at most once a day), then found by bisection."""
    probes = [start_us]
    day = first + timedelta(days=1)
    while day <= last:
        probes.append(_us(datetime.combine(day, time(0, 0), tzinfo=tz)))
        day += timedelta(days=1)
    probes.append(end_us)
    changes: list[int] = []
    for low, high in pairwise(probes):
        before = _from_us(low).astimezone(tz).utcoffset()
        if high <= low or _from_us(high).astimezone(tz).utcoffset() == before:
            continue
        while high - low > 1:  # invariant: the offset at low is ``before``, at high it is not
            middle = (low + high) // 2
            if _from_us(middle).astimezone(tz).utcoffset() == before:
                low = middle
            else:
                high = middle
        if start_us < high < end_us:
            changes.append(high)
    return changes


@dataclass(slots=True)
class _Piece:
    start_us: int
    end_us: int
    energy_wh: int
    charging: bool
    choice: tuple[tuple[DimensionType, int, PriceComponent], ...]


def _pieces(
    prepared: _Prepared, period: SessionPeriod, session_start_us: int, energy_before: int, tz: tzinfo
) -> list[_Piece]:
    start_us, end_us = _us(period.start), _us(period.end)
    marks = _time_marks(prepared, start_us, end_us, session_start_us, tz)
    pieces: list[_Piece] = []
    t, cum, remaining = start_us, energy_before, period.energy_wh
    mark_index = 0
    while t < end_us:
        while mark_index < len(marks) and marks[mark_index] <= t:
            mark_index += 1
        nxt = marks[mark_index] if mark_index < len(marks) else end_us
        energy: int | None = None
        if remaining > 0 and prepared.kwh_marks_wh:
            k = bisect.bisect_right(prepared.kwh_marks_wh, cum)
            if k < len(prepared.kwh_marks_wh):
                threshold = prepared.kwh_marks_wh[k]
                needed = threshold - cum
                if needed < remaining:
                    at = t + _ceil_div(needed * (end_us - t), remaining)
                    if at < nxt or (at == nxt and nxt < end_us):
                        nxt, energy = at, needed
        if nxt == end_us:
            energy = remaining
        elif energy is None:
            energy = remaining * (nxt - t) // (end_us - t)
        state = _State(
            local=_from_us(t).astimezone(tz),
            energy_wh=cum,
            elapsed_us=t - session_start_us,
            current=period.max_current,
            power_w=period.max_power,
        )
        kinds = []
        if period.charging:
            kinds.append(DimensionType.TIME)
        elif not period.free_parking:
            kinds.append(DimensionType.PARKING_TIME)
        if energy > 0:
            kinds.insert(0, DimensionType.ENERGY)
        choice = []
        for kind in kinds:
            selected = _select(prepared, kind, state)
            if selected is not None:
                choice.append((kind, selected[0], selected[1]))
        piece = _Piece(t, nxt, energy, period.charging, tuple(choice))
        if pieces and pieces[-1].choice == piece.choice:
            pieces[-1].end_us = nxt  # same prices: one OCPI charging period
            pieces[-1].energy_wh += energy
        else:
            pieces.append(piece)
        t, cum, remaining = nxt, cum + energy, remaining - energy
    return pieces


# --- money ---------------------------------------------------------------------------------------


def _unit(kind: DimensionType) -> int:
    return _WH_PER_KWH if kind is DimensionType.ENERGY else _US_PER_HOUR


def _step_unit(kind: DimensionType) -> int:
    return 1 if kind is DimensionType.ENERGY else _US_PER_S


def _with_vat(amount: Decimal, component: PriceComponent) -> Decimal:
    return amount if component.vat is None else amount * (1 + component.vat / _HUNDRED)


def _round(value: Decimal) -> Decimal:
    return value.quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)


def price_session(tariff: Tariff, periods: Sequence[SessionPeriod], tz: tzinfo) -> PricedSession:
    """Price a session under ``tariff``; ``tz`` is the location's time zone for local restrictions.

    Raises ValueError on naive datetimes, periods ending before they start,
    overlapping periods, negative energy, or an unsupported tariff.
    """
    _validate(tariff, periods, tz)
    prepared = _prepared(tariff)
    session_start_us = _us(periods[0].start)

    pieces: list[_Piece] = []
    energy_so_far = 0
    for period in periods:
        pieces.extend(_pieces(prepared, period, session_start_us, energy_so_far, tz))
        energy_so_far += period.energy_wh

    # quantity (Wh or µs) per (dimension, element index), and the last component of each dimension
    usage: dict[tuple[DimensionType, int], tuple[PriceComponent, int]] = {}
    last: dict[DimensionType, PriceComponent] = {}
    consumed = {DimensionType.ENERGY: 0, DimensionType.TIME: 0, DimensionType.PARKING_TIME: 0}
    for piece in pieces:
        duration = piece.end_us - piece.start_us
        consumed[DimensionType.ENERGY] += piece.energy_wh
        consumed[DimensionType.TIME if piece.charging else DimensionType.PARKING_TIME] += duration
        for kind, index, component in piece.choice:
            quantity = piece.energy_wh if kind is DimensionType.ENERGY else duration
            if quantity <= 0:
                continue
            _, before = usage.get((kind, index), (component, 0))
            usage[(kind, index)] = (component, before + quantity)
            last[kind] = component

    # step_size: once for ENERGY, once for TIME and PARKING_TIME combined (PARKING_TIME if billed).
    # Parking inside the grace counts as parking here, so a grace never lifts the TIME rounding
    # back in: a grace must never make a bill higher.
    parked_free = any(p.free_parking and p.end > p.start for p in periods)
    rounded = [DimensionType.ENERGY]
    rounded.append(
        DimensionType.PARKING_TIME
        if DimensionType.PARKING_TIME in last or parked_free
        else DimensionType.TIME
    )

    dimension_costs: list[DimensionCost] = []
    total_excl = Decimal(0)
    total_incl = Decimal(0)

    first_state = _State(periods[0].start.astimezone(tz), 0, 0, periods[0].max_current, periods[0].max_power)
    flat = _select(prepared, DimensionType.FLAT, first_state)
    if flat is not None:
        component = flat[1]
        excl, incl = component.price, _with_vat(component.price, component)
        total_excl += excl
        total_incl += incl
        dimension_costs.append(
            DimensionCost(DimensionType.FLAT, Decimal(1), Decimal(1), _round(excl), _round(incl), excl, incl)
        )

    for kind in (DimensionType.ENERGY, DimensionType.TIME, DimensionType.PARKING_TIME):
        if kind not in last:
            continue
        unit = _unit(kind)
        billed_units = 0
        excl = Decimal(0)
        incl = Decimal(0)
        for (used_kind, _index), (component, quantity) in usage.items():
            if used_kind is not kind:
                continue
            amount = component.price * quantity / unit
            excl += amount
            incl += _with_vat(amount, component)
            billed_units += quantity
        priced_units = billed_units
        final = last[kind]
        if kind in rounded and final.step_size > 1:
            step = final.step_size * _step_unit(kind)
            extra = _ceil_div(billed_units, step) * step - billed_units
            if extra:
                amount = final.price * extra / unit
                excl += amount
                incl += _with_vat(amount, final)
                billed_units += extra
        total_excl += excl
        total_incl += incl
        dimension_costs.append(
            DimensionCost(
                kind,
                Decimal(priced_units) / unit,
                Decimal(billed_units) / unit,
                _round(excl),
                _round(incl),
                excl,
                incl,
            )
        )

    capped_by: str | None = None
    for bound, name, too_far in (
        (tariff.min_price, "min_price", operator.lt),
        (tariff.max_price, "max_price", operator.gt),
    ):
        if bound is None:
            continue
        new_excl = bound.excl_vat if too_far(total_excl, bound.excl_vat) else total_excl
        if bound.incl_vat is not None:
            new_incl = bound.incl_vat if too_far(total_incl, bound.incl_vat) else total_incl
        elif new_excl != total_excl:
            new_incl = new_excl * total_incl / total_excl if total_excl else new_excl
        else:
            new_incl = total_incl
        if (new_excl, new_incl) != (total_excl, total_incl):
            capped_by = name
            total_excl, total_incl = new_excl, new_incl

    charging_periods = tuple(
        ChargingPeriod(
            start_date_time=_from_us(piece.start_us),
            dimensions=_cdr_dimensions(piece),
            tariff_elements=tuple((kind, index) for kind, index, _ in piece.choice),
        )
        for piece in pieces
    )
    return PricedSession(
        currency=tariff.currency,
        total_excl_vat=_round(total_excl),
        total_incl_vat=_round(total_incl),
        dimensions=tuple(dimension_costs),
        charging_periods=charging_periods,
        total_energy_kwh=Decimal(consumed[DimensionType.ENERGY]) / _WH_PER_KWH,
        total_time_hours=_round(Decimal(consumed[DimensionType.TIME]) / _US_PER_HOUR),
        total_parking_time_hours=_round(Decimal(consumed[DimensionType.PARKING_TIME]) / _US_PER_HOUR),
        capped_by=capped_by,
    )


def _cdr_dimensions(piece: _Piece) -> tuple[CdrDimension, ...]:
    """The OCPI dimensions of a piece; volumes rounded to 4 decimals (OCPI ``number``)."""
    hours = _round(Decimal(piece.end_us - piece.start_us) / _US_PER_HOUR)
    time_kind = DimensionType.TIME if piece.charging else DimensionType.PARKING_TIME
    return (
        CdrDimension(DimensionType.ENERGY, Decimal(piece.energy_wh) / _WH_PER_KWH),
        CdrDimension(time_kind, hours),
    )
