"""Properties of the pricing engine (issue 5), checked with hypothesis on generated tariffs and sessions.

Deterministic (``derandomize=True``, no example database), sized to run in a few seconds.

What holds for every tariff and every session:

- no amount is negative, and VAT never makes an amount smaller;
- the total is never above the tariff's ``max_price`` nor below its ``min_price``, excl. VAT and
  incl. VAT separately when the bound gives both (OCPI 2.2.1: "they both apply", as VAT may be
  built up of different parts). The engine applies ``min_price`` to every session, even one in
  which nothing was consumed; whether such a session gets a CDR at all is the CDR code's call;
- after ``apply_cap`` never above the municipal cap, never above the engine's own total;
- step_size: the billed quantity of the rounded dimension is a multiple of the step of the last
  component that priced it and at least the consumed quantity;
- the total is the sum of the dimension costs within rounding (when no min/max bound changed it);
- the OCPI charging periods cover the session exactly: they start at the session start, in order,
  and their volumes add up to the session's energy and times;
- splitting a period in two at any instant changes nothing (restrictions are evaluated at every
  boundary the wall clock crosses, DST included);
- ``with_parking_grace`` keeps every instant and every Wh, frees at most ``grace`` of each run of
  parking, and applying it twice is applying it once; a grace never makes a session cost more;
- issue 16: a session that charges from (just after) its start to its stop pays no idle fee; what
  is billed (``stekker.domain.billing``) is whole cents, its lines add up to its totals excl. and
  incl. VAT whatever bound applies, and it is never above the cap nor the tariff's max_price.

Monotonicity holds only for some tariffs; see ``test_monotone_in_energy`` and
``test_monotone_in_time`` for exactly which, and ``test_where_monotonicity_ends`` for a concrete
example of every exception.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stekker.domain.billing import bill
from stekker.domain.charging_periods import SessionWindow, StateChange, derive_periods
from stekker.domain.price_caps import PriceCapRule, apply_cap
from stekker.domain.pricing import PricedSession, SessionPeriod, price_session, with_parking_grace
from stekker.domain.tariffs import (
    DayOfWeek,
    DimensionType,
    Price,
    PriceComponent,
    Tariff,
    TariffElement,
    TariffRestrictions,
    tariff_from_ocpi,
)

AMS = ZoneInfo("Europe/Amsterdam")
D = Decimal
ENERGY, TIME, PARKING, FLAT = (
    DimensionType.ENERGY,
    DimensionType.TIME,
    DimensionType.PARKING_TIME,
    DimensionType.FLAT,
)
HALF_STEP = D("0.00005")  # half of the 4th decimal every amount is rounded to

PROPERTIES = settings(
    deadline=None,
    max_examples=100,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Local times of day the generated tariffs use: the DST hours (02:00-03:00) on purpose.
TIMES_OF_DAY = [time(0), time(2), time(2, 30), time(3), time(7), time(9), time(17), time(20), time(23)]
# Amsterdam DST switches (UTC): 2025-03-30 01:00, 2025-10-26 01:00, 2026-03-29 01:00, 2026-10-25 01:00
DST_SWITCHES = [datetime(2025, 3, 30, 1, tzinfo=UTC), datetime(2025, 10, 26, 1, tzinfo=UTC)]
DST_SWITCHES += [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)]
STEPS = [0, 1, 1, 60, 300, 900, 1000, 1800]

# --- strategies ----------------------------------------------------------------------------------


def money(high: int = 500) -> st.SearchStrategy[Decimal]:
    """An amount in cents as Decimal (0.00 .. high/100)."""
    return st.integers(0, high).map(lambda cents: D(cents) / 100)


VATS = st.sampled_from([None, D(0), D(9), D("5.2"), D(21)])
# strategies are built once: building them inside the composites costs more than the pricing
PRICES = money()
BOUND = money(3000)
KINDS = st.lists(st.sampled_from(list(DimensionType)), min_size=1, max_size=4, unique=True)
TIME_OF_DAY = st.none() | st.sampled_from(TIMES_OF_DAY)
DAYS = st.sets(st.sampled_from(list(DayOfWeek)), min_size=1)
DURATION = st.integers(0, 4 * 3600)
AMPS = st.integers(0, 64)
KW = st.integers(0, 50)
DAY_OFFSET = st.integers(0, 700)
HALF_KWH = st.integers(0, 30)
ONE_IN = {n: st.integers(0, n - 1) for n in (3, 4, 5, 7)}
BOOL = st.booleans()


@st.composite
def restrictions(draw: st.DrawFn, *, kwh: bool = True, other: bool = True) -> TariffRestrictions:
    """Any mix of OCPI restrictions; ``kwh`` allows min/max_kwh, ``other`` all the rest."""
    values: dict[str, object] = {}
    if other and draw(BOOL):
        values["start_time"] = draw(TIME_OF_DAY)
        values["end_time"] = draw(TIME_OF_DAY)
    if other and draw(ONE_IN[4]) == 0:
        values["day_of_week"] = frozenset(draw(DAYS))
    if other and draw(ONE_IN[4]) == 0:
        values["min_duration" if draw(BOOL) else "max_duration"] = draw(DURATION)
    if other and draw(ONE_IN[5]) == 0:
        values["min_current" if draw(BOOL) else "max_current"] = D(draw(AMPS))
    if other and draw(ONE_IN[5]) == 0:
        values["min_power" if draw(BOOL) else "max_power"] = D(draw(KW))
    if other and draw(ONE_IN[7]) == 0:
        day = datetime(2025, 1, 1) + timedelta(days=draw(DAY_OFFSET))
        values["start_date" if draw(BOOL) else "end_date"] = day.date()
    if kwh and draw(ONE_IN[3]) == 0:
        values["min_kwh" if draw(BOOL) else "max_kwh"] = D(draw(HALF_KWH)) / 2
    return TariffRestrictions(**values)  # type: ignore[arg-type]


ELEMENT_COUNT = st.integers(1, 4)
_step_strategies: dict[tuple[int, ...], st.SearchStrategy[int]] = {}


def _steps(steps: tuple[int, ...]) -> st.SearchStrategy[int]:
    if steps not in _step_strategies:
        _step_strategies[steps] = st.sampled_from(steps)
    return _step_strategies[steps]


@st.composite
def tariffs(
    draw: st.DrawFn,
    *,
    steps: Sequence[int] = STEPS,
    kwh_on: Callable[[DimensionType], bool] = lambda kind: True,
    other_on: Callable[[DimensionType], bool] = lambda kind: True,
    bounds: bool = True,
    bounds_incl: bool | None = None,
    energy_steps: Sequence[int] | None = None,
) -> Tariff:
    """A tariff of 1-4 elements. An element gets kWh restrictions only if ``kwh_on`` allows them for
    every dimension it prices, and other restrictions only if ``other_on`` does."""
    elements = []
    step_sizes = _steps(tuple(steps))
    energy_step_sizes = step_sizes if energy_steps is None else _steps(tuple(energy_steps))
    for _ in range(draw(ELEMENT_COUNT)):
        kinds = draw(KINDS)
        components = tuple(
            PriceComponent(
                kind, draw(PRICES), draw(VATS), draw(energy_step_sizes if kind is ENERGY else step_sizes)
            )
            for kind in kinds
        )
        allow_kwh = all(kwh_on(kind) for kind in kinds)
        allow_other = all(other_on(kind) for kind in kinds)
        elements.append(TariffElement(components, draw(restrictions(kwh=allow_kwh, other=allow_other))))
    min_price = max_price = None
    if bounds:
        with_incl = draw(BOOL) if bounds_incl is None else bounds_incl
        low, high = sorted((draw(BOUND), draw(BOUND)))
        low_incl, high_incl = low * D("1.1"), high * D("1.1")
        if draw(BOOL):
            min_price = Price(low, low_incl if with_incl else None)
        if draw(BOOL):
            max_price = Price(high, high_incl if with_incl else None)
    return Tariff("generated", "EUR", tuple(elements), min_price, max_price)


NEAR_SWITCH = st.integers(-3 * 3600, 3 * 3600)
SWITCH = st.sampled_from(DST_SWITCHES)
IN_TWO_YEARS = st.integers(0, 730 * 86400)
SECONDS = st.sampled_from([0, 1, 59, 60, 900]) | st.integers(0, 8 * 3600)
WH = st.integers(0, 60_000)
CURRENT = st.none() | st.integers(0, 64).map(D)
POWER = st.none() | st.integers(0, 50_000).map(D)
GRACE = st.integers(0, 3 * 3600)


@st.composite
def starts(draw: st.DrawFn) -> datetime:
    """Any second of 2025-2026, or one within three hours of an Amsterdam DST switch."""
    if draw(BOOL):
        return draw(SWITCH) + timedelta(seconds=draw(NEAR_SWITCH))
    return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(IN_TWO_YEARS))


@st.composite
def periods(
    draw: st.DrawFn, start: datetime, *, count: tuple[int, int] = (1, 4), energy: bool = True
) -> list[SessionPeriod]:
    """Contiguous periods from ``start``: charging (with energy, current and power) or parked."""
    result = []
    moment = start
    for _ in range(draw(st.integers(*count))):
        seconds = draw(SECONDS)
        charging = draw(BOOL)
        wh = draw(WH) if charging and seconds and energy else 0
        current = draw(CURRENT)
        power = draw(POWER)
        free = not charging and draw(ONE_IN[5]) == 0
        end = moment + timedelta(seconds=seconds)
        result.append(SessionPeriod(moment, end, wh, charging, current, power, free))
        moment = end
    return result


@st.composite
def sessions(draw: st.DrawFn, *, count: tuple[int, int] = (1, 4), energy: bool = True) -> list[SessionPeriod]:
    return draw(periods(draw(starts()), count=count, energy=energy))


def price(tariff: Tariff, session: Sequence[SessionPeriod]) -> PricedSession:
    return price_session(tariff, session, AMS)


def _seconds(periods: Sequence[SessionPeriod], charging: bool) -> Decimal:
    total = sum(((p.end - p.start) for p in periods if p.charging is charging), timedelta(0))
    return D(total // timedelta(microseconds=1)) / 1_000_000


# --- properties that hold for every tariff -------------------------------------------------------


@PROPERTIES
@given(tariffs(), sessions())
def test_never_negative_and_within_min_and_max_price(tariff: Tariff, session: list[SessionPeriod]) -> None:
    result = price(tariff, session)
    assert result.total_excl_vat >= 0 and result.total_incl_vat >= 0
    for item in result.dimensions:
        assert 0 <= item.excl_vat <= item.incl_vat
        assert item.quantity >= 0
    if tariff.max_price is not None:
        assert result.total_excl_vat <= tariff.max_price.excl_vat
        if tariff.max_price.incl_vat is not None:
            assert result.total_incl_vat <= tariff.max_price.incl_vat
    if tariff.min_price is not None:
        assert result.total_excl_vat >= tariff.min_price.excl_vat
        if tariff.min_price.incl_vat is not None:
            assert result.total_incl_vat >= tariff.min_price.incl_vat
    if result.capped_by is None:
        assert result.total_excl_vat <= result.total_incl_vat


@PROPERTIES
@given(tariffs(), sessions())
def test_step_size_of_the_last_component_is_respected(tariff: Tariff, session: list[SessionPeriod]) -> None:
    result = price(tariff, session)
    units = {ENERGY: D(1000), TIME: D(3600), PARKING: D(3600)}  # Wh and seconds per kWh and hour
    last: dict[DimensionType, int] = {}
    for period in result.charging_periods:
        for kind, index in period.tariff_elements:
            last[kind] = index
    # TIME and PARKING_TIME are rounded once, together: on PARKING_TIME when it was billed or
    # the session parked inside the grace (free parking counts as parking for this rule)
    parked_free = any(p.free_parking and p.end > p.start for p in session)
    rounded = {ENERGY, PARKING if PARKING in last or parked_free else TIME}
    for item in result.dimensions:
        if item.type is FLAT:
            assert item.quantity == item.billed_quantity == 1
            continue
        assert item.billed_quantity >= item.quantity
        component = tariff.elements[last[item.type]].component(item.type)
        assert component is not None
        if item.type in rounded and component.step_size > 1:
            # hours are exact fractions of µs, so back to whole Wh / seconds before the modulo
            billed = (item.billed_quantity * units[item.type]).quantize(D("0.001"))
            assert billed % component.step_size == 0
        else:
            assert item.billed_quantity == item.quantity


@PROPERTIES
@given(tariffs(), sessions())
def test_total_is_the_sum_of_the_dimensions(tariff: Tariff, session: list[SessionPeriod]) -> None:
    result = price(tariff, session)
    if result.capped_by is not None:
        return  # a min/max bound replaced the total; the dimensions still say what was consumed
    slack = HALF_STEP * (len(result.dimensions) + 1)
    assert abs(result.total_excl_vat - sum(d.excl_vat for d in result.dimensions)) <= slack
    assert abs(result.total_incl_vat - sum(d.incl_vat for d in result.dimensions)) <= slack


@PROPERTIES
@given(tariffs(), sessions())
def test_charging_periods_cover_the_session_exactly(tariff: Tariff, session: list[SessionPeriod]) -> None:
    result = price(tariff, session)
    starts_at = [p.start_date_time for p in result.charging_periods]
    assert starts_at == sorted(set(starts_at))
    if not starts_at:  # nothing but zero-length periods
        assert all(p.start == p.end for p in session)
        return
    first_real = next(p for p in session if p.end > p.start)
    assert starts_at[0] == first_real.start
    ends = [*starts_at[1:], session[-1].end]
    for period, end in zip(result.charging_periods, ends, strict=True):
        hours = {d.type: d.volume for d in period.dimensions if d.type is not ENERGY}
        assert len(hours) == 1  # TIME or PARKING_TIME, never both
        assert abs(next(iter(hours.values())) - D((end - period.start_date_time).total_seconds()) / 3600) <= (
            HALF_STEP
        )
    energy = sum(d.volume for p in result.charging_periods for d in p.dimensions if d.type is ENERGY)
    assert energy == result.total_energy_kwh == D(sum(p.energy_wh for p in session)) / 1000
    assert abs(result.total_time_hours - _seconds(session, True) / 3600) <= HALF_STEP
    assert abs(result.total_parking_time_hours - _seconds(session, False) / 3600) <= HALF_STEP


@PROPERTIES
@given(tariffs(), sessions(energy=False), st.data())
def test_splitting_a_period_changes_nothing(
    tariff: Tariff, session: list[SessionPeriod], data: st.DataObject
) -> None:
    # Without energy (energy is shared over a period in whole Wh, so a split may move a Wh): cutting a
    # period anywhere must not change a price, as restrictions are evaluated at every wall-clock
    # boundary. This is what found the DST bug (a time of day in the skipped or repeated hour).
    number = data.draw(st.integers(0, len(session) - 1))
    period = session[number]
    length = int((period.end - period.start).total_seconds())
    if length < 2:
        return
    cut = period.start + timedelta(seconds=data.draw(st.integers(1, length - 1)))
    split = [*session[:number], replace(period, end=cut), replace(period, start=cut), *session[number + 1 :]]
    whole, parts = price(tariff, session), price(tariff, split)
    assert (parts.total_excl_vat, parts.total_incl_vat) == (whole.total_excl_vat, whole.total_incl_vat)
    assert parts.dimensions == whole.dimensions


DST_TIMES = st.sampled_from(
    [time(1, 59), time(2), time(2, 15), time(2, 30), time(2, 59), time(3), time(3, 30)]
)


@PROPERTIES
@given(
    DST_TIMES,
    DST_TIMES,
    st.sampled_from([TIME, PARKING]),
    SWITCH,
    st.integers(1, 2 * 3600),
    st.integers(1, 2 * 3600),
    st.data(),
)
def test_splitting_near_a_dst_switch_changes_nothing(
    start_time: time,
    end_time: time,
    kind: DimensionType,
    switch: datetime,
    before: int,
    after: int,
    data: st.DataObject,
) -> None:
    # The same property aimed at the hours the clock skips or repeats: a period across the switch,
    # a window with a boundary in those hours, then a dearer fallback.
    tariff = Tariff(
        "dst",
        "EUR",
        (
            TariffElement((PriceComponent(kind, D(1)),), TariffRestrictions(start_time, end_time)),
            TariffElement((PriceComponent(kind, D(3)),)),
        ),
    )
    start, end = switch - timedelta(seconds=before), switch + timedelta(seconds=after)
    cut = start + timedelta(seconds=data.draw(st.integers(1, before + after - 1)))
    charging = kind is TIME
    whole = price(tariff, [SessionPeriod(start, end, 0, charging)])
    parts = price(tariff, [SessionPeriod(start, cut, 0, charging), SessionPeriod(cut, end, 0, charging)])
    assert parts.dimensions == whole.dimensions


CAPS = st.builds(
    PriceCapRule,
    currency=st.just("EUR"),
    max_per_kwh=st.none() | money(100),
    max_per_session=st.none() | money(5000),
    max_parking_per_hour=st.none() | money(1000),
)


@PROPERTIES
@given(tariffs(), sessions(), CAPS)
def test_never_above_the_municipal_cap(
    tariff: Tariff, session: list[SessionPeriod], cap: PriceCapRule
) -> None:
    priced = price(tariff, session)
    outcome = apply_cap(priced, cap)
    # never raised, never negative, excl. never above incl.
    assert 0 <= outcome.total_excl_vat <= priced.total_excl_vat
    assert 0 <= outcome.total_incl_vat <= priced.total_incl_vat
    if outcome.total_incl_vat < priced.total_incl_vat:
        assert outcome.capped_by in ("cap.per_session", "cap.per_kwh", "cap.parking")
        assert outcome.total_excl_vat <= outcome.total_incl_vat
    else:
        assert outcome.capped_by == priced.capped_by
    if cap.max_per_session is not None:
        assert outcome.total_incl_vat <= cap.max_per_session
    parking = priced.dimension(PARKING)
    parking_incl = D(0) if parking is None else min(parking.incl_vat, priced.total_incl_vat)
    charging_allowed = priced.total_incl_vat - parking_incl
    if cap.max_per_kwh is not None:
        charging_allowed = min(charging_allowed, cap.max_per_kwh * priced.total_energy_kwh)
    parking_allowed = parking_incl
    if cap.max_parking_per_hour is not None:
        parking_allowed = min(parking_allowed, cap.max_parking_per_hour * priced.total_parking_time_hours)
    assert outcome.total_incl_vat <= charging_allowed + parking_allowed
    assert apply_cap(priced, None).total_incl_vat == priced.total_incl_vat


# --- monotonicity --------------------------------------------------------------------------------


def _more_energy(session: list[SessionPeriod], number: int, extra: int) -> list[SessionPeriod]:
    period = session[number]
    return [*session[:number], replace(period, energy_wh=period.energy_wh + extra), *session[number + 1 :]]


# ENERGY priced either by time (any restriction but kWh) or by kWh tiers alone, never a mix; no other
# dimension depends on kWh; every ENERGY step 1 (TIME/PARKING steps do not matter).
ENERGY_MONOTONE_TARIFFS = tariffs(kwh_on=lambda kind: False, bounds_incl=True, energy_steps=[1]) | tariffs(
    kwh_on=lambda kind: kind is ENERGY,
    other_on=lambda kind: kind is not ENERGY,
    bounds_incl=True,
    energy_steps=[1],
)


@PROPERTIES
@given(ENERGY_MONOTONE_TARIFFS, sessions(), st.data())
def test_monotone_in_energy(tariff: Tariff, session: list[SessionPeriod], data: st.DataObject) -> None:
    """More energy in a period never costs less, for tariffs where (all three needed):

    - ENERGY is priced by time-like restrictions (time of day, day, duration, current, power, date)
      or by kWh tiers alone (elements with only min/max_kwh), not by elements that mix the two nor
      by a mix of such elements: energy is spread evenly over a period, so more energy crosses a kWh
      threshold earlier, and a cheap window before it then "uses up" the tier;
    - no TIME, PARKING_TIME or FLAT price depends on kWh;
    - every ENERGY component has step_size 1 (the step of the LAST component rounds the total, and
      crossing into a tier with a smaller step drops the rounding of the tier before);
    - incl. VAT also needs the min/max bounds to give incl_vat (without it incl. follows excl. at the
      session's VAT ratio, which more low-VAT energy lowers).

    ``test_where_monotonicity_ends`` shows each exception.
    """
    number = data.draw(st.integers(0, len(session) - 1))
    if session[number].end == session[number].start:
        return
    extra = data.draw(st.integers(1, 20_000))
    base, more = price(tariff, session), price(tariff, _more_energy(session, number, extra))
    assert more.total_excl_vat >= base.total_excl_vat
    assert more.total_incl_vat >= base.total_incl_vat


@st.composite
def _one_element_tariffs(draw: st.DrawFn) -> Tariff:
    # one unrestricted element, any steps, but TIME not rounded when PARKING_TIME can be billed
    kinds = draw(KINDS)
    components = []
    for kind in kinds:
        step = 1 if kind is TIME and PARKING in kinds else draw(_steps(tuple(STEPS)))
        components.append(PriceComponent(kind, draw(PRICES), draw(VATS), step))
    return Tariff("generated", "EUR", (TariffElement(tuple(components)),))


TIME_MONOTONE_TARIFFS = tariffs(steps=[0, 1], bounds_incl=True) | _one_element_tariffs()


@PROPERTIES
@given(TIME_MONOTONE_TARIFFS, sessions(), st.data())
def test_monotone_in_time(tariff: Tariff, session: list[SessionPeriod], data: st.DataObject) -> None:
    """Staying longer (a charging or parked period added at the end) never costs less, for tariffs
    where every step_size is 1, or where each dimension has one unrestricted component and TIME has
    step_size 1 when PARKING_TIME is priced. In general it can, by the OCPI step_size rules alone:

    - the total of a dimension is rounded with the step of its LAST component: a session that runs
      into a window with a smaller step loses the rounding of the window before (tariff 14 at 17:00);
    - TIME is rounded only when no PARKING_TIME is billed: a little billed parking at the end drops
      the rounding of the charging time (``test_combined_time_step_size_is_not_monotone`` in
      test_pricing.py);
    - time inserted before other periods moves them to other times of day (charging longer pushes
      the parking into a free evening), so only time at the END is compared here.
    """
    seconds = data.draw(st.integers(1, 4 * 3600))
    charging = data.draw(st.booleans())
    wh = data.draw(st.integers(0, 20_000)) if charging else 0
    last = session[-1]
    extra = SessionPeriod(last.end, last.end + timedelta(seconds=seconds), wh, charging, last.max_current)
    base, longer = price(tariff, session), price(tariff, [*session, extra])
    assert longer.total_excl_vat >= base.total_excl_vat
    assert longer.total_incl_vat >= base.total_incl_vat


def _ocpi(*elements: dict[str, object], **extra: object) -> Tariff:
    return tariff_from_ocpi({"id": "x", "currency": "EUR", "elements": list(elements), **extra})


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _charge(start: str, end: str, wh: int = 0) -> SessionPeriod:
    return SessionPeriod(_at(start), _at(end), wh, True)


def test_where_monotonicity_ends() -> None:
    # Each exception named in the two docstrings above, with numbers. Times UTC, Amsterdam is UTC+1.
    # 1. Time, step of the last component: 00-17 TIME 1.20/h step 1800, 17-20 2.40/h step 900.
    #    15:59:59-16:00:00 UTC: 1 s, rounded to 1800 s at 1.20/h = 0.60.
    #    One second longer: 1 s at 1.20 + 1 s at 2.40 + 898 s (to 900, the LAST step) at 2.40
    #    = (1.20 + 2.40 + 2155.20) / 3600 = 0.59967 -> 0.5997.
    steps = _ocpi(
        {
            "price_components": [{"type": "TIME", "price": 1.2, "step_size": 1800}],
            "restrictions": {"start_time": "00:00", "end_time": "17:00"},
        },
        {
            "price_components": [{"type": "TIME", "price": 2.4, "step_size": 900}],
            "restrictions": {"start_time": "17:00", "end_time": "20:00"},
        },
    )
    assert price(steps, [_charge("2025-01-06 15:59:59", "2025-01-06 16:00:00")]).total_excl_vat == D("0.6")
    assert price(steps, [_charge("2025-01-06 15:59:59", "2025-01-06 16:00:01")]).total_excl_vat == D("0.5997")
    # 2. Time, charging longer pushes the parking out of its priced window (tariff 4 shape, 16 A,
    #    Monday 2025-01-13): FLAT 2.50; TIME 1.00/h step 900; parking 5.00/h weekdays 09-18 step 300.
    #    Charge 16:00-17:45, park 17:45-18:15 local: 2.50 + 1.75 (not rounded, parking follows)
    #    + 0.25 h x 5 = 1.25 -> 5.50. Charge to 18:00 and park 18:00-18:30: parking is free, so TIME
    #    is rounded (2 h, on the step): 2.50 + 2.00 = 4.50.
    complex_ = _ocpi(
        {"price_components": [{"type": "FLAT", "price": 2.5}]},
        {"price_components": [{"type": "TIME", "price": 1, "step_size": 900}]},
        {
            "price_components": [{"type": "PARKING_TIME", "price": 5, "step_size": 300}],
            "restrictions": {"start_time": "09:00", "end_time": "18:00", "day_of_week": ["MONDAY"]},
        },
    )

    def shorter_or_longer(charge_end: str, park_end: str) -> Decimal:
        end = _at(charge_end)
        periods = [_charge("2025-01-13 15:00", charge_end), SessionPeriod(end, _at(park_end), 0, False)]
        return price(complex_, periods).total_excl_vat

    assert shorter_or_longer("2025-01-13 16:45", "2025-01-13 17:15") == D("5.5")
    assert shorter_or_longer("2025-01-13 17:00", "2025-01-13 17:30") == D("4.5")
    # 3. Energy, a tier with a coarse step: below 10 kWh 0.30/kWh step 4000 Wh, then 0.10/kWh step 1.
    #    9 kWh -> rounded to 12 kWh x 0.30 = 3.60; 10.001 kWh: 10 x 0.30 + 0.001 x 0.10 = 3.0001.
    tiers = _ocpi(
        {
            "price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 4000}],
            "restrictions": {"max_kwh": 10},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.1}]},
    )
    assert price(tiers, [_charge("2025-01-06 10:00", "2025-01-06 12:00", 9_000)]).total_excl_vat == D("3.6")
    assert price(tiers, [_charge("2025-01-06 10:00", "2025-01-06 12:00", 10_001)]).total_excl_vat == D(
        "3.0001"
    )
    # 4. Energy, a cheap window before a kWh tier: 11:00-12:00 local 0.10/kWh; otherwise 1.00/kWh
    #    below 10 kWh, 0.20 above. Charging 10:00-12:00 local (09:00-11:00 UTC), evenly:
    #    10 kWh: 5 kWh at 0.10 + the next 5 (cumulative 5-10) at 1.00 = 5.50;
    #    20 kWh: 10 kWh at 0.10 + the next 10 (cumulative 10-20, above the tier) at 0.20 = 3.00.
    window = _ocpi(
        {
            "price_components": [{"type": "ENERGY", "price": 0.1}],
            "restrictions": {"start_time": "10:00", "end_time": "11:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": 1}], "restrictions": {"max_kwh": 10}},
        {"price_components": [{"type": "ENERGY", "price": 0.2}]},
    )
    assert price(window, [_charge("2025-01-06 09:00", "2025-01-06 11:00", 10_000)]).total_excl_vat == D("5.5")
    assert price(window, [_charge("2025-01-06 09:00", "2025-01-06 11:00", 20_000)]).total_excl_vat == D("3")
    # 5. Energy, incl. VAT under a max_price without incl_vat: FLAT 5.00 VAT 20 %, ENERGY 1.00 no VAT,
    #    max 5.50 excl. 0.5 kWh: 5.50 / 6.50 (not capped). 1 kWh: 6.00 -> 5.50 excl.; incl. follows at
    #    the session's ratio 7.00 / 6.00: 6.4167, less than 6.50.
    ratio = _ocpi(
        {"price_components": [{"type": "FLAT", "price": 5, "vat": 20}, {"type": "ENERGY", "price": 1}]},
        max_price={"excl_vat": 5.5},
    )
    half = price(ratio, [_charge("2025-01-06 10:00", "2025-01-06 11:00", 500)])
    full = price(ratio, [_charge("2025-01-06 10:00", "2025-01-06 11:00", 1_000)])
    assert (half.total_excl_vat, half.total_incl_vat) == (D("5.5"), D("6.5"))
    assert (full.total_excl_vat, full.total_incl_vat) == (D("5.5"), D("6.4167"))


# --- the parking grace ---------------------------------------------------------------------------


@PROPERTIES
@given(sessions(), GRACE)
def test_parking_grace_keeps_time_and_energy_and_is_idempotent(
    session: list[SessionPeriod], grace_s: int
) -> None:
    grace = timedelta(seconds=grace_s)
    graced = with_parking_grace(session, grace)
    assert graced[0].start == session[0].start and graced[-1].end == session[-1].end
    assert all(a.end == b.start for a, b in pairwise(graced))
    assert sum(p.energy_wh for p in graced) == sum(p.energy_wh for p in session)
    assert _seconds(graced, True) == _seconds(session, True)
    assert not any(p.free_parking and p.charging for p in graced)
    assert with_parking_grace(graced, grace) == graced
    # each run of parked periods gets at most ``grace`` more free parking than it came with
    run_new = timedelta(0)
    for before, after in _runs(session, graced):
        run_new = sum((p.end - p.start for p in after if p.free_parking), timedelta(0)) - sum(
            (p.end - p.start for p in before if p.free_parking), timedelta(0)
        )
        assert timedelta(0) <= run_new <= grace


def _runs(
    before: list[SessionPeriod], after: list[SessionPeriod]
) -> list[tuple[list[SessionPeriod], list[SessionPeriod]]]:
    """Pairs of the same run of parked time (between charging periods) before and after the grace."""

    def split(periods: list[SessionPeriod]) -> list[list[SessionPeriod]]:
        runs: list[list[SessionPeriod]] = [[]]
        for period in periods:
            if period.charging:
                runs.append([])
            else:
                runs[-1].append(period)
        return runs

    return list(zip(split(before), split(after), strict=True))


@PROPERTIES
@given(tariffs(bounds_incl=True), sessions(), GRACE)
def test_parking_grace_never_costs_more(tariff: Tariff, session: list[SessionPeriod], grace_s: int) -> None:
    # whatever the step sizes: free parking counts as parking for the TIME rounding rule
    graced = price(tariff, with_parking_grace(session, timedelta(seconds=grace_s)))
    plain = price(tariff, session)
    assert graced.total_excl_vat <= plain.total_excl_vat
    assert graced.total_incl_vat <= plain.total_incl_vat
    assert graced.total_parking_time_hours == plain.total_parking_time_hours


# --- issue 16: parking is after charging -------------------------------------------------------------

HANDSHAKE_MS = st.integers(0, 300_000)  # up to the start grace
CHARGE_S = st.integers(1, 8 * 3600)


@PROPERTIES
@given(tariffs(), starts(), HANDSHAKE_MS, CHARGE_S, WH, GRACE)
def test_a_session_that_charges_from_start_to_stop_pays_no_idle_fee(
    tariff: Tariff, start: datetime, handshake_ms: int, charge_s: int, wh: int, grace_s: int
) -> None:
    """Not charging at the start (the handshake before Charging) within the start grace, then
    charging until the stop: no PARKING_TIME is billed, whatever the tariff and its grace."""
    charging_from = start + timedelta(milliseconds=handshake_ms)
    stop = charging_from + timedelta(seconds=charge_s)
    derived = derive_periods(
        SessionWindow(start, stop, 1000, 1000 + wh),
        [],
        [StateChange(start - timedelta(minutes=1), False), StateChange(charging_from, True)],
        grace=timedelta(seconds=grace_s),
        start_grace=timedelta(minutes=5),
    )
    priced = price(tariff, derived.periods)
    parking = priced.dimension(PARKING)
    assert parking is None or (parking.excl_vat, parking.incl_vat) == (0, 0)
    assert sum(p.energy_wh for p in derived.periods) == wh


# --- issue 16: money to the cent ---------------------------------------------------------------------


def _whole_cents(amount: Decimal) -> bool:
    return amount == amount.quantize(D("0.01"))


@PROPERTIES
@given(tariffs(), sessions(), st.none() | CAPS)
def test_billed_totals_are_whole_cents_and_the_sum_of_the_lines(
    tariff: Tariff, session: list[SessionPeriod], cap: PriceCapRule | None
) -> None:
    """Whatever bound applies (tariff min/max, the cap): every line and total in whole cents, not
    negative, excl. never above incl.; the lines add up to the total, excl. and incl. VAT."""
    priced = price(tariff, session)
    outcome = apply_cap(priced, cap)
    billed = bill(priced, outcome, tariff.max_price)
    for line in billed.lines:
        assert _whole_cents(line.excl_vat) and _whole_cents(line.incl_vat)
        assert line.excl_vat >= 0 and line.incl_vat >= 0
    assert _whole_cents(billed.total_excl_vat) and _whole_cents(billed.total_incl_vat)
    assert sum((line.excl_vat for line in billed.lines), D(0)) == billed.total_excl_vat
    assert sum((line.incl_vat for line in billed.lines), D(0)) == billed.total_incl_vat
    assert 0 <= billed.total_excl_vat <= billed.total_incl_vat or not any(
        d.exact_incl_vat for d in priced.dimensions
    )
    if billed.capped_by is None:  # no bound: each line is its exact amount rounded half up
        for line in billed.lines:
            exact = next(d for d in priced.dimensions if d.type is line.type)
            assert abs(line.excl_vat - exact.exact_excl_vat) <= D("0.005")
            assert abs(line.incl_vat - exact.exact_incl_vat) <= D("0.005")


@PROPERTIES
@given(tariffs(), sessions(), CAPS)
def test_the_billed_total_never_exceeds_the_cap_nor_max_price(
    tariff: Tariff, session: list[SessionPeriod], cap: PriceCapRule
) -> None:
    priced = price(tariff, session)
    outcome = apply_cap(priced, cap)
    billed = bill(priced, outcome, tariff.max_price)
    if outcome.limit_incl_vat is not None:
        assert billed.total_incl_vat <= outcome.limit_incl_vat
    if cap.max_per_session is not None:
        assert billed.total_incl_vat <= cap.max_per_session
    if tariff.max_price is not None:
        assert billed.total_excl_vat <= tariff.max_price.excl_vat
        if tariff.max_price.incl_vat is not None:
            assert billed.total_incl_vat <= tariff.max_price.incl_vat
