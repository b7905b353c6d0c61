"""The derived station status through the API and the CLI, with real OCPP 1.6 and 2.0.1
stations over loopback: charging shows Charging (never the Available of connector 0), a
fault shows Faulted, a disconnect shows Offline."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from stekker.app import Stekker
from stekker.db.models import ChargingStation, Connector, Evse
from stekker.services import station_status
from tests.observe import add_token, eventually
from tests.peers import ocpp_station, raw_station
from tests.peers201 import tx_event

P201 = "ocpp2.0.1"


async def _station(api: httpx.AsyncClient, station_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/stations/{station_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _status_is(api: httpx.AsyncClient, station_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = await _station(api, station_id)
        return body if body["status"] == status else None

    found: dict[str, Any] = await eventually(check)
    return found


def _status(ocpp16_connector: int, status: str, error: str = "NoError") -> call.StatusNotification:
    return call.StatusNotification(connector_id=ocpp16_connector, error_code=error, status=status)


async def test_16_charging_faulted_and_offline(api: httpx.AsyncClient, ocpp_url: str, cli: Any) -> None:
    await add_token(api, "CARD16")
    async with ocpp_station(ocpp_url, "ST16") as cp:
        for connector in (0, 1, 2):
            await cp.call(_status(connector, "Available"))
        body = await _status_is(api, "ST16", "Available")
        assert [e["status"] for e in body["evses"]] == ["Available", "Available"]

        await cp.call(_status(1, "Preparing"))
        await _status_is(api, "ST16", "Occupied")
        await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD16", meter_start=1000, timestamp=_now())
        )
        await cp.call(_status(1, "Charging"))
        body = await _status_is(api, "ST16", "Charging")
        # the station still says Available for itself (connector 0): shown, but not as its status
        assert body["reported_status"] == "Available"
        assert [e["status"] for e in body["evses"]] == ["Charging", "Available"]
        listed = (await api.get("/api/stations")).json()
        assert [s["status"] for s in listed if s["id"] == "ST16"] == ["Charging"]

        result = await cli("station", "list")
        assert result.exit_code == 0, result.output
        assert any("ST16" in line and "Charging" in line for line in result.output.splitlines())
        result = await cli("station", "show", "ST16")
        assert result.exit_code == 0, result.output
        assert "Charging" in result.output and "Available" in result.output

        # a broken second EVSE needs a technician even while the first one charges
        await cp.call(_status(2, "Faulted", error="GroundFailure"))
        body = await _status_is(api, "ST16", "Faulted")
        assert [e["status"] for e in body["evses"]] == ["Charging", "Faulted"]
        result = await cli("station", "show", "ST16")
        assert "Faulted" in result.output

        # connector 0 Unavailable: the whole station is switched off, but a fault still shows
        await cp.call(_status(2, "Unavailable"))
        await cp.call(_status(0, "Unavailable"))
        await _status_is(api, "ST16", "Charging")  # the running session still shows
        await cp.call(_status(1, "Available"))
        await _status_is(api, "ST16", "Unavailable")
    body = await _status_is(api, "ST16", "Offline")
    assert body["online"] is False
    result = await cli("station", "show", "ST16")
    assert "Offline" in result.output


async def test_201_charging_suspended_and_offline(api: httpx.AsyncClient, ocpp_url: str, cli: Any) -> None:
    await add_token(api, "CARD201S")
    async with raw_station(ocpp_url, "ST201", protocol=P201) as station:
        await station.ok(
            "BootNotification",
            {"chargingStation": {"model": "T2", "vendorName": "Test"}, "reason": "PowerUp"},
        )
        body = await _status_is(api, "ST201", "Unknown")  # connected, nothing reported yet
        assert body["reported_status"] is None
        for evse in (1, 2):
            await station.ok("StatusNotification", _status201(evse, "Available"))
        await _status_is(api, "ST201", "Available")

        await station.ok("StatusNotification", _status201(1, "Occupied"))
        await _status_is(api, "ST201", "Occupied")  # plugged in, no transaction yet
        await station.ok(
            "TransactionEvent",
            tx_event("Started", "t201", 0, token="CARD201S", meter_wh=5000, chargingState="Charging"),
        )
        body = await _status_is(api, "ST201", "Charging")
        assert [e["status"] for e in body["evses"]] == ["Charging", "Available"]
        assert body["evses"][0]["connectors"][0]["status"] == "Occupied"  # what it sent, as sent
        result = await cli("station", "show", "ST201")
        assert result.exit_code == 0, result.output
        assert "Charging" in result.output

        await station.ok(
            "TransactionEvent",
            tx_event("Updated", "t201", 1, trigger="ChargingStateChanged", chargingState="SuspendedEV"),
        )
        await _status_is(api, "ST201", "Occupied")
        await station.ok("StatusNotification", _status201(2, "Faulted"))
        await _status_is(api, "ST201", "Faulted")
        await station.ok("StatusNotification", _status201(2, "Available"))
        await station.ok(
            "TransactionEvent", tx_event("Ended", "t201", 2, trigger="EVCommunicationLost", meter_wh=9000)
        )
        await station.ok("StatusNotification", _status201(1, "Available"))
        await _status_is(api, "ST201", "Available")
    await _status_is(api, "ST201", "Offline")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_unknown_and_hostile_station_ids_get_a_clear_answer(api: httpx.AsyncClient, cli: Any) -> None:
    response = await api.get("/api/stations/NOPE")
    assert response.status_code == 404
    assert "NOPE" in response.json()["detail"]
    result = await cli("station", "show", "NOPE")
    assert result.exit_code == 1
    assert "404" in result.output
    # a slash or a query in the id stays part of the id: no other endpoint is reached
    for hostile in ("../stations", "A?limit=1", "A/B", "<b>x</b>"):
        result = await cli("station", "show", hostile)
        assert result.exit_code == 1, result.output
        assert "404" in result.output


def _status201(evse: int, status: str) -> dict[str, Any]:
    return {"timestamp": _now(), "connectorStatus": status, "evseId": evse, "connectorId": 1}


def _now() -> str:
    from tests.peers import now_iso

    return now_iso()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_fleet_is_read_in_chunks_with_every_station_and_evse(
    server: Stekker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The map asks for the whole fleet at once: ids go in chunks, nothing is lost between them."""
    monkeypatch.setattr(station_status, "CHUNK", 2)
    statuses = ["Charging", "Faulted", None, "Available", "Occupied"]

    async def job(db: Any) -> None:
        for n, status in enumerate(statuses):
            station = ChargingStation(id=f"CH{n}", online=n != 3)
            station.evses = [Evse(evse_number=1, connectors=[Connector(connector_number=1, status=status)])]
            db.add(station)

    await server.ctx.write(job)
    async with server.ctx.db() as db:
        found = await station_status.statuses(db, [f"CH{n}" for n in range(5)] + ["NOPE"])
    assert {sid: d.status.value for sid, d in found.items()} == {
        "CH0": "Charging",
        "CH1": "Faulted",
        "CH2": "Unknown",
        "CH3": "Offline",
        "CH4": "Occupied",
    }
    assert found["CH3"].evses == {1: "Available"}  # the EVSE keeps what it said last
