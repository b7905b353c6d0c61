"""Sessions in Europe/Amsterdam across local midnight and the DST switches, worked out by hand.

Restrictions read the local wall clock; money is paid per real (UTC) hour. Amsterdam is UTC+1
(CET) in winter and UTC+2 (CEST) in summer. In 2025 summer time starts on Sunday 30 March at
02:00 CET (01:00 UTC), when the clock jumps to 03:00 CEST: 02:00-03:00 never happens. It ends on
Sunday 26 October at 03:00 CEST (01:00 UTC), when the clock goes back to 02:00 CET:
02:00-03:00 happens twice. All periods below are written in UTC, with local times alongside.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from stekker.domain.pricing import PricedSession, SessionPeriod, price_session
from stekker.domain.tariffs import DimensionType, Tariff, tariff_from_ocpi

AMS = ZoneInfo("Europe/Amsterdam")
D = Decimal
ENERGY, TIME, PARKING = DimensionType.ENERGY, DimensionType.TIME, DimensionType.PARKING_TIME
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]


def tariff(*elements: dict[str, Any]) -> Tariff:
    return tariff_from_ocpi({"id": "dst", "currency": "EUR", "elements": list(elements)})


def element(kind: str, price: str, vat: float | None = None, **restrictions: Any) -> dict[str, Any]:
    component: dict[str, Any] = {"type": kind, "price": price, "step_size": 1}
    if vat is not None:
        component["vat"] = vat
    return {"price_components": [component], "restrictions": restrictions or None}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def charge(start: str, end: str, wh: int = 0) -> SessionPeriod:
    return SessionPeriod(at(start), at(end), wh, True)


def park(start: str, end: str) -> SessionPeriod:
    return SessionPeriod(at(start), at(end), 0, False)


def price(priced_by: Tariff, *periods: SessionPeriod) -> PricedSession:
    return price_session(priced_by, periods, AMS)


def starts(result: PricedSession) -> list[datetime]:
    return [p.start_date_time for p in result.charging_periods]


def cost(result: PricedSession, kind: DimensionType) -> Decimal:
    item = result.dimension(kind)
    assert item is not None, f"{kind} was not billed"
    return item.excl_vat


# Weekdays from 07:00 until midnight 2.00/h charging, otherwise 1.00/h; energy 0.30/kWh; parking
# 3.00/h from 08:00 to 20:00. VAT 21 % everywhere, step_size 1.
WEEKDAY_EVENINGS = tariff(
    element("TIME", "2.00", 21, start_time="07:00", end_time="00:00", day_of_week=WEEKDAYS),
    element("TIME", "1.00", 21),
    element("ENERGY", "0.30", 21),
    element("PARKING_TIME", "3.00", 21, start_time="08:00", end_time="20:00"),
)

# Nights 23:00-06:00 0.50/h; weekends 1.50/h; otherwise 2.00/h. No VAT.
NIGHTS = tariff(
    element("TIME", "0.50", start_time="23:00", end_time="06:00"),
    element("TIME", "1.50", day_of_week=["SATURDAY", "SUNDAY"]),
    element("TIME", "2.00"),
    element("ENERGY", "0.25"),
)


def test_friday_night_into_saturday_changes_price_at_local_midnight() -> None:
    # Friday 2025-01-10 21:00 CET (20:00 UTC) to Saturday 02:00 CET (01:00 UTC), 15 kWh evenly (3 kWh/h).
    # Friday 21:00-24:00: 3 h x 2.00 = 6.00 (9 kWh); Saturday 00:00-02:00 is no weekday: 2 h x 1.00 = 2.00
    # (6 kWh). Energy 15 x 0.30 = 4.50. Total 12.50 excl., x 1.21 = 15.125 incl.
    result = price(WEEKDAY_EVENINGS, charge("2025-01-10 20:00", "2025-01-11 01:00", 15_000))
    assert cost(result, TIME) == D("8.0000")
    assert cost(result, ENERGY) == D("4.5000")
    assert (result.total_excl_vat, result.total_incl_vat) == (D("12.5000"), D("15.1250"))
    assert starts(result) == [at("2025-01-10 20:00"), at("2025-01-10 23:00")]  # local midnight
    assert [p.dimensions[0].volume for p in result.charging_periods] == [D(9), D(6)]


def test_sunday_night_into_monday_with_parking() -> None:
    # Sunday 2025-01-12 23:00 CET (22:00 UTC) to Monday 09:00 CET (08:00 UTC) charging 20 kWh, then
    # parked until 10:30 CET (09:30 UTC).
    # TIME: Sunday 23:00-24:00 and Monday 00:00-07:00 at 1.00 = 8.00; Monday 07:00-09:00 at 2.00 = 4.00.
    # ENERGY 20 x 0.30 = 6.00. PARKING 09:00-10:30, inside 08-20: 1.5 h x 3.00 = 4.50.
    # Total 22.50 excl., x 1.21 = 27.225 incl.
    result = price(
        WEEKDAY_EVENINGS,
        charge("2025-01-12 22:00", "2025-01-13 08:00", 20_000),
        park("2025-01-13 08:00", "2025-01-13 09:30"),
    )
    assert (cost(result, TIME), cost(result, ENERGY), cost(result, PARKING)) == (D(12), D(6), D("4.5"))
    assert (result.total_excl_vat, result.total_incl_vat) == (D("22.5000"), D("27.2250"))
    # Sunday and Monday night share a price: one charging period until 07:00 Monday
    assert starts(result) == [at("2025-01-12 22:00"), at("2025-01-13 06:00"), at("2025-01-13 08:00")]


def test_sunday_into_monday_weekday_rate_starts_after_the_night() -> None:
    # NIGHTS, Sunday 2025-01-12 22:00 CET (21:00 UTC) to Monday 08:00 CET (07:00 UTC):
    # Sunday 22-23 weekend 1 h x 1.50 = 1.50; 23:00-06:00 night 7 h x 0.50 = 3.50 (the night element
    # comes first, so Monday 00:00 changes nothing); Monday 06-08 weekday 2 h x 2.00 = 4.00. Total 9.00.
    result = price(NIGHTS, charge("2025-01-12 21:00", "2025-01-13 07:00"))
    assert result.total_excl_vat == D("9.0000")
    assert starts(result) == [at("2025-01-12 21:00"), at("2025-01-12 22:00"), at("2025-01-13 05:00")]


def test_night_when_summer_time_starts_bills_real_hours() -> None:
    # Saturday 2025-03-29 21:00 CET (20:00 UTC) to Sunday 08:00 CEST (06:00 UTC): 11 hours on the
    # clock but 10 real hours. 30 kWh evenly: 3 kWh per real hour.
    # Saturday 21:00-23:00 CET weekend: 2 h x 1.50 = 3.00 (6 kWh);
    # night 23:00 CET (22:00 UTC) - 06:00 CEST (04:00 UTC): 6 real hours x 0.50 = 3.00 (18 kWh);
    # Sunday 06:00-08:00 CEST weekend: 2 h x 1.50 = 3.00 (6 kWh). Energy 30 x 0.25 = 7.50.
    # Total 9.00 + 7.50 = 16.50.
    result = price(NIGHTS, charge("2025-03-29 20:00", "2025-03-30 06:00", 30_000))
    assert cost(result, TIME) == D("9.0000")
    assert result.total_excl_vat == D("16.5000")
    assert result.total_time_hours == D(10)
    assert starts(result) == [at("2025-03-29 20:00"), at("2025-03-29 22:00"), at("2025-03-30 04:00")]
    assert [p.dimensions[0].volume for p in result.charging_periods] == [D(6), D(18), D(6)]


def test_night_when_summer_time_ends_bills_real_hours() -> None:
    # Saturday 2025-10-25 21:00 CEST (19:00 UTC) to Sunday 08:00 CET (07:00 UTC): 11 hours on the
    # clock but 12 real hours.
    # Saturday 21:00-23:00 CEST: 2 h x 1.50 = 3.00; night 23:00 CEST (21:00 UTC) - 06:00 CET (05:00 UTC):
    # 8 real hours x 0.50 = 4.00; Sunday 06:00-08:00 CET: 2 h x 1.50 = 3.00. Total 10.00.
    result = price(NIGHTS, charge("2025-10-25 19:00", "2025-10-26 07:00"))
    assert result.total_excl_vat == D("10.0000")
    assert result.total_time_hours == D(12)
    # the clock shows 02:00-03:00 twice, but the night price holds throughout: no extra periods
    assert starts(result) == [at("2025-10-25 19:00"), at("2025-10-25 21:00"), at("2025-10-26 05:00")]


def _window(start: str, end: str) -> Tariff:
    # 0.50/h in the window, 2.00/h outside it, charging and parking alike
    return tariff(
        {
            "price_components": [
                {"type": "TIME", "price": 0.5, "step_size": 1},
                {"type": "PARKING_TIME", "price": 0.5, "step_size": 1},
            ],
            "restrictions": {"start_time": start, "end_time": end},
        },
        {
            "price_components": [
                {"type": "TIME", "price": 2, "step_size": 1},
                {"type": "PARKING_TIME", "price": 2, "step_size": 1},
            ]
        },
    )


def test_window_ending_in_the_skipped_hour_ends_at_the_jump() -> None:
    # Off-peak 22:00-02:30. Sunday 2025-03-30 00:00 CET (23:00 UTC on the 29th) to 04:00 CEST (02:00 UTC):
    # 3 real hours. 00:00-02:00 CET: 2 h x 0.50 = 1.00; then the clock jumps from 02:00 to 03:00, past
    # 02:30, so off-peak ends at the jump (01:00 UTC); 03:00-04:00 CEST: 1 h x 2.00 = 2.00. Total 3.00.
    # (Taking 02:30 at the winter offset, 01:30 UTC, gave off-peak until 03:30 CEST: 2.25.)
    result = price(_window("22:00", "02:30"), charge("2025-03-29 23:00", "2025-03-30 02:00"))
    assert result.total_excl_vat == D("3.0000")
    assert starts(result) == [at("2025-03-29 23:00"), at("2025-03-30 01:00")]


def test_window_starting_in_the_skipped_hour_starts_at_the_jump() -> None:
    # Cheap 02:30-06:00. Parked from 2025-03-30 00:00 CET (23:00 UTC) to 05:00 CEST (03:00 UTC): 4 real
    # hours. 00:00-02:00 CET: 2 h x 2.00 = 4.00; at the jump the clock shows 03:00, inside the window:
    # 03:00-05:00 CEST 2 h x 0.50 = 1.00. Total 5.00.
    result = price(_window("02:30", "06:00"), park("2025-03-29 23:00", "2025-03-30 03:00"))
    assert result.total_excl_vat == D("5.0000")
    assert starts(result) == [at("2025-03-29 23:00"), at("2025-03-30 01:00")]


def test_window_starting_in_the_repeated_hour_holds_twice() -> None:
    # Cheap 02:30-06:00. Sunday 2025-10-26 01:00 CEST (23:00 UTC on the 25th) to 04:00 CET (03:00 UTC):
    # 4 real hours, the clock passes 02:30 twice:
    #   01:00-02:30 CEST (23:00-00:30 UTC) 1.5 h x 2.00 = 3.00
    #   02:30-03:00 CEST (00:30-01:00 UTC) 0.5 h x 0.50 = 0.25
    #   back to 02:00 CET, outside the window again:
    #   02:00-02:30 CET  (01:00-01:30 UTC) 0.5 h x 2.00 = 1.00
    #   02:30-04:00 CET  (01:30-03:00 UTC) 1.5 h x 0.50 = 0.75
    # Total 5.00.
    result = price(_window("02:30", "06:00"), charge("2025-10-25 23:00", "2025-10-26 03:00"))
    assert result.total_excl_vat == D("5.0000")
    assert starts(result) == [at(t) for t in ("2025-10-25 23:00", "2025-10-26 00:30", "2025-10-26 01:00")] + [
        at("2025-10-26 01:30")
    ]
    assert [p.tariff_elements for p in result.charging_periods] == [
        ((TIME, 1),),
        ((TIME, 0),),
        ((TIME, 1),),
        ((TIME, 0),),
    ]


def test_window_ending_in_the_repeated_hour_holds_twice() -> None:
    # Off-peak 22:00-02:30. Parked from 2025-10-26 00:00 CEST (22:00 UTC on the 25th) to 04:00 CET
    # (03:00 UTC): 5 real hours.
    #   00:00-02:30 CEST (22:00-00:30 UTC) 2.5 h x 0.50 = 1.25
    #   02:30-03:00 CEST (00:30-01:00 UTC) 0.5 h x 2.00 = 1.00
    #   back to 02:00 CET, inside the window again:
    #   02:00-02:30 CET  (01:00-01:30 UTC) 0.5 h x 0.50 = 0.25
    #   02:30-04:00 CET  (01:30-03:00 UTC) 1.5 h x 2.00 = 3.00
    # Total 5.50.
    result = price(_window("22:00", "02:30"), park("2025-10-25 22:00", "2025-10-26 03:00"))
    assert result.total_excl_vat == D("5.5000")
    assert result.total_parking_time_hours == D(5)
    assert len(result.charging_periods) == 4


def test_a_split_in_the_repeated_hour_changes_nothing() -> None:
    # The same session as above cut in two inside the second 02:00-02:30 (01:10 UTC): same price.
    whole = price(_window("22:00", "02:30"), park("2025-10-25 22:00", "2025-10-26 03:00"))
    parts = price(
        _window("22:00", "02:30"),
        park("2025-10-25 22:00", "2025-10-26 01:10"),
        park("2025-10-26 01:10", "2025-10-26 03:00"),
    )
    assert parts.total_excl_vat == whole.total_excl_vat == D("5.5000")
