"""CDRs end to end: stations over loopback (OCPP 1.6 and 2.0.1), the CDR a user reads at
GET /api/cdrs, priced by hand; the cap, idempotency, corrections, immutability, hostile input.

The session every test drives (times relative to a moment a day ago, whole minutes):
  0:00 start, register 1 000 000 Wh, Charging
  0:30 register 1 011 000;  1:00 register 1 022 000, the car stops drawing (SuspendedEV)
  1:30 register 1 022 000;  2:00 stop, register 1 022 000
The tariff: ENERGY 0.30/kWh and PARKING_TIME 2.40/h, both 21 % VAT, 10 minutes' grace:
  energy  22 kWh x 0.30 = 6.60 excl. (7.986 incl., billed 7.99: each line in cents, half up)
  parking 1:00-1:10 free (grace), 1:10-2:00 = 50 min = 5/6 h x 2.40 = 2.00 excl. (2.42 incl.)
  total   8.60 excl., 10.41 incl. (the sum of the billed lines)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ocpp.v16 import call
from ocpp.v201 import call as call201
from sqlalchemy import select

from stekker.app import Stekker
from stekker.db.models_tariffs import Cdr, PriceCap, TariffRecord, TariffVersion
from stekker.services import cdrs
from tests.observe import add_token, eventually
from tests.peers import ocpp_station
from tests.peers201 import ocpp201_station

TARIFF = {
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1},
                {"type": "PARKING_TIME", "price": 2.40, "vat": 21.0, "step_size": 1},
            ]
        }
    ]
}
EXPECTED = {"excl_vat": 8.6, "incl_vat": 10.41}


def base_time() -> datetime:
    return (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)


def iso(base: datetime, minutes: float) -> str:
    return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def add_tariff(
    server: Stekker,
    content: dict[str, Any],
    *,
    effective_from: datetime,
    code: str = "STD",
    grace_minutes: int = 10,
    versions: list[tuple[dict[str, Any], datetime]] | None = None,
) -> list[int]:
    """A tariff with approved versions (the first effective at `effective_from`), for every EVSE."""
    async with server.ctx.db() as db, db.begin():
        record = TariffRecord(code=code, name=f"Tariff {code}", currency="EUR", created_by="test")
        db.add(record)
        await db.flush()
        ids = []
        all_versions = [(content, effective_from), *(versions or [])]
        for number, (body, at) in enumerate(all_versions, start=1):
            row = TariffVersion(
                tariff_id=record.id,
                version=number,
                status="active" if number == len(all_versions) else "superseded",
                content=body,
                applies_to=[{"all": True}],
                audience="all",
                parties=[],
                energy_suppliers=[],
                parking_grace_minutes=grace_minutes,
                effective_from=at,
                created_by="test",
            )
            db.add(row)
            await db.flush()
            ids.append(row.id)
    return ids


async def add_cap(server: Stekker, at: datetime, **bounds: Decimal) -> None:
    async with server.ctx.db() as db, db.begin():
        db.add(PriceCap(currency="EUR", effective_from=at, set_by="municipality", **bounds))


async def session_16(ocpp_url: str, station_id: str, token: str, base: datetime) -> int:
    """The session of the module docstring, from an `ocpp` package 1.6 station."""
    async with ocpp_station(ocpp_url, station_id) as cp:

        async def status(minutes: float, value: str) -> None:
            await cp.call(
                call.StatusNotification(
                    connector_id=1, error_code="NoError", status=value, timestamp=iso(base, minutes)
                )
            )

        async def meter(minutes: float, wh: int, tx: int) -> None:
            await cp.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=tx,
                    meter_value=[
                        {
                            "timestamp": iso(base, minutes),
                            "sampled_value": [
                                {"value": str(wh), "unit": "Wh", "measurand": "Energy.Active.Import.Register"}
                            ],
                        }
                    ],
                )
            )

        await status(-1, "Preparing")
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag=token, meter_start=1_000_000, timestamp=iso(base, 0))
        )
        tx = started.transaction_id
        await status(0, "Charging")
        await meter(30, 1_011_000, tx)
        await meter(60, 1_022_000, tx)
        await status(60, "SuspendedEV")
        await meter(90, 1_022_000, tx)
        stop = call.StopTransaction(
            meter_stop=1_022_000,
            timestamp=iso(base, 120),
            transaction_id=tx,
            reason="EVDisconnected",
            id_tag=token,
        )
        await cp.call(stop)
        await status(120, "Finishing")
        await cp.call(stop)  # a retransmitted stop must not make a second CDR
    return int(tx)


async def cdrs_of(api: httpx.AsyncClient, station_id: str, count: int = 1) -> list[dict[str, Any]]:
    async def listed() -> list[dict[str, Any]] | None:
        response = await api.get("/api/cdrs", params={"station_id": station_id})
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows if len(rows) >= count else None

    rows: list[dict[str, Any]] = await eventually(listed)
    return rows


async def detail(api: httpx.AsyncClient, uid: str) -> dict[str, Any]:
    response = await api.get(f"/api/cdrs/{uid}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_ocpp16_session_with_parking_gets_the_hand_worked_cdr(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    await add_token(api, "CARD-16", contract_id="NL-ABC-C00000001-X")
    session_id = await session_16(ocpp_url, "CDR16", "CARD-16", base)

    [row] = await cdrs_of(api, "CDR16")
    assert row["total_cost_incl_vat"] == 10.41 and row["total_cost_excl_vat"] == 8.6
    assert row["session_id"] == session_id and row["kind"] == "charge" and row["capped_by"] is None
    assert row["total_energy_wh"] == 22_000
    assert row["total_time_s"] == 7_200 and row["total_parking_time_s"] == 3_600
    cdr = await detail(api, row["cdr_uid"])
    doc = cdr["document"]
    assert doc["total_cost"] == EXPECTED
    assert doc["total_energy_cost"] == {"excl_vat": 6.6, "incl_vat": 7.99}
    assert doc["total_parking_cost"] == {"excl_vat": 2, "incl_vat": 2.42}
    assert doc["total_energy"] == 22 and doc["total_time"] == 2 and doc["total_parking_time"] == 1
    assert [p["dimensions"] for p in doc["charging_periods"]] == [
        [{"type": "ENERGY", "volume": 22}, {"type": "TIME", "volume": 1}],
        [{"type": "PARKING_TIME", "volume": 0.1667}],  # the grace
        [{"type": "PARKING_TIME", "volume": 0.8333}],
    ]
    assert doc["start_date_time"] == iso(base, 0) and doc["end_date_time"] == iso(base, 120)
    assert doc["cdr_token"]["uid"] == "CARD-16" and doc["cdr_token"]["contract_id"] == "NL-ABC-C00000001-X"
    assert doc["cdr_location"]["evse_id"] == "NL*STK*ECDR16*1"
    assert doc["tariffs"][0]["id"] == "STD" and doc["currency"] == "EUR"
    assert doc["country_code"] == "NL" and doc["party_id"] == "STK" and doc["id"] == row["cdr_uid"]
    assert [r["wh"] for r in cdr["readings"]] == [1_000_000, 1_011_000, 1_022_000, 1_022_000, 1_022_000]

    # the repeated StopTransaction, a rebuild and the sweep all leave one CDR
    again = await cdrs.build_cdr(server.ctx, session_id)
    assert again is not None and again.cdr_uid == row["cdr_uid"]
    assert await cdrs.build_missing(server.ctx) == 0
    assert len(await cdrs_of(api, "CDR16")) == 1


async def test_ocpp201_charging_state_prices_the_same(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    await add_token(api, "CARD-201")

    def sample(minutes: float, wh: int, context: str = "Sample.Periodic") -> list[dict[str, Any]]:
        return [
            {
                "timestamp": iso(base, minutes),
                "sampled_value": [
                    {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"}
                ],
            }
        ]

    async with ocpp201_station(ocpp_url, "CDR201") as cp:

        async def event(kind: str, seq: int, minutes: float, trigger: str, wh: int, **info: Any) -> None:
            context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(
                kind, "Sample.Periodic"
            )
            extra: dict[str, Any] = {}
            if kind == "Started":
                extra["id_token"] = {"id_token": "CARD-201", "type": "ISO14443"}
            await cp.call(
                call201.TransactionEvent(
                    event_type=kind,
                    timestamp=iso(base, minutes),
                    trigger_reason=trigger,
                    seq_no=seq,
                    transaction_info={"transaction_id": "t-201", **info},
                    evse={"id": 1, "connector_id": 1},
                    meter_value=sample(minutes, wh, context),
                    **extra,
                )
            )

        await event("Started", 0, 0, "Authorized", 1_000_000, charging_state="Charging")
        # the station's offline queue delivers the SuspendedEV change before the 0:30 sample
        await event("Updated", 2, 60, "ChargingStateChanged", 1_022_000, charging_state="SuspendedEV")
        await event("Updated", 1, 30, "MeterValuePeriodic", 1_011_000)
        await event("Updated", 3, 90, "MeterValuePeriodic", 1_022_000)
        await event(
            "Ended",
            4,
            120,
            "EVCommunicationLost",
            1_022_000,
            charging_state="EVConnected",
            stopped_reason="EVDisconnected",
        )
    [row] = await cdrs_of(api, "CDR201")
    doc = (await detail(api, row["cdr_uid"]))["document"]
    assert doc["total_cost"] == EXPECTED
    assert doc["total_parking_time"] == 1 and doc["total_energy"] == 22


async def test_the_cap_lowers_the_cdr_and_says_so(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    await add_cap(server, base - timedelta(days=1), max_per_session=Decimal("5.00"))
    await add_cap(
        server, base + timedelta(hours=1), max_per_session=Decimal("1.00")
    )  # later: not this session's
    await add_token(api, "CARD-CAP")
    await session_16(ocpp_url, "CDRCAP", "CARD-CAP", base)
    [row] = await cdrs_of(api, "CDRCAP")
    # 10.406 incl. is above 5.00: 5.00 incl., excl. at the session's own VAT ratio,
    # 8.60 x 5.00 / 10.406 = 4.13223..., down to whole cents 4.13
    assert row["capped_by"] == "cap.per_session"
    doc = (await detail(api, row["cdr_uid"]))["document"]
    assert doc["total_cost"] == {"excl_vat": 4.13, "incl_vat": 5}
    assert doc["remark"] == (
        "capped by the municipal maximum price per session (the tariff asked 10.41 EUR incl. VAT)"
    )
    # the lines are scaled to the capped total and add up to it: 7.99 + 2.42 -> 3.84 + 1.16
    assert doc["total_energy_cost"] == {"excl_vat": 3.17, "incl_vat": 3.84}
    assert doc["total_parking_cost"] == {"excl_vat": 0.96, "incl_vat": 1.16}


async def test_a_tariff_change_mid_session_does_not_reprice_it(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    dearer = {
        "elements": [
            {
                "price_components": [
                    {"type": "ENERGY", "price": 0.90, "vat": 21.0, "step_size": 1},
                    {"type": "PARKING_TIME", "price": 9.00, "vat": 21.0, "step_size": 1},
                ]
            }
        ]
    }
    v1, _v2 = await add_tariff(
        server,
        TARIFF,
        effective_from=base - timedelta(days=30),
        versions=[(dearer, base + timedelta(minutes=30))],
    )
    await add_token(api, "CARD-V")
    await session_16(ocpp_url, "CDRV", "CARD-V", base)
    [row] = await cdrs_of(api, "CDRV")
    assert row["tariff_version_id"] == v1
    assert (await detail(api, row["cdr_uid"]))["document"]["total_cost"] == EXPECTED


async def test_no_tariff_still_a_cdr_at_zero_and_the_operator_hears_of_it(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await add_token(api, "CARD-0")
    await session_16(ocpp_url, "CDR0", "CARD-0", base_time())
    [row] = await cdrs_of(api, "CDR0")
    assert row["total_cost_incl_vat"] == 0 and row["tariff_version_id"] is None
    doc = (await detail(api, row["cdr_uid"]))["document"]
    assert doc["remark"] == "no tariff applied: this session is not charged"
    assert doc["tariffs"] == [] and doc["total_energy"] == 22
    kinds = [e["kind"] for e in (await api.get("/api/stations/CDR0/events")).json()]
    assert "cdr_without_tariff" in kinds


async def test_correction_is_a_credit_and_a_new_cdr(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str, cli: Any
) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    await add_token(api, "CARD-C")
    await session_16(ocpp_url, "CDRC", "CARD-C", base)
    [original] = await cdrs_of(api, "CDRC")
    uid = original["cdr_uid"]
    before = await detail(api, uid)

    response = await api.post(
        f"/api/cdrs/{uid}/corrections", json={"reason": "meter read 2x too high", "energy_wh": 11_000}
    )
    assert response.status_code == 201, response.text
    credit, new = response.json()["credit"], response.json()["cdr"]
    assert credit["kind"] == "credit" and credit["credits_cdr_uid"] == uid
    assert credit["document"]["total_cost"] == {"excl_vat": -8.6, "incl_vat": -10.41}
    assert credit["document"]["credit"] is True and credit["document"]["credit_reference_id"] == uid
    # 11 kWh x 0.30 = 3.30 (3.993 -> 3.99 incl.) + the same parking 2.00 (2.42) = 5.30 (6.41)
    assert new["replaces_cdr_uid"] == uid and new["reason"] == "meter read 2x too high"
    assert new["document"]["total_cost"] == {"excl_vat": 5.3, "incl_vat": 6.41}
    assert new["total_energy_wh"] == 11_000

    after = await detail(api, uid)
    assert after["document"] == before["document"]
    assert after["credited_by_cdr_uid"] == credit["cdr_uid"]
    assert len(await cdrs_of(api, "CDRC", 3)) == 3

    again = await api.post(f"/api/cdrs/{uid}/corrections", json={"reason": "once more"})
    assert again.status_code == 409 and "already credited" in again.json()["detail"]
    on_credit = await api.post(f"/api/cdrs/{credit['cdr_uid']}/corrections", json={"reason": "credit"})
    assert on_credit.status_code == 409

    listed = await cli("cdr", "list", "--station", "CDRC", "--json")
    assert listed.exit_code == 0 and new["cdr_uid"] in listed.output
    shown = await cli("cdr", "show", new["cdr_uid"])
    assert shown.exit_code == 0 and "6.41" in shown.output
    corrected = await cli(
        "cdr", "correct", new["cdr_uid"], "--reason", "back to 22 kWh", "--energy-wh", "22000"
    )
    assert corrected.exit_code == 0, corrected.output
    assert "10.41" in corrected.output
    refused = await cli("cdr", "correct", uid, "--reason", "again")
    assert refused.exit_code == 1 and "409" in refused.output


async def test_a_cdr_row_cannot_be_edited(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARD-E")
    await session_16(ocpp_url, "CDRE", "CARD-E", base_time())
    [row] = await cdrs_of(api, "CDRE")
    async with server.ctx.db() as db:
        cdr = (await db.execute(select(Cdr).where(Cdr.cdr_uid == row["cdr_uid"]))).scalar_one()
        cdr.total_cost_incl_vat = Decimal("0.01")
        with pytest.raises(ValueError, match="immutable"):
            await db.commit()
    assert (await detail(api, row["cdr_uid"]))["total_cost_incl_vat"] == 0


async def test_hostile_input(api: httpx.AsyncClient) -> None:
    for path, status in (
        ("/api/cdrs/" + "X" * 40, 422),
        ("/api/cdrs/bad%20uid", 422),
        ("/api/cdrs/CDR-999-1", 404),
        ("/api/cdrs?limit=100000", 422),
        ("/api/cdrs?limit=0", 422),
        ("/api/cdrs?offset=-1", 422),
        ("/api/cdrs?offset=100000000", 422),
        ("/api/cdrs?from=yesterday", 422),
        ("/api/cdrs?from=2025-02-30T00:00:00Z", 422),
        ("/api/cdrs?from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", 422),
        ("/api/cdrs?party=nl-abc", 422),
        ("/api/cdrs?station_id=%00", 422),
        ("/api/cdrs?session_id=99999999999999999999", 422),
        ("/api/cdrs?kind=refund", 422),
    ):
        response = await api.get(path)
        assert response.status_code == status, (path, response.text)
    assert (await api.get("/api/cdrs", params={"from": "2025-03-01T00:00:00"})).json() == []
    for body, status in (
        ({"reason": "x", "energy_wh": 5}, 422),
        ({"reason": "negative", "energy_wh": -5}, 422),
        ({"reason": "huge", "energy_wh": 10**30}, 422),
        ({"reason": "bad time", "stop_time": "soon"}, 422),
        ({"reason": "extra", "total": 0}, 422),
        ({}, 422),
        ({"reason": "   "}, 422),
        ({"reason": "fine, but no such CDR"}, 404),
    ):
        response = await api.post("/api/cdrs/CDR-999-1/corrections", json=body)
        assert response.status_code == status, (body, response.text)
    response = await api.post(
        "/api/cdrs/CDR-1-1/corrections", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
