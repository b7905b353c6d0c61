"""Billing rules found by independent peers (issue 16): what is billed, and how it adds up.

Real peers over loopback: an `ocpp` package 1.6 station, the operator API over httpx, real
SQLite and PostgreSQL.

- A session whose token we refused (OCPI INVALID, "will not be billed") gets no CDR, neither
  from the worker nor from the sweep; the session and its reason stay on record.
- Every DateTime of a CDR (and of the Session built from it) is OCPI's: at most 25 characters,
  also for CDRs stored with microseconds before.
- Parking (the idle fee) is time connected and not charging after the car charged: the
  handshake between the start and Charging costs nothing; a car that never charges parks once
  the start grace is over.
- What is billed is whole cents, and the CDR's cost lines add up to its total_cost, excl. and
  incl. VAT, also when the municipal cap lowered it.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy import select, update

from stekker.app import Stekker
from stekker.db.models import Token
from stekker.db.models_tariffs import Cdr
from stekker.services import cdrs
from tests.observe import add_token, eventually
from tests.peers import now_iso, ocpp_station
from tests.test_cdrs import TARIFF, add_cap, add_tariff, cdrs_of
from tests.test_ocpi_sessions_cdrs import CARD, TOKEN_A, items, partner_card, partners


async def _session(ocpp_url: str, station_id: str, token: str) -> tuple[int, str]:
    """One short session with 1 kWh; the station's answer to the start."""
    async with ocpp_station(ocpp_url, station_id) as cp:
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag=token, meter_start=1000, timestamp=now_iso())
        )
        await cp.call(
            call.StopTransaction(
                meter_stop=2000, timestamp=now_iso(), transaction_id=started.transaction_id, reason="Local"
            )
        )
    return int(started.transaction_id), str(started.id_tag_info["status"])


async def test_a_refused_session_gets_no_cdr_and_the_sweep_builds_none(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await add_tariff(
        server,
        {"elements": [{"price_components": [{"type": "FLAT", "price": 0.50, "vat": 21.0}]}]},
        effective_from=datetime.now(UTC) - timedelta(days=30),
    )
    await add_token(api, "GOOD")
    await api.put("/api/tokens", json={"uid": "STOLEN", "status": "blocked"})
    refused_id, refused_answer = await _session(ocpp_url, "REFUSED", "STOLEN")
    assert refused_answer == "Blocked"
    billed_id, _ = await _session(ocpp_url, "BILLED", "GOOD")

    # the accepted session is billed (the worker ran), the refused one is not
    [billed] = await cdrs_of(api, "BILLED")
    assert billed["session_id"] == billed_id
    assert (await api.get("/api/cdrs", params={"station_id": "REFUSED"})).json() == []
    assert await cdrs.build_cdr(server.ctx, refused_id) is None

    # the sweep, long after the stop, does not build one either
    later = dataclasses.replace(server.ctx, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    assert await cdrs.build_missing(later) == 0
    assert (await api.get("/api/cdrs", params={"station_id": "REFUSED"})).json() == []

    # the session stays on record with the reason
    async def refused_session() -> dict[str, object] | None:
        rows = (await api.get("/api/sessions", params={"station_id": "REFUSED"})).json()
        return rows[0] if rows and rows[0]["status"] == "completed" else None

    session = await eventually(refused_session)
    assert session["id"] == refused_id and session["auth_status"] == "Blocked"


# --- 5. OCPI DateTime: at most 25 characters -------------------------------------------------------


def _datetimes(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every DateTime field of an OCPI object, at any depth."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("start_date_time", "end_date_time", "last_updated", "timestamp") and isinstance(
                item, str
            ):
                found.append((f"{path}.{key}", item))
            else:
                found.extend(_datetimes(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_datetimes(item, f"{path}[{index}]"))
    return found


OCPI_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$")


def _assert_ocpi_datetimes(value: Any) -> int:
    fields = _datetimes(value)
    bad = [(path, text) for path, text in fields if len(text) > 25 or not OCPI_DATETIME.match(text)]
    assert bad == [], bad
    return len(fields)


async def test_cdr_datetimes_have_at_most_milliseconds_also_for_cdrs_stored_with_microseconds(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await add_tariff(server, TARIFF, effective_from=datetime.now(UTC) - timedelta(days=30))
    partner_a, _b = await partners(server)
    await partner_card(server, partner_a)
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=657069)
    async with ocpp_station(ocpp_url, "MICRO") as cp:
        started = await cp.call(
            call.StartTransaction(
                connector_id=1,
                id_tag=CARD,
                meter_start=1000,
                timestamp=start.isoformat().replace("+00:00", "Z"),
            )
        )
        stop = start + timedelta(minutes=30, microseconds=123456)
        await cp.call(
            call.StopTransaction(
                meter_stop=6000,
                timestamp=stop.isoformat().replace("+00:00", "Z"),
                transaction_id=started.transaction_id,
                reason="Local",
            )
        )

    async def served() -> list[dict[str, Any]] | None:
        found = await items(api, "cdrs", TOKEN_A)
        return found or None

    [cdr] = await eventually(served)
    assert _assert_ocpi_datetimes(cdr) >= 4
    assert cdr["start_date_time"] == start.strftime("%Y-%m-%dT%H:%M:%S") + ".657Z"
    [session] = await items(api, "sessions", TOKEN_A)
    _assert_ocpi_datetimes(session)

    # a CDR stored before the fix (microseconds in the document) is served in the OCPI form;
    # written past the ORM, which keeps CDRs immutable
    micro = start.isoformat().replace("+00:00", "Z")
    async with server.ctx.db() as db, db.begin():
        row = (await db.execute(select(Cdr))).scalar_one()
        old = dict(row.data)
        old["start_date_time"] = micro
        old["charging_periods"] = [{**p, "start_date_time": micro} for p in old["charging_periods"]]
        old["last_updated"] = "2026-12-07T14:59:48.657069Z"
        await db.execute(update(Cdr).where(Cdr.id == row.id).values(data=old))
    [cdr] = await items(api, "cdrs", TOKEN_A)
    _assert_ocpi_datetimes(cdr)
    assert cdr["last_updated"] == "2026-12-07T14:59:48.657Z"
    [session] = await items(api, "sessions", TOKEN_A)
    _assert_ocpi_datetimes(session)
    [mine] = (await api.get("/api/cdrs", params={"station_id": "MICRO"})).json()
    _assert_ocpi_datetimes((await api.get(f"/api/cdrs/{mine['cdr_uid']}")).json()["document"])


# --- 2. parking is after charging --------------------------------------------------------------------

IDLE_TARIFF = {
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1},
                {"type": "PARKING_TIME", "price": 6.00, "vat": 21.0, "step_size": 60},
            ]
        }
    ]
}


