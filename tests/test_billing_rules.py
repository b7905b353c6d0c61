"""Billing rules found by independent peers (issue 16): what is billed, and how it adds up.

Real peers over loopback: an `ocpp` package 1.6 station, the operator API over httpx, real
SQLite and PostgreSQL.

- A session whose token we refused (OCPI INVALID, "will not be billed") gets no CDR, neither
  from the worker nor from the sweep; the session and its reason stay on record.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import httpx
from ocpp.v16 import call

from stekker.app import Stekker
from stekker.services import cdrs
from tests.observe import add_token, eventually
from tests.peers import now_iso, ocpp_station
from tests.test_cdrs import add_tariff, cdrs_of


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
