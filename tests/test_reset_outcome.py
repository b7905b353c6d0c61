"""A call whose connection closes after it was sent has an unknown outcome, not "offline":
a station that takes Reset Hard, drops the socket without answering and boots again did
reset (API and bulk job alike), and a job never sends such a reset again."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from stekker.app import Stekker
from tests.observe import eventually

OCPP16 = [Subprotocol("ocpp1.6")]
BOOT = {"chargePointVendor": "Raw", "chargePointModel": "R1"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"call_timeout": 2.0, "reset_boot_window": 5.0}


class RebootingStation:
    """A bare 1.6 station that, like real ones, takes a Reset by dropping its socket without
    answering, then (if `comes_back`) connects and boots again. Other calls are Accepted."""

    def __init__(self, url: str, comes_back: bool = True) -> None:
        self.url = url
        self.comes_back = comes_back
        self.resets = 0
        self.boots = 0
        self.online = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _boot(self, ws: Any) -> None:
        await ws.send(json.dumps([2, f"boot{self.boots}", "BootNotification", BOOT]))
        self.boots += 1
        while json.loads(await ws.recv())[0] == 2:  # calls before the boot is answered: none here
            pass

    async def _run(self) -> None:
        while True:
            async with connect(self.url, subprotocols=OCPP16) as ws:
                await self._boot(ws)
                self.online.set()
                async for message in ws:
                    frame = json.loads(message)
                    if frame[0] != 2:
                        continue
                    if frame[2] == "Reset":
                        self.resets += 1
                        self.online.clear()
                        break  # the socket closes with the reboot, unanswered
                    await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
            if not self.comes_back:
                return
            await asyncio.sleep(0.05)  # the reboot

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RebootingStation]:
        self._task = asyncio.create_task(self._run())
        try:
            await asyncio.wait_for(self.online.wait(), 5)
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def booted(api: httpx.AsyncClient, station_id: str) -> bool:
    station = (await api.get(f"/api/stations/{station_id}")).json()
    return bool(station.get("online"))


async def test_a_reset_answered_by_a_reboot_is_done(api: httpx.AsyncClient, ocpp_url: str) -> None:
    station = RebootingStation(f"{ocpp_url}/RB1")
    async with station.running():
        await eventually(lambda: booted(api, "RB1"), 5)
        response = await api.post("/api/stations/RB1/functions/reset", json={"args": {"type": "Hard"}})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["status"] == "Accepted" and answer["accepted"] is True
        assert "booted again" in answer["reply"]["outcome"]
        assert (station.resets, station.boots) == (1, 2)


@pytest.mark.parametrize("settings_overrides", [{"call_timeout": 2.0, "reset_boot_window": 0.3}])
async def test_a_reset_whose_station_never_returns_is_unknown_not_offline(
    api: httpx.AsyncClient, ocpp_url: str, cli: Any
) -> None:
    station = RebootingStation(f"{ocpp_url}/RB2", comes_back=False)
    async with station.running():
        await eventually(lambda: booted(api, "RB2"), 5)
        response = await api.post("/api/stations/RB2/functions/reset", json={"args": {"type": "Hard"}})
    assert response.status_code == 202, response.text
    cli_station = RebootingStation(f"{ocpp_url}/RB2CLI", comes_back=False)
    async with cli_station.running():
        await eventually(lambda: booted(api, "RB2CLI"), 5)
        result = await cli("station", "reset", "RB2CLI", "--hard")
    assert result.exit_code == 1 and "outcome unknown" in result.output, result.output
    assert cli_station.resets == 1
    assert response.json()["error"] == "outcome_unknown"
    assert "disconnected after receiving the call" in response.json()["detail"]
    assert (station.resets, station.boots) == (1, 1)
    # a station that is simply not connected is still offline
    response = await api.post("/api/stations/RB2/functions/reset", json={"args": {"type": "Hard"}})
    assert (response.status_code, response.json()["error"]) == (409, "station_offline")


async def job_done(api: httpx.AsyncClient, job_id: int) -> dict[str, Any] | None:
    job = (await api.get(f"/api/jobs/{job_id}")).json()
    return job if job["state"] == "completed" else None


async def test_a_bulk_hard_reset_is_sent_once_and_counts_the_reboot(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    server.jobs.after_boot_delay = 0.05
    station = RebootingStation(f"{ocpp_url}/RB3")
    async with station.running():
        await eventually(lambda: booted(api, "RB3"), 5)
        body = {"function": "reset", "args": {"type": "Hard"}, "selection": {"station_ids": ["RB3"]}}
        response = await api.post("/api/jobs", json=body)
        assert response.status_code == 201, response.text
        job = await eventually(lambda: job_done(api, response.json()["id"]), 10)
        await asyncio.sleep(0.3)  # were it sent again, the station would take it by now
        assert (station.resets, station.boots) == (1, 2)
    [row] = job["stations"]
    assert (row["state"], row["status"], row["attempts"]) == ("accepted", "Accepted", 1)


@pytest.mark.parametrize("settings_overrides", [{"call_timeout": 2.0, "reset_boot_window": 0.3}])
async def test_a_bulk_reset_of_unknown_outcome_is_never_sent_again(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """No boot within the window: the station may still have reset; sending it again could
    reboot it once more, so its row ends with the outcome unknown after one send."""
    server.jobs.after_boot_delay = 0.05
    station = RebootingStation(f"{ocpp_url}/RB4", comes_back=False)
    async with station.running():
        await eventually(lambda: booted(api, "RB4"), 5)
        body = {"function": "reset", "args": {"type": "Hard"}, "selection": {"station_ids": ["RB4"]}}
        response = await api.post("/api/jobs", json=body)
        job = await eventually(lambda: job_done(api, response.json()["id"]), 10)
    [row] = job["stations"]
    assert (row["state"], row["status"], row["attempts"]) == ("timed_out", "OutcomeUnknown", 1)
    assert row["error"].startswith("unknown:")
    assert (station.resets, station.boots) == (1, 1)
