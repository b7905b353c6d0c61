"""Every remote function on a simulated OCPP 2.0.1 station, through the same HTTP API as 1.6:
the station's answer, and what the station then shows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from stekker.sim.station201 import SimulatedStation201
from tests.observe import add_token, eventually
from tests.test_functions_v16 import boots, call, connector_status


@contextlib.asynccontextmanager
async def sim201(ocpp_url: str, station_id: str, **kw: Any) -> AsyncIterator[SimulatedStation201]:
    station = SimulatedStation201(
        station_id, ocpp_url, evses=2, reboot_delay=0.1, unplug_delay=0.1, progress_delay=0.05, **kw
    )
    task = asyncio.create_task(station.run())
    try:
        await station.wait_online(timeout=10)
        yield station
    finally:
        await station.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


async def _is(api: httpx.AsyncClient, station_id: str, evse: int, status: str) -> bool:
    return await connector_status(api, station_id, evse) == status


async def test_availability_unlock_trigger_and_reset(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "F201-TAG")
    async with sim201(ocpp_url, "F2A") as station:
        await eventually(lambda: _is(api, "F2A", 1, "Available"))

        result = await call(api, "F2A", "change_availability", operative=False, evse_number=1)
        assert (result["status"], result["accepted"]) == ("Accepted", True)
        await eventually(lambda: _is(api, "F2A", 1, "Unavailable"))
        assert await connector_status(api, "F2A", 2) == "Available"
        await call(api, "F2A", "change_availability", operative=True, evse_number=1, connector_number=1)
        await eventually(lambda: _is(api, "F2A", 1, "Available"))

        assert (await call(api, "F2A", "unlock_connector", evse_number=1))["status"] == "Unlocked"
        unknown = await call(api, "F2A", "unlock_connector", evse_number=9)
        assert (unknown["status"], unknown["accepted"]) == ("UnknownConnector", False)

        # no transaction runs: nothing to report
        nothing = await call(api, "F2A", "trigger_message", message="TransactionEvent")
        assert (nothing["status"], nothing["accepted"]) == ("Rejected", False)
        # the 1.6 name of the upload status is understood too
        diag = await call(api, "F2A", "trigger_message", message="DiagnosticsStatusNotification")
        assert diag["status"] == "Accepted"

        # Soft is OnIdle: with a session running the station schedules it
        assert await station.start_session(1, "F201-TAG") is not None
        soft = await call(api, "F2A", "reset", type="Soft")
        assert (soft["status"], soft["accepted"]) == ("Scheduled", True)
        booted = await boots(api, "F2A")
        assert (await call(api, "F2A", "reset", type="Hard"))["status"] == "Accepted"

        async def rebooted() -> bool:
            return await boots(api, "F2A") > booted

        await eventually(rebooted)
        refused = await call(api, "F2A", "reset", type="Hard", evse_number=1)
        assert (refused["status"], refused["accepted"]) == ("Rejected", False)  # the sim resets whole only


async def test_configuration_local_list_cache_and_data_transfer(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await add_token(api, "F201-TAG-1")
    async with sim201(ocpp_url, "F2C") as station:
        changed = await call(
            api,
            "F2C",
            "set_variables",
            items=[{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "120"}],
        )
        assert changed["status"] == "Accepted"
        assert station.device_model.integer("OCPPCommCtrlr", "HeartbeatInterval") == 120
        got = await call(
            api,
            "F2C",
            "get_variables",
            items=[{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"}],
        )
        assert [(r["label"], r["value"]) for r in got["reply"]["results"]] == [
            ("OCPPCommCtrlr.HeartbeatInterval", "120")
        ]
        # 1.6 keys have no component: a clear refusal, not a guess
        refused = await call(
            api, "F2C", "change_configuration", expect=422, key="HeartbeatInterval", value="5"
        )
        assert "component" in refused["detail"]

        report = await call(api, "F2C", "get_base_report", report_base="SummaryInventory")
        assert report["status"] == "Accepted"

        station.authorization.cache["OLD"] = {"status": "Accepted"}
        assert (await call(api, "F2C", "clear_cache"))["status"] == "Accepted"
        assert station.authorization.cache == {}

        synced = await call(api, "F2C", "sync_local_list", full=True)
        assert synced["status"] == "Accepted"
        assert "F201-TAG-1" in station.authorization.local_list
        version = await call(api, "F2C", "get_local_list_version")
        assert version["reply"]["version"] == synced["reply"]["version"]

        echo = await call(
            api, "F2C", "data_transfer", vendor_id="Stekker", message_id="echo", data={"greeting": "hi"}
        )
        assert echo["reply"] == {"status": "Accepted", "data": {"greeting": "hi"}}


async def test_firmware_update_is_tracked_to_installed(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with sim201(ocpp_url, "F2F", firmware_version="2.4.0"):
        result = await call(api, "F2F", "update_firmware", location="https://firmware.example/sim-2.4.1.bin")
        assert result["status"] == "Accepted"

        async def installed() -> dict[str, Any] | None:
            updates = (await api.get("/api/stations/F2F/firmware")).json()
            return updates[0] if updates and updates[0]["status"] == "Installed" else None

        update = await eventually(installed)
        assert update["id"] == result["reply"]["update_id"]
        assert [h["status"] for h in update["history"]] == [
            "Downloading",
            "Downloaded",
            "Installing",
            "InstallRebooting",
            "Installed",
        ]
        station = (await api.get("/api/stations/F2F")).json()
        assert station["firmware_version"] == "2.4.1"


async def test_reservation_expires_and_cancel(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with sim201(ocpp_url, "F2R"):
        await eventually(lambda: _is(api, "F2R", 2, "Available"))
        soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        first = await call(api, "F2R", "reserve_now", evse_number=2, token_uid="F2-CARD", expires_at=soon)
        assert first["status"] == "Accepted"
        await eventually(lambda: _is(api, "F2R", 2, "Reserved"))

        async def expired() -> bool:
            rows = (await api.get("/api/stations/F2R/reservations")).json()
            return bool(rows[0]["status"] == "Expired")

        await eventually(expired)  # the station's ReservationStatusUpdate
        await eventually(lambda: _is(api, "F2R", 2, "Available"))

        later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        second = await call(
            api, "F2R", "reserve_now", token_uid="F2-CARD", expires_at=later, reservation_id=4242
        )
        assert (second["status"], second["reply"]["reservation_id"]) == ("Accepted", 4242)
        assert (await call(api, "F2R", "cancel_reservation", reservation_id=4242))["status"] == "Accepted"
        rows = (await api.get("/api/stations/F2R/reservations")).json()
        assert [(r["reservation_id"], r["status"]) for r in rows] == [
            (4242, "Cancelled"),
            (first["reply"]["reservation_id"], "Expired"),
        ]


async def test_charging_profile_and_composite_schedule(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with sim201(ocpp_url, "F2P") as station:
        profile = {
            "id": 11,
            "stack_level": 0,
            "purpose": "ChargingStationMaxProfile",
            "kind": "Absolute",
            "schedule": {
                "unit": "W",
                "start_at": datetime.now(UTC).isoformat(),
                "periods": [{"start": 0, "limit": "6900.5"}, {"start": 3600, "limit": 11000}],
            },
        }
        result = await call(api, "F2P", "set_charging_profile", evse_number=0, profile=profile)
        assert result["status"] == "Accepted"
        assert 11 in station.station_profiles

        schedule = await call(api, "F2P", "get_composite_schedule", evse_number=0, duration=300)
        reply = schedule["reply"]
        assert reply["status"] == "Accepted" and reply["evse_number"] == 0 and reply["unit"] == "W"
        assert reply["periods"][0]["start"] == 0 and reply["periods"][0]["limit"] <= 6900.5

        tx_default = {
            **profile,
            "id": 12,
            "purpose": "TxDefaultProfile",
            "kind": "Relative",
            "schedule": {"unit": "A", "periods": [{"start": 0, "limit": 16}]},
        }
        assert (await call(api, "F2P", "set_charging_profile", evse_number=1, profile=tx_default))[
            "status"
        ] == "Accepted"
        asked = await call(api, "F2P", "get_charging_profiles", evse_number=1)
        assert asked["status"] == "Accepted"

        async def reported() -> list[dict[str, Any]]:
            events = (await api.get("/api/stations/F2P/events")).json()
            return [
                e["detail"]
                for e in events
                if e["kind"] == "charging_profiles_report"
                and e["detail"]["requestId"] == asked["reply"]["request_id"]
            ]

        [report] = await eventually(reported)
        assert report["evseId"] == 1 and [p["id"] for p in report["chargingProfile"]] == [12]
        assert report["chargingProfile"][0]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 16

        cleared = await call(api, "F2P", "clear_charging_profile", evse_number=1, purpose="TxDefaultProfile")
        assert cleared["status"] == "Accepted" and 12 not in station.evses[1].outlet.profiles
        assert 11 in station.station_profiles
        none_left = await call(api, "F2P", "get_charging_profiles", evse_number=1, purpose="TxDefaultProfile")
        assert (none_left["status"], none_left["accepted"]) == ("NoProfiles", True)
