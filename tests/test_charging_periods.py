"""Charging periods derived from registers and states, and the OCPI CDR document built on them.

Pure domain tests; every expected number is worked out by hand in the comments.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stekker.domain.billing import bill
from stekker.domain.cdr_document import (
    CdrFacts,
    CdrLocation,
    CdrToken,
    build_document,
    credit_document,
    number,
)
from stekker.domain.charging_periods import (
    SessionWindow,
    StateChange,
    charging_from_charging_state,
    charging_from_status,
    derive_periods,
)
from stekker.domain.metering import SampledValue
from stekker.domain.price_caps import CapOutcome, PriceCapRule, apply_cap
from stekker.domain.pricing import price_session
from stekker.domain.tariffs import tariff_from_ocpi

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
AMS = ZoneInfo("Europe/Amsterdam")


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def reg(minutes: float, wh: int | str, unit: str | None = None) -> SampledValue:
    return SampledValue(t(minutes), str(wh), unit=unit)


def sample(
    minutes: float, measurand: str, value: str, unit: str | None = None, phase: str | None = None
) -> SampledValue:
    return SampledValue(t(minutes), value, measurand=measurand, unit=unit, phase=phase)


def window(stop: float | None, start_wh: int | None, stop_wh: int | None, start: float = 0) -> SessionWindow:
    return SessionWindow(t(start), None if stop is None else t(stop), start_wh, stop_wh)


def shape(result: object) -> list[tuple[float, float, int, bool, bool]]:
    periods = result.periods  # type: ignore[attr-defined]
    return [
        (
            (p.start - T0).total_seconds() / 60,
            (p.end - T0).total_seconds() / 60,
            p.energy_wh,
            p.charging,
            p.free_parking,
        )
        for p in periods
    ]


def test_state_mappings() -> None:
    assert charging_from_status("Charging") is True
    for status in ("SuspendedEV", "SuspendedEVSE", "Finishing", "Preparing", "Occupied", "Available"):
        assert charging_from_status(status) is False
    assert charging_from_charging_state("Charging") is True
    for state in ("SuspendedEV", "SuspendedEVSE", "EVConnected", "Idle"):
        assert charging_from_charging_state(state) is False
    assert charging_from_charging_state(None) is None
    assert charging_from_charging_state("Flying") is None


def test_charging_then_parked_from_states_with_grace() -> None:
    # Preparing before the start, Charging at 0:01, SuspendedEV at 1:00, stop at 2:00.
    # Registers: 10 000 at start, 20 000 at 0:31, 30 000 at 1:30 (the car stopped at 1:00), stop 30 000.
    states = [StateChange(t(-2), False), StateChange(t(1), True), StateChange(t(60), False)]
    result = derive_periods(
        window(120, 10_000, 30_000),
        [reg(31, 20_000), reg(90, 30_000)],
        states,
        grace=timedelta(minutes=15),
    )
    # 0:00-0:01 parked (in grace, 1 min used) and gets no energy: the stretch 0:00-0:31 rose
    # 10 000 Wh, all of it in its 30 charging minutes. 0:31-1:30: 10 000 Wh, all in 0:31-1:00.
    assert shape(result) == [
        (0, 1, 0, False, True),
        (1, 60, 20_000, True, False),
        (60, 75, 0, False, True),  # the grace starts again for a new run of parking
        (75, 120, 0, False, False),
    ]
    assert result.energy_wh == 20_000 and not result.inferred
    assert [r.kind for r in result.readings] == ["start", "reading", "reading", "stop"]


def test_without_states_the_register_decides() -> None:
    # rises until 0:40, flat until the stop at 1:30: charging, then parked
    result = derive_periods(window(90, 0, 7_000), [reg(20, 4_000), reg(40, 7_000), reg(60, 7_000)])
    assert shape(result) == [(0, 40, 7_000, True, False), (40, 90, 0, False, False)]
    assert result.inferred


def test_out_of_order_and_late_data_give_the_same_periods() -> None:
    readings = [reg(10, 1_000), reg(20, 2_500), reg(30, 2_500), reg(45, 4_000), reg(50, 4_000)]
    states = [
        StateChange(t(0), True),
        StateChange(t(30), False),
        StateChange(t(35), True),
        StateChange(t(46), False),
    ]
    expected = shape(derive_periods(window(60, 0, 4_000), readings, states))
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(readings)
        rng.shuffle(states)
        assert shape(derive_periods(window(60, 0, 4_000), readings, states)) == expected
    # the state says charging 0:00-0:30, though the register is flat 0:20-0:30
    assert expected[0] == (0, 30, 2_500, True, False)


def test_readings_outside_the_window_are_ignored() -> None:
    result = derive_periods(
        window(60, 1_000, 3_000),
        [reg(-30, 500), reg(30, 2_000), reg(90, 9_999)],
        [StateChange(t(0), True)],
    )
    assert shape(result) == [(0, 60, 2_000, True, False)]
    assert any("outside the session window" in note for note in result.notes)


def test_a_register_that_went_backwards_gives_no_energy() -> None:
    result = derive_periods(window(60, 50_000, 200), [reg(30, 100)], [StateChange(t(0), True)])
    assert result.energy_wh == 0
    assert sum(p.energy_wh for p in result.periods) == 0
    assert any("backwards" in note for note in result.notes)
    # a dip in the middle (a glitch) never makes energy negative
    dip = derive_periods(window(60, 1_000, 3_000), [reg(20, 2_000), reg(30, 10), reg(40, 2_500)], [])
    # 0:00-0:20 +1 000; the dip to 10 Wh is held at 1 000 (0:20-0:30 flat, parked); then +1 000
    assert [p.energy_wh for p in dip.periods] == [1_000, 0, 1_000] and dip.energy_wh == 2_000
    assert all(p.energy_wh >= 0 for p in dip.periods)


def test_zero_length_sessions() -> None:
    empty = derive_periods(window(0, 1_000, 1_000), [], [])
    assert shape(empty) == [(0, 0, 0, False, False)]
    odd = derive_periods(window(0, 1_000, 1_500), [], [])
    assert [p.energy_wh for p in odd.periods] == [500]
    assert odd.periods[0].end - odd.periods[0].start == timedelta(seconds=1)
    backwards_clock = derive_periods(SessionWindow(t(10), t(5), 0, 0), [], [])
    assert backwards_clock.start == backwards_clock.end == t(10)


def test_missing_stop_register_and_stop_time() -> None:
    result = derive_periods(window(60, 1_000, None), [reg(20, 1_800), reg(40, 2_200)], [])
    assert result.energy_wh == 1_200
    no_stop = derive_periods(window(None, 1_000, None), [reg(20, 1_800), reg(40, 2_200)], [])
    assert no_stop.end == t(40) and no_stop.energy_wh == 1_200
    nothing = derive_periods(window(60, None, None), [], [])
    assert nothing.energy_wh == 0 and shape(nothing) == [(0, 60, 0, False, False)]


def test_energy_is_whole_wh_and_sums_exactly() -> None:
    # 1 001 Wh charged over three stretches of state: 20/20/20 minutes, no reading in between
    states = [StateChange(t(0), True), StateChange(t(20), True), StateChange(t(40), True)]
    result = derive_periods(window(60, 0, 1_001), [], states)
    assert sum(p.energy_wh for p in result.periods) == 1_001
    assert shape(result) == [(0, 60, 1_001, True, False)]  # same state: merged


def test_power_and_current_per_period() -> None:
    samples = [
        reg(30, 5_000),
        sample(10, "Power.Active.Import", "7.4", unit="kW"),
        sample(40, "Power.Active.Import", "11000"),
        sample(10, "Current.Import", "16", phase="L1"),
        sample(10, "Current.Import", "16", phase="L2"),
        sample(10, "Current.Import", "15", phase="L3"),
        sample(10, "Current.Import", "1", phase="N"),
    ]
    result = derive_periods(window(60, 0, 8_000), samples, [StateChange(t(0), True)])
    first, second = result.periods
    assert first.max_power == Decimal("7400.0") and first.max_current == Decimal(47)
    assert second.max_power == Decimal(11000) and second.max_current is None


def test_energy_override_scales_the_curve() -> None:
    result = derive_periods(window(60, 0, 4_000), [reg(30, 4_000)], [], energy_override_wh=2_000)
    assert shape(result) == [(0, 30, 2_000, True, False), (30, 60, 0, False, False)]
    with pytest.raises(ValueError):
        derive_periods(window(60, 0, 4_000), [], [], energy_override_wh=-1)


@settings(max_examples=200, deadline=None)
@given(
    start_wh=st.integers(0, 10**7),
    deltas=st.lists(st.tuples(st.integers(1, 600), st.integers(-500, 20_000)), max_size=15),
    changes=st.lists(st.tuples(st.integers(-60, 400), st.booleans()), max_size=8),
    stop_minutes=st.integers(0, 300),
    stop_delta=st.integers(-1_000, 200_000),
    grace=st.integers(0, 30),
)
def test_properties(
    start_wh: int,
    deltas: list[tuple[int, int]],
    changes: list[tuple[int, bool]],
    stop_minutes: int,
    stop_delta: int,
    grace: int,
) -> None:
    readings, minute, wh = [], 0, start_wh
    for step, rise in deltas:
        minute += step
        wh = max(0, wh + rise)
        readings.append(reg(minute / 2, wh))
    states = [StateChange(t(m), c) for m, c in changes]
    stop_wh = max(0, start_wh + stop_delta)
    result = derive_periods(
        window(stop_minutes, start_wh, stop_wh), readings, states, grace=timedelta(minutes=grace)
    )
    expected = stop_wh - start_wh if stop_wh >= start_wh else 0
    assert result.energy_wh == expected
    assert sum(p.energy_wh for p in result.periods) == expected
    assert all(p.energy_wh >= 0 for p in result.periods)
    assert result.periods[0].start == t(0)
    for before, after in zip(result.periods, result.periods[1:], strict=False):
        assert before.end == after.start
    tariff = tariff_from_ocpi(TARIFF)
    priced = price_session(tariff, result.periods, AMS)
    assert priced.total_incl_vat >= 0


# --- the CDR document ----------------------------------------------------------------------------

TARIFF = {
    "id": "PARK",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1},
                {"type": "PARKING_TIME", "price": 2.00, "vat": 21.0, "step_size": 60},
            ]
        }
    ],
}


def _facts(start: datetime, end: datetime, **extra: object) -> CdrFacts:
    values: dict[str, object] = {
        "country_code": "NL",
        "party_id": "STK",
        "cdr_id": "CDR-1-1",
        "session_id": "1",
        "start": start,
        "end": end,
        "periods_end": end,
        "token": CdrToken("CARD-1", "RFID", "NL-ABC-C12345678-X"),
        "auth_method": "AUTH_REQUEST",
        "location": CdrLocation(
            id="3",
            name="Stadhuisplein",
            address="Stadhuisplein 1",
            city="Utrecht",
            postal_code="3511 AA",
            country="NLD",
            latitude=Decimal("52.091200"),
            longitude=Decimal("5.122700"),
            evse_uid="NL*STK*ECP1*1",
            evse_id="NL*STK*ECP1*1",
            connector_id="1",
        ),
        "currency": "EUR",
        "tariff": {**TARIFF, "country_code": "NL", "party_id": "STK", "last_updated": "2025-01-01T00:00:00Z"},
        "last_updated": end,
    }
    values.update(extra)
    return CdrFacts(**values)  # type: ignore[arg-type]


def test_document_of_a_session_with_charging_and_parking() -> None:
    # 0:00-1:00 charging 20 kWh, 1:00-1:15 grace, 1:15-2:00 parked (45 min).
    # energy 20 x 0.30 = 6.00 (7.26 incl.); parking 0.75 h x 2.00 = 1.50 (1.815 incl.)
    # total 7.50 excl., 9.075 incl. exact; billed in cents per line: 7.26 + 1.82 = 9.08 incl.
    states = [StateChange(t(0), True), StateChange(t(60), False)]
    readings = [reg(m, 10_000 + m * 20_000 // 60) for m in range(1, 60)]
    derived = derive_periods(window(120, 10_000, 30_000), readings, states, grace=timedelta(minutes=15))
    priced = price_session(tariff_from_ocpi(TARIFF), derived.periods, AMS)
    outcome = apply_cap(priced, None)
    doc = build_document(_facts(t(0), t(120)), priced, bill(priced, outcome))
    assert doc["total_cost"] == {"excl_vat": 7.5, "incl_vat": 9.08}
    assert doc["total_energy_cost"] == {"excl_vat": 6, "incl_vat": 7.26}
    assert doc["total_parking_cost"] == {"excl_vat": 1.5, "incl_vat": 1.82}
    assert "total_time_cost" not in doc and "remark" not in doc
    assert doc["total_energy"] == 20 and doc["total_time"] == 2 and doc["total_parking_time"] == 1
    # 59 minute readings, yet three periods: charging, grace, billed parking
    assert doc["charging_periods"] == [
        {
            "start_date_time": "2025-03-04T09:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 20}, {"type": "TIME", "volume": 1}],
            "tariff_id": "PARK",
        },
        {
            "start_date_time": "2025-03-04T10:00:00Z",
            "dimensions": [{"type": "PARKING_TIME", "volume": 0.25}],
            "tariff_id": "PARK",
        },
        {
            "start_date_time": "2025-03-04T10:15:00Z",
            "dimensions": [{"type": "PARKING_TIME", "volume": 0.75}],
            "tariff_id": "PARK",
        },
    ]
    assert doc["cdr_location"]["coordinates"] == {"latitude": "52.091200", "longitude": "5.122700"}
    assert doc["cdr_token"] == {"uid": "CARD-1", "type": "RFID", "contract_id": "NL-ABC-C12345678-X"}
    assert doc["tariffs"][0]["id"] == "PARK"
    # a cap of 0.35/kWh incl. VAT bounds the charging part: 20 kWh x 0.35 = 7.00 + parking 1.815,
    # 8.81 in cents (down: never above the cap); the lines are scaled to it and add up
    capped = apply_cap(priced, PriceCapRule("EUR", max_per_kwh=Decimal("0.35")))
    capped_doc = build_document(_facts(t(0), t(120)), priced, bill(priced, capped))
    assert capped_doc["total_cost"] == {"excl_vat": 7.28, "incl_vat": 8.81}
    assert capped_doc["total_energy_cost"] == {"excl_vat": 5.82, "incl_vat": 7.04}
    assert capped_doc["total_parking_cost"] == {"excl_vat": 1.46, "incl_vat": 1.77}
    assert capped_doc["remark"] == (
        "capped by the municipal maximum price per kWh (the tariff asked 9.08 EUR incl. VAT)"
    )


def test_numbers_have_at_most_four_decimals() -> None:
    assert number(Decimal("1.23456")) == 1.2346
    assert number(Decimal("2.00")) == 2 and isinstance(number(Decimal("2.00")), int)
    assert number(Decimal("-0.00005")) == -0.0001
    assert str(number(Decimal("0.1235"))) == "0.1235"


def test_credit_document_negates_every_amount() -> None:
    derived = derive_periods(window(60, 0, 10_000), [], [StateChange(t(0), True)])
    priced = price_session(tariff_from_ocpi(TARIFF), derived.periods, AMS)
    outcome = CapOutcome(Decimal(3), Decimal("3.63"), None, None)
    doc = build_document(_facts(t(0), t(60)), priced, bill(priced, outcome))
    credit = credit_document(doc, cdr_id="CDR-1-2", remark="credits CDR-1-1: wrong meter", last_updated=t(99))
    assert credit["total_cost"] == {"excl_vat": -3, "incl_vat": -3.63}
    assert credit["total_energy_cost"] == {"excl_vat": -3, "incl_vat": -3.63}
    assert credit["total_energy"] == 10  # volumes stay: the credit cancels the same session
    assert credit["credit"] is True and credit["credit_reference_id"] == "CDR-1-1"
    assert credit["id"] == "CDR-1-2" and doc["id"] == "CDR-1-1"  # the original is untouched
    assert "credit" not in doc
