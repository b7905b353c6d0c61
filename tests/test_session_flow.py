"""A full charging session over loopback, with an `ocpp` package station, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
from ocpp.v16 import call

from tests.peers import now_iso, ocpp_station


async def _token(api: httpx.AsyncClient, uid: str, **extra: object) -> dict[str, object]:
    response = await api.put("/api/tokens", json={"uid": uid, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_full_session_end_to_end(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await _token(api, "CARD-1")
    async with ocpp_station(ocpp_url, "CP-1") as cp:
        for connector in (0, 1):
            await cp.call(
                call.StatusNotification(connector_id=connector, error_code="NoError", status="Available")
            )
        auth = await cp.call(call.Authorize(id_tag="CARD-1"))
        assert auth.id_tag_info["status"] == "Accepted"
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-1", meter_start=1_234_000, timestamp=now_iso())
        )
        assert started.id_tag_info["status"] == "Accepted"
        tx = started.transaction_id
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        await cp.call(
            call.MeterValues(
                connector_id=1,
                transaction_id=tx,
                meter_value=[
                    {
                        "timestamp": now_iso(),
                        "sampled_value": [
                            {"value": "1239.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
                            {"value": "11000", "unit": "W", "measurand": "Power.Active.Import"},
                        ],
                    }
                ],
            )
        )
        live = (await api.get("/api/sessions", params={"status": "active"})).json()
        assert [(s["id"], s["energy_wh"], s["token_uid"]) for s in live] == [(tx, 5_500, "CARD-1")]

        stopped = await cp.call(
            call.StopTransaction(
                meter_stop=1_240_100,
                timestamp=now_iso(),
                transaction_id=tx,
                reason="EVDisconnected",
                id_tag="CARD-1",
            )
        )
        assert stopped.id_tag_info["status"] == "Accepted"

    session = (await api.get(f"/api/sessions/{tx}")).json()
    assert session["status"] == "completed"
    assert session["meter_start_wh"] == 1_234_000
    assert session["energy_wh"] == 6_100
    assert session["stop_reason"] == "EVDisconnected"
    values = (await api.get(f"/api/sessions/{tx}/meter-values")).json()
    assert {v["measurand"] for v in values} == {"Energy.Active.Import.Register", "Power.Active.Import"}

    station = (await api.get("/api/stations/CP-1")).json()
    assert station["vendor"] == "Test" and station["ocpp_version"] == "ocpp1.6"
    assert station["evses"][0]["evse_id"] == "NL*STK*ECP1*1"
    assert station["evses"][0]["connectors"][0]["status"] == "Charging"
    for _ in range(50):  # the disconnect is recorded just after the socket closes
        station = (await api.get("/api/stations/CP-1")).json()
        if not station["online"]:
            break
        await asyncio.sleep(0.05)
    assert station["online"] is False and station["disconnected_at"] is not None
    kinds = [e["kind"] for e in (await api.get("/api/stations/CP-1/events")).json()]
    # the connection's life in order; the set-up after the boot (its local list) runs beside it
    # and may be recorded before or after the disconnect on a loaded machine
    lifecycle = [k for k in kinds[::-1] if k != "local_list_sync"]
    assert lifecycle[:4] == ["registered", "connected", "boot", "disconnected"]