def _at(base: datetime, seconds: float) -> str:
    return (base + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def test_the_handshake_before_charging_is_no_idle_fee_but_a_car_that_never_charges_pays_after_the_grace(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """6.00/h parking with a 60 s step: the 40 ms between the start and Charging cost €0,10
    before. A car that never draws power parks once the start grace (5 min) is over."""
    base = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
    await add_tariff(server, IDLE_TARIFF, effective_from=base - timedelta(days=30), grace_minutes=0)
    await add_token(api, "CARD-H")
    async with ocpp_station(ocpp_url, "HANDSHAKE") as cp:

        async def status(seconds: float, value: str, connector: int = 1) -> None:
            await cp.call(
                call.StatusNotification(
                    connector_id=connector, error_code="NoError", status=value, timestamp=_at(base, seconds)
                )
            )

        # connector 1: charges from 40 ms after the start until the stop
        await status(-60, "Preparing")
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-H", meter_start=0, timestamp=_at(base, 0))
        )
        await status(0.04, "Charging")
        await cp.call(
            call.StopTransaction(
                meter_stop=10_000,
                timestamp=_at(base, 3600),
                transaction_id=started.transaction_id,
                reason="Local",
            )
        )
        # connector 2: the car never starts charging; 20 minutes connected
        await status(-60, "Preparing", 2)
        idle = await cp.call(
            call.StartTransaction(connector_id=2, id_tag="CARD-H", meter_start=0, timestamp=_at(base, 0))
        )
        await cp.call(
            call.StopTransaction(
                meter_stop=0,
                timestamp=_at(base, 1200),
                transaction_id=idle.transaction_id,
                reason="EVDisconnected",
            )
        )

    rows = {row["session_id"]: row for row in await cdrs_of(api, "HANDSHAKE", 2)}
    charged = (await api.get(f"/api/cdrs/{rows[started.transaction_id]['cdr_uid']}")).json()["document"]
    assert "total_parking_cost" not in charged or charged["total_parking_cost"]["excl_vat"] == 0
    assert charged["total_cost"] == {"excl_vat": 3, "incl_vat": 3.63}  # 10 kWh x 0.30, nothing else
    never = (await api.get(f"/api/cdrs/{rows[idle.transaction_id]['cdr_uid']}")).json()["document"]
    # 20 min connected, the first 5 free: 15 min x 6.00/h = 1.50 excl., 1.815 -> 1.82 incl.
    assert never["total_parking_cost"]["excl_vat"] == 1.5
    assert never["total_parking_time"] == pytest.approx(1200 / 3600, abs=1e-4)


# --- 3. money to the cent ----------------------------------------------------------------------------

CAPPED_TARIFF = {
    "elements": [
        {
            "price_components": [
                {"type": "FLAT", "price": 0.50, "vat": 21.0},
                {"type": "ENERGY", "price": 0.2941, "vat": 21.0, "step_size": 1},
                {"type": "PARKING_TIME", "price": 2.3333, "vat": 21.0, "step_size": 1},
            ]
        }
    ]
}


def _cents(value: float) -> bool:
    return Decimal(str(value)) == Decimal(str(value)).quantize(Decimal("0.01"))


def _lines(document: dict[str, Any], side: str) -> Decimal:
    names = ("total_fixed_cost", "total_energy_cost", "total_time_cost", "total_parking_cost")
    return sum((Decimal(str(document[n][side])) for n in names if n in document), Decimal(0))


async def test_the_cdr_is_whole_cents_and_its_lines_add_up_also_under_the_cap(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """A start fee, odd unit prices and parking: every amount of the CDR, as the eMSP receives
    it, in whole cents, and the cost lines add up to total_cost excl. and incl. VAT; under the
    municipal cap per kWh too (before, the cap lowered only total_cost)."""
    base = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
    await add_tariff(server, CAPPED_TARIFF, effective_from=base - timedelta(days=30), grace_minutes=0)
    await add_token(api, "CARD-C")
    async with ocpp_station(ocpp_url, "CENTS") as cp:
        for connector, seconds_parked in ((1, 0), (2, 1)):  # 2: later, under the cap
            await cp.call(
                call.StatusNotification(
                    connector_id=connector, error_code="NoError", status="Charging", timestamp=_at(base, -1)
                )
            )
            start = seconds_parked * 7200
            started = await cp.call(
                call.StartTransaction(
                    connector_id=connector, id_tag="CARD-C", meter_start=0, timestamp=_at(base, start)
                )
            )
            await cp.call(
                call.StatusNotification(
                    connector_id=connector,
                    error_code="NoError",
                    status="SuspendedEV",
                    timestamp=_at(base, start + 1380),
                )
            )
            await cp.call(
                call.StopTransaction(
                    meter_stop=1_457,
                    timestamp=_at(base, start + 2437),
                    transaction_id=started.transaction_id,
                    reason="Local",
                )
            )
            if connector == 1:
                # the municipality's cap, in force from between the two sessions' starts
                await add_cap(server, base + timedelta(hours=1), max_per_kwh=Decimal("0.40"))

    rows = sorted(await cdrs_of(api, "CENTS", 2), key=lambda r: r["session_id"])
    documents = [(await api.get(f"/api/cdrs/{r['cdr_uid']}")).json()["document"] for r in rows]
    free, capped = documents
    assert "remark" not in free and capped["remark"].startswith(
        "capped by the municipal maximum price per kWh"
    )
    for document in documents:
        for side in ("excl_vat", "incl_vat"):
            total = document["total_cost"][side]
            assert _cents(total), (side, total)
            assert _lines(document, side) == Decimal(str(total)), (side, document)
            for name in ("total_fixed_cost", "total_energy_cost", "total_parking_cost"):
                assert _cents(document[name][side]), (name, side, document[name])
    # 1.457 kWh x 0.40 = 0.5828 incl. allowed for charging, plus the parking: never above
    assert Decimal(str(capped["total_cost"]["incl_vat"])) < Decimal(str(free["total_cost"]["incl_vat"]))


async def test_the_emsp_sees_a_refused_session_invalid_at_no_cost_and_gets_no_cdr(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await add_tariff(
        server,
        {"elements": [{"price_components": [{"type": "FLAT", "price": 0.50, "vat": 21.0}]}]},
        effective_from=datetime.now(UTC) - timedelta(days=30),
    )
    partner_a, _b = await partners(server)
    async with server.ctx.db() as db, db.begin():
        db.add(
            Token(
                uid=CARD, type="RFID", contract_id="NL-ABC-C00000001-X", country_code="NL", party_id="ABC",
                status="blocked", ocpi_partner_id=partner_a, whitelist="ALWAYS",
                ocpi_last_updated=datetime.now(UTC),
            )
        )  # fmt: skip
    session_id, answer = await _session(ocpp_url, "ROAMREFUSED", CARD)
    assert answer == "Blocked"

    async def completed() -> dict[str, Any] | None:
        found = [s for s in await items(api, "sessions", TOKEN_A) if s["id"] == str(session_id)]
        return found[0] if found and found[0]["end_date_time"] else None

    session = await eventually(completed)
    assert session["status"] == "INVALID"
    assert session["total_cost"] == {"excl_vat": 0, "incl_vat": 0}  # the start fee is not asked
    assert await items(api, "cdrs", TOKEN_A) == []
