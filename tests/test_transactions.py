"""Transactions that never go wrong: retransmissions, unknown stops, offline queues, meter linking."""

from __future__ import annotations

from typing import Any

import httpx

from tests.peers import raw_station

T0 = "2026-11-20T10:00:00Z"


def start(tag: str = "CARD-1", meter: int = 5_000_000, ts: str = T0, connector: int = 1) -> dict[str, Any]:
    return {"connectorId": connector, "idTag": tag, "meterStart": meter, "timestamp": ts}


def meter(tx: int | None, wh: int, ts: str, connector: int = 1, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "connectorId": connector,
        "meterValue": [{"timestamp": ts, "sampledValue": [{"value": str(wh), **extra}]}],
    }
    if tx is not None:
        payload["transactionId"] = tx
    return payload


async def sessions(api: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await api.get("/api/sessions", params=params)
    assert response.status_code == 200
    result: list[dict[str, Any]] = response.json()
    return result


async def test_retransmitted_start_returns_same_transaction(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    async with raw_station(ocpp_url, "CP-DUP") as st:
        first = await st.ok("StartTransaction", start())
        again = await st.ok("StartTransaction", start())  # same content, new message id: a retry
        assert again == first
        assert first["idTagInfo"]["status"] == "Accepted"
    assert len(await sessions(api)) == 1


async def test_stop_twice_and_stop_unknown_are_accepted_and_recorded(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    async with raw_station(ocpp_url, "CP-STOP") as st:
        tx = (await st.ok("StartTransaction", start()))["transactionId"]
        stop = {"transactionId": tx, "meterStop": 5_007_500, "timestamp": "2026-11-20T11:00:00Z"}
        await st.ok("StopTransaction", stop)
        await st.ok("StopTransaction", {**stop, "meterStop": 9_999_999})  # retransmission, altered
        for unknown in (0, 424242):
            reply = await st.call(
                "StopTransaction", {"transactionId": unknown, "meterStop": 1, "timestamp": T0, "idTag": "X"}
            )
            assert reply[0] == 3, reply  # accepted: a station must not retry this forever
            assert reply[2]["idTagInfo"]["status"] == "Invalid"
    [session] = await sessions(api)
    assert session["energy_wh"] == 7_500 and session["stop_reason"] == "Local"
    events = (await api.get("/api/stations/CP-STOP/events")).json()
    unknown_stops = [
        e["detail"]["transaction_id"] for e in events if e["kind"] == "stop_for_unknown_transaction"
    ]
    assert sorted(unknown_stops) == ["0", "424242"]


async def test_offline_queue_applied_in_order_with_station_timestamps(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """A station that was offline for a day replays its queue: start, meter values, stop,
    all stamped yesterday, then a status it had sent before the outage arrives late."""
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    async with raw_station(ocpp_url, "CP-OFF") as st:
        await st.ok(
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": "Available",
                "timestamp": "2026-11-20T12:30:00+01:00",
            },
        )
        tx = (await st.ok("StartTransaction", start(ts="2026-11-20T10:00:00+01:00")))["transactionId"]
        await st.ok("MeterValues", meter(tx, 5_003_000, "2026-11-20T10:30:00+01:00"))
        await st.ok(
            "StopTransaction",
            {
                "transactionId": tx,
                "meterStop": 5_006_000,
                "timestamp": "2026-11-20T11:00:00+01:00",
                "reason": "Local",
            },
        )
        # a status from before the newest one arrives late: history keeps it, current status does not
        await st.ok(
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": "Charging",
                "timestamp": "2026-11-20T10:00:05+01:00",
            },
        )
    [session] = await sessions(api)
    assert session["start_time"].startswith("2026-11-20T09:00:00")  # UTC inside
    assert session["stop_time"].startswith("2026-11-20T10:00:00")
    assert session["energy_wh"] == 6_000
    station = (await api.get("/api/stations/CP-OFF")).json()
    assert station["evses"][0]["connectors"][0]["status"] == "Available"


async def test_meter_values_without_transaction_id_are_linked(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    async with raw_station(ocpp_url, "CP-MV") as st:
        tx = (await st.ok("StartTransaction", start(connector=2)))["transactionId"]
        await st.ok("MeterValues", meter(None, 5_002_000, "2026-11-20T10:10:00Z", connector=2))
        await st.ok("MeterValues", meter(None, 5_003, "2026-11-20T10:20:00Z", connector=2, unit="kWh"))
        await st.ok("MeterValues", meter(None, 77, "2026-11-20T10:20:00Z", connector=1))  # idle connector
        [live] = await sessions(api, status="active")
        assert live["id"] == tx and live["energy_wh"] == 3_000
    values = (await api.get(f"/api/sessions/{tx}/meter-values")).json()
    assert [v["value"] for v in values] == ["5002000", "5003"]


async def test_energy_is_never_computed_from_zero(api: httpx.AsyncClient, ocpp_url: str) -> None:
    """A register that went backwards (meter replaced mid-session) gives no energy, not a lifetime."""
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    async with raw_station(ocpp_url, "CP-ZERO") as st:
        tx = (await st.ok("StartTransaction", start(meter=8_000_000)))["transactionId"]
        await st.ok(
            "StopTransaction", {"transactionId": tx, "meterStop": 1_200, "timestamp": "2026-11-20T11:00:00Z"}
        )
    [session] = await sessions(api)
    assert session["energy_wh"] is None
    kinds = [e["kind"] for e in (await api.get("/api/stations/CP-ZERO/events")).json()]
    assert "meter_anomaly" in kinds


async def test_new_start_on_busy_connector_closes_the_lost_session(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    await api.put("/api/tokens", json={"uid": "CARD-2"})
    async with raw_station(ocpp_url, "CP-LOST") as st:
        old = (await st.ok("StartTransaction", start()))["transactionId"]
        await st.ok("MeterValues", meter(old, 5_001_000, "2026-11-20T10:30:00Z"))
        # power loss: the station forgot the stop, and a new driver starts
        new = await st.ok("StartTransaction", start(tag="CARD-2", meter=5_001_500, ts="2026-11-20T12:00:00Z"))
        assert new["idTagInfo"]["status"] == "Accepted"
    by_id = {s["id"]: s for s in await sessions(api)}
    assert by_id[old]["status"] == "completed" and by_id[old]["stop_reason"] == "Superseded"
    assert by_id[old]["energy_wh"] == 1_000
    assert by_id[new["transactionId"]]["status"] == "active"
