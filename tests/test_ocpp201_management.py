"""Operating 2.0.1 stations through the same API and CLI as 1.6 ones: configuration (device
model and 1.6 keys), remote start/stop, and central authorization set up at boot."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ocpp.v201 import call
from sqlalchemy import select

from stekker.app import Stekker
from stekker.db.models import AuditEntry
from tests.observe import eventually
from tests.peers import now_iso, ocpp_station
from tests.peers201 import Station201, ocpp201_station


async def stored(api: httpx.AsyncClient, station_id: str, **params: str) -> dict[str, dict[str, Any]]:
    response = await api.get(f"/api/stations/{station_id}/variables", params=params)
    assert response.status_code == 200, response.text
    return {v["label"]: v for v in response.json()}


async def test_base_report_in_several_messages_is_stored(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with ocpp201_station(ocpp_url, "DM201") as station:
        station.report_parts = 3
        response = await api.post("/api/stations/DM201/reports", json={"report_base": "FullInventory"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Accepted"
        assert station.calls("GetBaseReport")[0]["report_base"] == "FullInventory"

        async def complete() -> bool:
            return len(await stored(api, "DM201")) == len(station.variables)

        await eventually(complete)
    variables = await stored(api, "DM201")
    assert variables["AuthCtrlr.LocalPreAuthorize"]["value"] == "true"
    assert variables["ChargingStation.VendorName"]["mutability"] == "ReadOnly"
    assert variables["OCPPCommCtrlr.HeartbeatInterval"]["source"] == "report"
    events = (await api.get("/api/stations/DM201/events")).json()
    assert any(e["kind"] == "report_received" and e["detail"]["parts"] == 3 for e in events)


async def test_get_and_set_variables_on_a_201_station(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    async with ocpp201_station(ocpp_url, "GS201") as station:
        got = await api.post(
            "/api/stations/GS201/variables/get",
            json={
                "items": [
                    {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"},
                    {"component": "AuthCtrlr", "variable": "Nope"},
                ]
            },
        )
        assert got.status_code == 200, got.text
        assert [(r["label"], r["status"], r["value"]) for r in got.json()] == [
            ("OCPPCommCtrlr.HeartbeatInterval", "Accepted", "300"),
            ("AuthCtrlr.Nope", "UnknownVariable", None),
        ]
        changed = await api.post(
            "/api/stations/GS201/variables/set",
            json={
                "items": [
                    {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "120"},
                    {"component": "ChargingStation", "variable": "VendorName", "value": "Evil"},
                    {"component": "NoSuchCtrlr", "variable": "X", "value": "1"},
                ]
            },
        )
        assert changed.status_code == 200, changed.text
        assert [r["status"] for r in changed.json()] == ["Accepted", "Rejected", "UnknownComponent"]
        assert station.variables[("OCPPCommCtrlr", "HeartbeatInterval")] == "120"
        assert station.variables[("ChargingStation", "VendorName")] == "Test"
    variables = await stored(api, "GS201")
    assert variables["OCPPCommCtrlr.HeartbeatInterval"]["value"] == "120"
    assert "ChargingStation.VendorName" not in variables  # never reported, and the change was refused
    async with server.ctx.db() as db:
        rows = (
            await db.execute(select(AuditEntry).where(AuditEntry.action == "station.variable.set"))
        ).scalars()
        audited = sorted((row.detail["variable"], row.result) for row in rows)
    assert audited == [
        ("ChargingStation.VendorName", "Rejected"),
        ("NoSuchCtrlr.X", "UnknownComponent"),
        ("OCPPCommCtrlr.HeartbeatInterval", "Accepted"),
    ]


async def test_configuration_of_a_16_station_through_the_same_api(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with ocpp_station(ocpp_url, "CFG16") as station:
        station.configuration["HeartbeatInterval"] = "300"
        changed = await api.post(
            "/api/stations/CFG16/variables/set",
            json={
                "items": [
                    {"variable": "HeartbeatInterval", "value": "60"},
                    {"variable": "MeterValueSampleInterval", "value": "30"},
                ]
            },
        )
        assert changed.status_code == 200, changed.text
        assert [(r["label"], r["status"]) for r in changed.json()] == [
            ("OCPP16.HeartbeatInterval", "Accepted"),
            ("OCPP16.MeterValueSampleInterval", "Accepted"),
        ]
        assert station.calls("ChangeConfiguration") == [
            {"key": "HeartbeatInterval", "value": "60"},
            {"key": "MeterValueSampleInterval", "value": "30"},
        ]
        wrong = await api.post(
            "/api/stations/CFG16/variables/set",
            json={"items": [{"component": "AuthCtrlr", "variable": "Enabled", "value": "true"}]},
        )
        assert wrong.status_code == 422
        assert "1.6" in wrong.json()["detail"]
    variables = await stored(api, "CFG16", component="OCPP16")
    assert variables["OCPP16.HeartbeatInterval"]["value"] == "60"


async def test_configuration_refusals_say_why(api: httpx.AsyncClient, ocpp_url: str) -> None:
    assert (await api.get("/api/stations/NOPE/variables")).status_code == 404
    offline = await api.post("/api/stations", json={"authentication": "none", "id": "OFFCFG"})
    assert offline.status_code in (200, 201)
    answer = await api.post("/api/stations/OFFCFG/variables/get", json={"items": [{"variable": "X"}]})
    assert answer.status_code == 409 and answer.json()["error"] == "station_offline"
    async with ocpp201_station(ocpp_url, "BAD201"):
        for body in (
            {"items": []},
            {"items": [{"component": "A", "variable": "B", "value": "x" * 1001}]},
            {"items": [{"component": "A", "variable": "B c", "value": "1"}]},
            {"items": [{"component": "A", "variable": "B", "value": "1", "evse": -1}]},
            {"items": [{"component": "A", "variable": "B", "value": "1", "attribute_type": "Bogus"}]},
        ):
            response = await api.post("/api/stations/BAD201/variables/set", json=body)
            assert response.status_code == 422, body
        no_component = await api.post(
            "/api/stations/BAD201/variables/get", json={"items": [{"variable": "X"}]}
        )
        assert no_component.status_code == 422
        assert "component" in no_component.json()["detail"]


async def test_remote_start_and_stop_of_a_201_station(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "REMOTE201"})
    async with ocpp201_station(ocpp_url, "RS201") as station:
        started = await api.post(
            "/api/stations/RS201/remote-start", json={"token_uid": "REMOTE201", "evse_number": 1}
        )
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "Accepted"
        [request] = station.calls("RequestStartTransaction")
        assert request["id_token"] == {"id_token": "REMOTE201", "type": "ISO14443"}
        assert request["evse_id"] == 1
        await station.call(
            call.TransactionEvent(
                event_type="Started",
                timestamp=now_iso(),
                trigger_reason="RemoteStart",
                seq_no=0,
                transaction_info={
                    "transaction_id": "rs-uuid-1",
                    "remote_start_id": request["remote_start_id"],
                },
                evse={"id": 1, "connector_id": 1},
                id_token={"id_token": "REMOTE201", "type": "ISO14443"},
                meter_value=[
                    {
                        "timestamp": now_iso(),
                        "sampled_value": [{"value": 9000.0, "context": "Transaction.Begin"}],
                    }
                ],
            )
        )
        [session] = (await api.get("/api/sessions", params={"station_id": "RS201"})).json()
        assert session["started_remotely_by"] == "operator"
        assert session["transaction_id"] == "rs-uuid-1"
        stopped = await api.post(f"/api/sessions/{session['id']}/remote-stop")
        assert stopped.status_code == 200, stopped.text
        assert station.calls("RequestStopTransaction") == [{"transaction_id": "rs-uuid-1"}]
        station.start_answer = "Rejected"
        await api.put("/api/tokens", json={"uid": "REMOTE201B"})
        refused = await api.post("/api/stations/RS201/remote-start", json={"token_uid": "REMOTE201B"})
        assert refused.json()["status"] == "Rejected"
        busy = await api.post("/api/stations/RS201/remote-start", json={"token_uid": "REMOTE201"})
        assert busy.status_code == 409 and "running session" in busy.json()["detail"]


@pytest.mark.parametrize("settings_overrides", [{"configure_stations_on_boot": True}])
async def test_boot_sets_up_central_authorization_on_201(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "LIST201"})
    await api.put("/api/tokens", json={"uid": "GONE201", "status": "blocked"})
    async with ocpp201_station(ocpp_url, "CA201") as station:

        async def synced() -> bool:
            return bool(station.calls("SendLocalList"))

        await eventually(synced)
        check_variables(station)
        [sent] = station.calls("SendLocalList")
        assert sent["type"] == "Full"
        assert [e["id_token"] for e in sent["list"]] == [{"id_token": "LIST201", "type": "ISO14443"}]
        assert station.local_list_version == sent["version"] > 0

        async def reported() -> bool:  # first boot: the whole device model is fetched
            return len(await stored(api, "CA201")) == len(station.variables)

        await eventually(reported)
        assert len(station.calls("GetBaseReport")) == 1
    variables = await stored(api, "CA201")
    assert variables["AuthCtrlr.LocalPreAuthorize"]["value"] == "false"
    assert variables["ChargingStation.VendorName"]["source"] == "report"
    async with ocpp201_station(ocpp_url, "CA201") as again:

        async def setup_done_twice() -> bool:
            events = (await api.get("/api/stations/CA201/events")).json()
            return [
                e["detail"]["configuration_report"] for e in events if e["kind"] == "boot_setup_done"
            ] in (
                ["known already", "fetching"],
                ["fetching", "known already"],
            )

        await eventually(setup_done_twice)
        assert again.calls("GetBaseReport") == []  # known already: no second full report


def check_variables(station: Station201) -> None:
    [setting] = station.calls("SetVariables")
    asked = {(i["component"]["name"], i["variable"]["name"]): i["attribute_value"] for i in setting["items"]}
    assert asked[("AuthCtrlr", "LocalPreAuthorize")] == "false"
    assert asked[("TxCtrlr", "StopTxOnInvalidId")] == "true"
    assert asked[("LocalAuthListCtrlr", "Enabled")] == "true"
    assert station.variables[("AuthCtrlr", "LocalPreAuthorize")] == "false"


async def test_cli_reads_and_changes_configuration_of_both_versions(cli: Any, ocpp_url: str) -> None:
    async with ocpp201_station(ocpp_url, "CLI201") as station, ocpp_station(ocpp_url, "CLI16") as old:
        old.configuration["HeartbeatInterval"] = "300"
        result = await cli(
            "station", "set", "CLI201", "OCPPCommCtrlr.HeartbeatInterval=90", "ChargingStation.VendorName=X"
        )
        assert result.exit_code == 0, result.output
        assert "Accepted" in result.output and "Rejected" in result.output
        assert station.variables[("OCPPCommCtrlr", "HeartbeatInterval")] == "90"
        result = await cli("station", "get", "CLI201", "AuthCtrlr.LocalPreAuthorize")
        assert result.exit_code == 0 and "true" in result.output
        result = await cli("station", "set", "CLI16", "HeartbeatInterval=45")
        assert result.exit_code == 0, result.output
        assert old.configuration["HeartbeatInterval"] == "45"
        result = await cli("station", "config", "CLI201", "--refresh")
        assert result.exit_code == 0, result.output
        assert "report requested: Accepted" in result.output
        result = await cli("station", "set", "CLI201", "no-equals-sign")
        assert result.exit_code == 2 and "Component.Variable=value" in result.output
        result = await cli("station", "get", "CLI201", "Bad..Label")
        assert result.exit_code == 2 and "cannot read" in result.output
