"""What a newcomer sees in the demo: simulated stations boot, charge, and obey remote stop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest

from stekker.sim.fleet import run_fleet
from tests.test_central_authorization import eventually


@pytest.mark.parametrize("settings_overrides", [{"configure_stations_on_boot": True}])
async def test_fleet_charges_and_obeys_remote_stop(api: httpx.AsyncClient, ocpp_url: str) -> None:
    for uid in ("SIM-TAG-1", "SIM-TAG-2"):
        await api.put("/api/tokens", json={"uid": uid})
    stop = asyncio.Event()
    fleet = asyncio.create_task(
        run_fleet(
            ocpp_url,
            2,
            prefix="FLT",
            id_tags=["SIM-TAG-1", "SIM-TAG-2"],
            session_every=100_000,
            meter_interval=1,
            stop_event=stop,
        )
    )
    try:
        active: list[dict[str, Any]] = []

        async def one_session_charging() -> bool:
            nonlocal active
            active = (await api.get("/api/sessions", params={"status": "active"})).json()
            return len(active) == 1 and (active[0]["energy_wh"] or 0) > 0

        await eventually(one_session_charging, timeout=15)
        [session] = active
        assert session["station_id"] == "FLT001" and session["meter_start_wh"] > 0
        stations = (await api.get("/api/stations")).json()
        assert [(s["id"], s["online"], s["local_list_version"]) for s in stations] == [
            ("FLT001", True, 2),
            ("FLT002", True, 2),
        ]

        response = await api.post(f"/api/sessions/{session['id']}/remote-stop")
        assert response.json()["status"] == "Accepted"

        async def stopped() -> bool:
            done = (await api.get(f"/api/sessions/{session['id']}")).json()
            return bool(done["status"] == "completed")

        await eventually(stopped, timeout=10)
        done = (await api.get(f"/api/sessions/{session['id']}")).json()
        assert done["stop_reason"] == "Remote" and done["energy_wh"] > 0

        response = await api.post("/api/stations/FLT002/remote-start", json={"token_uid": "SIM-TAG-2"})
        assert response.json()["status"] == "Accepted"

        async def started_on_flt002() -> bool:
            rows = (await api.get("/api/sessions", params={"station_id": "FLT002"})).json()
            return len(rows) == 1 and rows[0]["token_uid"] == "SIM-TAG-2"

        await eventually(started_on_flt002, timeout=10)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(fleet, 20)
