"""Every remote function on a simulated OCPP 1.6 station, through the HTTP API: the station's
answer, and what the station then shows (statuses, reboots, firmware progress, reservations)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from stekker.sim.station import SimulatedStation
from tests.observe import add_token, eventually
from tests.peers import raw_station


@contextlib.asynccontextmanager
async def sim16(ocpp_url: str, station_id: str, **kw: Any) -> AsyncIterator[SimulatedStation]:
    station = SimulatedStation(station_id, ocpp_url, connectors=2, reboot_delay=0.1, unplug_delay=0.1, **kw)
    station.firmware_step_delay = 0.05
    task = asyncio.create_task(station.run())
    try:
        await station.wait_online(timeout=10)
        yield station
    finally:
        await station.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


async def call(
    api: httpx.AsyncClient, station_id: str, name: str, expect: int = 200, **args: Any
) -> dict[str, Any]:
    response = await api.post(f"/api/stations/{station_id}/functions/{name}", json={"args": args})
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


async def connector_status(api: httpx.AsyncClient, station_id: str, evse: int) -> str | None:
    station = (await api.get(f"/api/stations/{station_id}")).json()
    for e in station["evses"]:
        if e["evse_number"] == evse:
            status: str | None = e["connectors"][0]["status"]
            return status
    return None


async def boots(api: httpx.AsyncClient, station_id: str) -> int:
    events = (await api.get(f"/api/stations/{station_id}/events", params={"limit": 1000})).json()
    return sum(1 for e in events if e["kind"] == "boot")


async def test_availability_unlock_trigger_and_reset(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with sim16(ocpp_url, "F16A") as station:
        await eventually(lambda: connector_status(api, "F16A", 1))
        assert await connector_status(api, "F16A", 1) == "Available"

        result = await call(api, "F16A", "change_availability", operative=False, evse_number=1)
        assert (result["status"], result["accepted"]) == ("Accepted", True)
        assert station.connectors[1].inoperative
        await eventually(lambda: _is(api, "F16A", 1, "Unavailable"))
        assert await connector_status(api, "F16A", 2) == "Available"
        await call(api, "F16A", "change_availability", operative=True, evse_number=1)
        await eventually(lambda: _is(api, "F16A", 1, "Available"))
        # the whole station: connector 0 in 1.6
        await call(api, "F16A", "change_availability", operative=False)
        assert station.station_inoperative
        await eventually(lambda: _is(api, "F16A", 2, "Unavailable"))
        await call(api, "F16A", "change_availability", operative=True)

        assert (await call(api, "F16A", "unlock_connector", evse_number=1))["status"] == "Unlocked"
        unknown = await call(api, "F16A", "unlock_connector", evse_number=9)
        assert (unknown["status"], unknown["accepted"]) == ("NotSupported", False)

        heartbeats_before = len(
            [e for e in (await api.get("/api/stations/F16A/events")).json() if e["kind"] == "firmware_status"]
        )
        trigger = await call(api, "F16A", "trigger_message", message="FirmwareStatusNotification")
        assert trigger["status"] == "Accepted"

        async def firmware_idle_reported() -> bool:
            events = (await api.get("/api/stations/F16A/events")).json()
            return len([e for e in events if e["kind"] == "firmware_status"]) > heartbeats_before

        await eventually(firmware_idle_reported)
        # 2.0.1 only: refused before anything is sent, with the reason
        refused = await call(api, "F16A", "trigger_message", expect=422, message="TransactionEvent")
        assert refused["error"] == "not_supported" and "1.6" in refused["detail"]
        refused = await call(api, "F16A", "reset", expect=422, type="Soft", evse_number=1)
        assert "whole station" in refused["detail"]

        booted = await boots(api, "F16A")
        assert (await call(api, "F16A", "reset", type="Hard"))["status"] == "Accepted"

        async def rebooted() -> bool:
            return await boots(api, "F16A") > booted

        await eventually(rebooted)


async def _is(api: httpx.AsyncClient, station_id: str, evse: int, status: str) -> bool:
    return await connector_status(api, station_id, evse) == status


async def test_configuration_local_list_cache_and_data_transfer(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await add_token(api, "F16-TAG-1")
    await add_token(api, "F16-TAG-2")
    async with sim16(ocpp_url, "F16C") as station:
        changed = await call(api, "F16C", "change_configuration", key="HeartbeatInterval", value="120")
        assert changed["status"] == "Accepted" and station.config("HeartbeatInterval") == "120"
        stored = (
            await api.get("/api/stations/F16C/variables", params={"variable": "HeartbeatInterval"})
        ).json()
        assert [v["value"] for v in stored] == ["120"]
        read_only = await call(api, "F16C", "change_configuration", key="NumberOfConnectors", value="5")
        assert (read_only["status"], read_only["accepted"]) == ("Rejected", False)

        got = await call(api, "F16C", "get_configuration", keys=["HeartbeatInterval", "NoSuchKey"])
        assert [(r["variable"], r["status"], r["value"]) for r in got["reply"]["results"]] == [
            ("HeartbeatInterval", "Accepted", "120"),
            ("NoSuchKey", "UnknownVariable", None),
        ]
        set_many = await call(
            api,
            "F16C",
            "set_variables",
            items=[{"variable": "MeterValueSampleInterval", "value": "30"}],
        )
        assert set_many["status"] == "Accepted" and station.config("MeterValueSampleInterval") == "30"
        report = await call(api, "F16C", "get_base_report")
        assert report["reply"]["stored"] > 10

        station.auth_cache["OLD"] = {"status": "Accepted"}
        assert (await call(api, "F16C", "clear_cache"))["status"] == "Accepted"
        assert station.auth_cache == {}

        # (the token changes may already have synced it in the background: a full sync is allowed anyway)
        station.local_list = {"STALE": {"status": "Accepted"}}
        synced = await call(api, "F16C", "sync_local_list", full=True)
        assert synced["status"] == "Accepted" and synced["reply"]["entries"] == 2
        assert set(station.local_list) == {"F16-TAG-1", "F16-TAG-2"}
        assert (await call(api, "F16C", "get_local_list_version"))["reply"]["version"] == synced["reply"][
            "version"
        ]
        again = await call(api, "F16C", "sync_local_list")
        assert (again["status"], again["accepted"]) == ("current", True)

        echo = await call(api, "F16C", "data_transfer", vendor_id="Stekker", message_id="echo", data="ping")
        assert echo["reply"] == {"status": "Accepted", "data": "ping"}
        unknown = await call(api, "F16C", "data_transfer", vendor_id="Other")
        assert (unknown["status"], unknown["accepted"]) == ("UnknownVendorId", False)


async def test_firmware_update_is_tracked_to_installed(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with sim16(ocpp_url, "F16F", firmware_version="1.8.3"):
        result = await call(
            api, "F16F", "update_firmware", location="https://firmware.example/sim-1.8.4.bin", retries=2
        )
        assert result["status"] == "Accepted"
        update_id = result["reply"]["update_id"]

        async def installed() -> dict[str, Any] | None:
            updates = (await api.get("/api/stations/F16F/firmware")).json()
            return updates[0] if updates and updates[0]["status"] == "Installed" else None

        update = await eventually(installed)
        assert update["id"] == update_id and update["answer"] == "Accepted"
        assert [h["status"] for h in update["history"]] == [
            "Downloading",
            "Downloaded",
            "Installing",
            "Installed",
        ]
        assert update["location"] == "https://firmware.example/sim-1.8.4.bin"

        async def new_version() -> bool:
            station = (await api.get("/api/stations/F16F")).json()
            return bool(station["firmware_version"] == "1.8.4")

        await eventually(new_version)  # reported at the boot after installing
        # a signed update with an install time is the security extension: unsigned 1.6 has none
        refused = await call(
            api,
            "F16F",
            "update_firmware",
            expect=422,
            location="https://firmware.example/x.bin",
            install_at="2030-01-01T00:00:00Z",
        )
        assert "install time" in refused["detail"]


async def test_reservation_and_cancel(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with sim16(ocpp_url, "F16R") as station:
        await eventually(lambda: _is(api, "F16R", 1, "Available"))
        expires = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        result = await call(
            api, "F16R", "reserve_now", evse_number=1, token_uid="F16-CARD", expires_at=expires
        )
        assert result["status"] == "Accepted"
        reservation_id = result["reply"]["reservation_id"]
        assert station.connectors[1].reservation is not None
        assert station.connectors[1].reservation.reservation_id == reservation_id
        await eventually(lambda: _is(api, "F16R", 1, "Reserved"))
        [row] = (await api.get("/api/stations/F16R/reservations")).json()
        assert (row["reservation_id"], row["status"], row["token_uid"]) == (
            reservation_id,
            "Accepted",
            "F16-CARD",
        )

        cancelled = await call(api, "F16R", "cancel_reservation", reservation_id=reservation_id)
        assert cancelled["status"] == "Accepted"
        await eventually(lambda: _is(api, "F16R", 1, "Available"))
        [row] = (await api.get("/api/stations/F16R/reservations")).json()
        assert row["status"] == "Cancelled"
        again = await call(api, "F16R", "cancel_reservation", reservation_id=reservation_id)
        assert (again["status"], again["accepted"]) == ("Rejected", False)

        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        late = await call(api, "F16R", "reserve_now", expect=422, token_uid="X", expires_at=past)
        assert "future" in late["detail"]


async def test_charging_profile_and_composite_schedule(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with sim16(ocpp_url, "F16P") as station:
        profile = {
            "id": 7,
            "stack_level": 1,
            "purpose": "TxDefaultProfile",
            "kind": "Relative",
            "schedule": {"unit": "A", "periods": [{"start": 0, "limit": 10, "phases": 3}]},
        }
        result = await call(api, "F16P", "set_charging_profile", evse_number=1, profile=profile)
        assert result["status"] == "Accepted"
        installed = station.connectors[1].profiles[7]
        assert installed["charging_profile_purpose"] == "TxDefaultProfile"
        assert installed["charging_schedule"]["charging_schedule_period"][0]["limit"] == 10

        schedule = await call(api, "F16P", "get_composite_schedule", evse_number=1, duration=600, unit="A")
        reply = schedule["reply"]
        assert reply["status"] == "Accepted" and reply["unit"] == "A" and reply["evse_number"] == 1
        assert reply["periods"][0]["start"] == 0 and reply["periods"][0]["limit"] == 10

        # the station-wide limit is ChargePointMaxProfile in 1.6
        station_max = {**profile, "id": 8, "purpose": "ChargingStationMaxProfile", "kind": "Absolute"}
        assert (await call(api, "F16P", "set_charging_profile", evse_number=0, profile=station_max))[
            "status"
        ] == "Accepted"
        assert 8 in station.station_profiles

        refused = await call(api, "F16P", "get_charging_profiles", expect=422, evse_number=1)
        assert "not available for OCPP 1.6" in refused["detail"]
        cleared = await call(api, "F16P", "clear_charging_profile", profile_id=7)
        assert cleared["status"] == "Accepted" and 7 not in station.connectors[1].profiles
        again = await call(api, "F16P", "clear_charging_profile", profile_id=7)
        assert (again["status"], again["accepted"]) == ("Unknown", False)


async def test_station_commands_in_the_cli(api: httpx.AsyncClient, ocpp_url: str, cli: Any) -> None:
    listed = await cli("station", "functions")
    assert listed.exit_code == 0, listed.output
    assert "update_firmware" in listed.output and "unlock_connector" in listed.output
    async with sim16(ocpp_url, "F16L") as station:
        result = await cli("station", "availability", "F16L", "inoperative", "--evse", "2")
        assert result.exit_code == 0 and "Accepted" in result.output, result.output
        assert station.connectors[2].inoperative
        result = await cli("station", "unlock", "F16L", "1")
        assert result.exit_code == 0 and "Unlocked" in result.output, result.output
        result = await cli("station", "unlock", "F16L", "7")
        assert result.exit_code == 1 and "NotSupported" in result.output, result.output
        result = await cli("station", "trigger", "F16L", "Heartbeat")
        assert result.exit_code == 0 and "Accepted" in result.output, result.output
        result = await cli(
            "station",
            "call",
            "F16L",
            "data_transfer",
            "--arg",
            "vendor_id=Stekker",
            "--json",
            '{"message_id": "echo", "data": "ping"}',
        )
        assert result.exit_code == 0 and '"ping"' in result.output, result.output
        result = await cli("station", "call", "F16L", "reset", "--arg", "type=Medium")
        assert result.exit_code == 1 and "422" in result.output, result.output
        result = await cli("station", "call", "F16L", "reset", "--json", "[1]")
        assert result.exit_code == 2, result.output
        booted = await boots(api, "F16L")
        result = await cli("station", "reset", "F16L", "--hard")
        assert result.exit_code == 0 and "Accepted" in result.output, result.output

        async def rebooted() -> bool:
            return await boots(api, "F16L") > booted

        await eventually(rebooted)
        await station.wait_online(timeout=5)
        result = await cli("station", "firmware", "F16L", "https://firmware.example/cli.bin")
        assert result.exit_code == 0 and "Accepted" in result.output, result.output
        result = await cli("station", "firmware", "F16L")
        assert result.exit_code == 0 and "https://firmware" in result.output, result.output
    result = await cli("station", "list")
    assert result.exit_code == 0  # the existing commands still work


async def test_signed_firmware_update_and_raw_call(api: httpx.AsyncClient, ocpp_url: str) -> None:
    """The 1.6 security extension's signed update carries our requestId, and its status
    notifications find the update by it; `raw` sends any action (admin tooling)."""
    async with raw_station(ocpp_url, "F16S") as station:
        station.answers["GetConfiguration"] = {
            "configurationKey": [{"key": "K", "readonly": True, "value": "v"}]
        }
        result = await call(
            api,
            "F16S",
            "update_firmware",
            location="https://firmware.example/signed.bin",
            retrieve_at="2030-01-01T10:00:00+02:00",
            install_at="2030-01-01T12:00:00Z",
            signing_certificate="-----BEGIN CERTIFICATE-----",
            signature="c2lnbmF0dXJl",
        )
        update_id = result["reply"]["update_id"]
        [frame] = [c for c in station.server_calls if c[2] == "SignedUpdateFirmware"]
        assert frame[3] == {
            "requestId": update_id,
            "firmware": {
                "location": "https://firmware.example/signed.bin",
                "retrieveDateTime": "2030-01-01T08:00:00.000Z",
                "installDateTime": "2030-01-01T12:00:00.000Z",
                "signingCertificate": "-----BEGIN CERTIFICATE-----",
                "signature": "c2lnbmF0dXJl",
            },
        }
        await station.ok(
            "SignedFirmwareStatusNotification", {"status": "InvalidSignature", "requestId": update_id}
        )
        [update] = (await api.get("/api/stations/F16S/firmware")).json()
        assert (update["signed"], update["answer"], update["status"]) == (
            True,
            "Accepted",
            "InvalidSignature",
        )
        # finished: a later plain notification is not attached to it
        await station.ok("FirmwareStatusNotification", {"status": "Downloading"})
        [update] = (await api.get("/api/stations/F16S/firmware")).json()
        assert [h["status"] for h in update["history"]] == ["InvalidSignature"]

        raw = await call(api, "F16S", "raw", action="GetConfiguration", payload={"key": ["K"]})
        assert raw["reply"]["configurationKey"] == [{"key": "K", "readonly": True, "value": "v"}]
        unknown = await call(api, "F16S", "raw", expect=422, action="TransactionEvent", payload={})
        assert "no action" in unknown["detail"]
