"""Energy per energy supplier per 15 minutes (requirement 14): the exact split of a session's
energy over quarter hours, and the report through the API, as CSV and from the CLI, fed by
simulated stations (1.6 and 2.0.1) charging with tokens that name a supplier."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.v16 import call

from stekker.domain.energy_intervals import Reading, clean_readings, split_energy
from stekker.services.errors import Invalid
from stekker.services.supplier_report import report_period
from tests.observe import add_token
from tests.peers import ocpp_station, raw_station
from tests.peers201 import tx_event

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
DAY = (T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=1))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- the split, pure ---------------------------------------------------------------------------


def test_energy_is_spread_linearly_over_quarter_hours() -> None:
    readings = clean_readings(
        [Reading(at(25), 1_004_000)], Reading(at(5), 1_000_000), Reading(at(35), 1_005_000)
    )
    parts = split_energy(readings, *DAY)
    # 200 Wh/min from 10:05 to 10:25, then 100 Wh/min to 10:35
    assert parts == {at(0): 2_000, at(15): 2_500, at(30): 500}


def test_rounding_never_loses_a_watt_hour() -> None:
    start = T0 + timedelta(minutes=14, seconds=7)
    readings = clean_readings([], Reading(start, 100), Reading(start + timedelta(seconds=126), 1_100))
    parts = split_energy(readings, *DAY)
    assert parts == {at(0): 1_000 * 53 // 126, at(15): 1_000 - 1_000 * 53 // 126}


def test_a_jump_on_a_boundary_belongs_to_the_quarter_that_starts_there() -> None:
    readings = clean_readings([Reading(at(15), 500), Reading(at(15), 900)], Reading(at(15), 500), None)
    assert split_energy(readings, *DAY) == {at(15): 400}


def test_glitches_and_readings_outside_the_session_are_tamed() -> None:
    registers = [Reading(at(-10), 0), Reading(at(10), 900), Reading(at(20), 400), Reading(at(40), 5_000)]
    readings = clean_readings(registers, Reading(at(0), 1_000), Reading(at(30), 3_000))
    assert [r.wh for r in readings] == [1_000, 1_000, 1_000, 3_000]
    assert sum(split_energy(readings, *DAY).values()) == 2_000


def test_the_window_cuts_a_session_at_its_edges() -> None:
    readings = clean_readings([], Reading(at(0), 0), Reading(at(60), 6_000))
    assert split_energy(readings, at(15), at(45)) == {at(15): 1_500, at(30): 1_500}


@settings(max_examples=300, deadline=None)
@given(
    start_s=st.integers(0, 86_400),
    steps=st.lists(st.tuples(st.integers(0, 7_200), st.integers(0, 50_000)), min_size=0, max_size=12),
    meter_start=st.integers(0, 10**9),
)
def test_parts_always_add_up_to_the_session_energy(
    start_s: int, steps: list[tuple[int, int]], meter_start: int
) -> None:
    moment = T0 + timedelta(seconds=start_s)
    wh = meter_start
    points = []
    for seconds, energy in steps:
        moment += timedelta(seconds=seconds)
        wh += energy
        points.append(Reading(moment, wh))
    end = Reading(moment + timedelta(seconds=1), wh)
    readings = clean_readings(points, Reading(T0 + timedelta(seconds=start_s), meter_start), end)
    parts = split_energy(readings, T0 - timedelta(days=1), T0 + timedelta(days=3))
    assert sum(parts.values()) == wh - meter_start
    assert all(v > 0 for v in parts.values())
    assert all(k.minute % 15 == 0 and k.second == 0 for k in parts)


def test_a_period_is_checked_and_dates_are_dutch_days() -> None:
    period = report_period("2026-10-25", "2026-10-26")  # the autumn DST switch: 25 hours
    assert period.start == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert period.end - period.start == timedelta(hours=25)
    for bad in (("2026-11-02", "2026-11-01"), ("2026-11-01", "2026-11-01"), ("2026-01-01", "2026-06-01")):
        with pytest.raises(Invalid):
            report_period(*bad)


# --- end to end -----------------------------------------------------------------------------------


async def _charge_16(
    ocpp_url: str, station: str, tag: str, start: datetime, meter: list[tuple[datetime, int]]
) -> int:
    """A 1.6 session: the first pair is the start, the last the stop, the rest MeterValues."""
    async with ocpp_station(ocpp_url, station) as cp:
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag=tag, meter_start=meter[0][1], timestamp=iso(start))
        )
        tx: int = started.transaction_id
        for moment, wh in meter[1:-1]:
            await cp.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=tx,
                    meter_value=[
                        {
                            "timestamp": iso(moment),
                            "sampled_value": [
                                {
                                    "value": str(wh / 1000),
                                    "unit": "kWh",
                                    "measurand": "Energy.Active.Import.Register",
                                },
                                {"value": "7", "unit": "kW", "measurand": "Power.Active.Import"},
                            ],
                        }
                    ],
                )
            )
        stop_at, stop_wh = meter[-1]
        await cp.call(
            call.StopTransaction(meter_stop=stop_wh, timestamp=iso(stop_at), transaction_id=tx, id_tag=tag)
        )
    return tx


async def _report(api: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await api.get(
        "/api/reports/energy-suppliers", params={"from": "2026-11-01", "to": "2026-11-02", **params}
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def _fleet(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "VF-CARD", energy_supplier="Vattenfall", energy_contract_id="C-1")
    await add_token(api, "VF-CARD2", energy_supplier="Vattenfall", energy_contract_id="C-2")
    await add_token(api, "NO-SUPPLIER")
    await _charge_16(
        ocpp_url, "REP-1", "VF-CARD", at(5), [(at(5), 1_000_000), (at(25), 1_004_000), (at(35), 1_005_000)]
    )
    start = T0 + timedelta(minutes=14, seconds=7)
    await _charge_16(
        ocpp_url, "REP-3", "VF-CARD2", start, [(start, 100), (start + timedelta(seconds=126), 1_100)]
    )
    async with raw_station(ocpp_url, "REP-2", protocol="ocpp2.0.1") as station:
        await station.ok(
            "TransactionEvent",
            tx_event("Started", "r2", 0, token="NO-SUPPLIER", meter_wh=500_000, at=iso(at(10))),
        )
        await station.ok(
            "TransactionEvent",
            tx_event("Ended", "r2", 1, meter_wh=503_000, at=iso(at(40)), stoppedReason="EVDisconnected"),
        )


async def test_the_report_splits_each_supplier_s_energy_into_quarter_hours(
    api: httpx.AsyncClient, ocpp_url: str, tmp_path: Path, cli: Any
) -> None:
    await _fleet(api, ocpp_url)
    rows = await _report(api)
    got = {(r["interval_start"], r["supplier"]): (r["energy_wh"], r["sessions"]) for r in rows}
    small = 1_000 * 53 // 126
    assert got == {
        ("2026-11-01T10:00:00Z", "Vattenfall"): (2_000 + small, 2),
        ("2026-11-01T10:15:00Z", "Vattenfall"): (2_500 + 1_000 - small, 2),
        ("2026-11-01T10:30:00Z", "Vattenfall"): (500, 1),
        ("2026-11-01T10:00:00Z", None): (500, 1),
        ("2026-11-01T10:15:00Z", None): (1_500, 1),
        ("2026-11-01T10:30:00Z", None): (1_000, 1),
    }
    assert rows[0]["interval_start_local"] == "2026-11-01T11:00:00+01:00"
    # every session's parts add up to the energy the session itself shows
    sessions = (await api.get("/api/sessions", params={"limit": 10})).json()
    assert sum(r["energy_wh"] for r in rows) == sum(s["energy_wh"] for s in sessions) == 5_000 + 1_000 + 3_000

    by_contract = await _report(api, group_by="contract")
    contracts = {
        (r["interval_start"], r["contract_id"]): r["energy_wh"] for r in by_contract if r["supplier"]
    }
    assert contracts[("2026-11-01T10:00:00Z", "C-1")] == 2_000
    assert contracts[("2026-11-01T10:00:00Z", "C-2")] == small
    only = await _report(api, supplier="Vattenfall")
    assert {r["supplier"] for r in only} == {"Vattenfall"}
    assert await _report(api, **{"from": "2026-11-02", "to": "2026-11-03"}) == []

    response = await api.get(
        "/api/reports/energy-suppliers", params={"from": "2026-11-01", "to": "2026-11-02", "format": "csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert list(table[0]) == [
        "interval_start_utc",
        "interval_start_local",
        "supplier",
        "energy_wh",
        "sessions",
    ]
    assert [(t["interval_start_utc"], t["supplier"], int(t["energy_wh"])) for t in table][:2] == [
        ("2026-11-01T10:00:00Z", "Vattenfall", 2_000 + small),
        ("2026-11-01T10:00:00Z", "unknown", 500),
    ]
    assert sum(int(t["energy_wh"]) for t in table) == 9_000

    target = tmp_path / "suppliers.csv"
    result = await cli(
        "report", "suppliers", "--from", "2026-11-01", "--to", "2026-11-02", "--save", str(target)
    )
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == response.content
    shown = await cli("report", "suppliers", "--from", "2026-11-01", "--to", "2026-11-02", "--by-contract")
    assert shown.exit_code == 0, shown.output
    assert "Vattenfall" in shown.output and "total 9.000 kWh" in shown.output
    refused = await cli(
        "report", "suppliers", "--from", "2026-11-02", "--to", "2026-11-01", "--save", str(target)
    )
    assert refused.exit_code == 1 and "must be before" in refused.output


async def test_a_running_session_counts_up_to_its_newest_reading(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await add_token(api, "RUN-CARD", energy_supplier="Eneco")
    async with raw_station(ocpp_url, "REP-RUN", protocol="ocpp2.0.1") as station:
        await station.ok(
            "TransactionEvent", tx_event("Started", "run", 0, token="RUN-CARD", meter_wh=0, at=iso(at(0)))
        )
        await station.ok(
            "TransactionEvent",
            tx_event("Updated", "run", 1, trigger="MeterValuePeriodic", meter_wh=3_000, at=iso(at(20))),
        )
    rows = await _report(api)
    assert [(r["interval_start"], r["supplier"], r["energy_wh"]) for r in rows] == [
        ("2026-11-01T10:00:00Z", "Eneco", 2_250),
        ("2026-11-01T10:15:00Z", "Eneco", 750),
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday", "to": "2026-11-02"}, "must be a date"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "must be before"),
        ({"from": "2026-11-01", "to": "2026-11-01"}, "must be before"),
        ({"from": "2026-01-01", "to": "2026-06-01"}, "longer than 93 days"),
        ({"from": "2026-11-01T10:07:00Z", "to": "2026-11-02"}, "quarter hour"),
        ({"from": "2026-11-01T10:00:00", "to": "2026-11-02"}, "needs a UTC offset"),
        ({"from": "2026-13-45", "to": "2026-11-02"}, "must be a date"),
        ({"from": "2026-11-01", "to": "2026-11-02", "format": "xml"}, "format"),
        ({"from": "2026-11-01", "to": "2026-11-02", "group_by": "planet"}, "group_by"),
        ({"from": "2026-11-01", "to": "2026-11-02", "supplier": "a\x00b"}, "supplier"),
        ({"from": "2026-11-01" * 10, "to": "2026-11-02"}, "from"),
        ({"to": "2026-11-02"}, "from"),
    ],
)
async def test_bad_queries_get_a_clear_4xx(
    api: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await api.get("/api/reports/energy-suppliers", params=params)
    assert response.status_code == 422, response.text
    assert message in response.text


async def test_read_roles_may_see_the_report_and_strangers_may_not(api: httpx.AsyncClient) -> None:
    from tests.test_users_roles import add_user, bearer, make_admin

    admin = await make_admin(api)
    params = {"from": "2026-11-01", "to": "2026-11-02"}
    for role in ("read-only", "municipality", "operator"):
        secret = await add_user(api, admin, f"user-{role}", role)
        response = await api.get("/api/reports/energy-suppliers", params=params, headers=bearer(secret))
        assert response.status_code == 200, (role, response.text)
    assert (await api.get("/api/reports/energy-suppliers", params=params)).status_code == 401
