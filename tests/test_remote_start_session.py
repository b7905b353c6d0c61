"""Issue 17 item 23: a remote start answers the session it began, or a link to follow it.

Real stations over loopback: the simulator (built on the `ocpp` package) begins a session when
it accepts a remote start, in OCPP 1.6 (StartTransaction) and 2.0.1 (TransactionEvent with our
remoteStartId); the test peer of `tests.peers` accepts and never begins one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from stekker.app import Stekker
from stekker.sim.link import StationLink
from stekker.sim.station import SimulatedStation
from stekker.sim.station201 import SimulatedStation201
from tests.peers import now_iso, ocpp_station

# a bound, not a duration asserted: the answer comes as soon as the session begins
GENEROUS_WAIT = 30.0

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@contextlib.asynccontextmanager
async def running(station: StationLink) -> AsyncIterator[StationLink]:
    task = asyncio.create_task(station.run())
    try:
        await station.wait_online(timeout=20)
        yield station
    finally:
        await station.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


def simulated(version: str, station_id: str, ocpp_url: str) -> StationLink:
    if version == "1.6":
        return SimulatedStation(station_id, ocpp_url, connectors=1, unplug_delay=0.05, reboot_delay=0.05)
    return SimulatedStation201(
        station_id, ocpp_url, evses=1, tx_updated_interval=5, unplug_delay=0.05, progress_delay=0.01
    )


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_remote_start_answers_the_session_the_station_began(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker, version: str
) -> None:
    server.settings.remote_start_session_wait = GENEROUS_WAIT
    station_id = "RS16" if version == "1.6" else "RS201"
    await api.put("/api/tokens", json={"uid": "CARD-RS"})
    async with running(simulated(version, station_id, ocpp_url)):
        response = await api.post(
            f"/api/stations/{station_id}/remote-start", json={"token_uid": "CARD-RS", "evse_number": 1}
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["status"] == "Accepted" and answer["session_id"] is not None, answer
        assert answer["session_url"] == f"/api/sessions/{answer['session_id']}"
        assert response.headers["location"] == answer["session_url"]

        session = (await api.get(answer["session_url"])).json()
        assert session["station_id"] == station_id and session["token_uid"] == "CARD-RS"
        assert session["remote_start_id"] == answer["remote_start_id"]
        assert session["started_remotely_by"] == "operator" and session["status"] == "active"

        followed = (await api.get(answer["follow_url"])).json()
        assert followed["session_id"] == answer["session_id"] and followed["answer"] == "Accepted"


async def test_a_station_that_accepts_but_never_begins_gets_a_link_to_follow(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    server.settings.remote_start_session_wait = 0.3
    await api.put("/api/tokens", json={"uid": "CARD-LATE"})
    async with ocpp_station(ocpp_url, "RS-LATE") as cp:
        response = await api.post(
            "/api/stations/RS-LATE/remote-start", json={"token_uid": "CARD-LATE", "evse_number": 1}
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["status"] == "Accepted" and answer["session_id"] is None
        assert answer["follow_url"] == f"/api/sessions/remote-starts/{answer['remote_start_id']}"
        assert response.headers["location"] == answer["follow_url"] and answer["session_url"] is None

        pending = (await api.get(answer["follow_url"])).json()
        assert pending["answer"] == "Accepted" and pending["session_id"] is None
        assert pending["station_id"] == "RS-LATE" and pending["evse_number"] == 1
        assert pending["token_uid"] == "CARD-LATE" and pending["requested_by"] == "operator"

        # the driver plugs in late: the station begins the session after the call answered
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-LATE", meter_start=10, timestamp=now_iso())
        )
        begun = (await api.get(answer["follow_url"])).json()
        assert begun["session_id"] == started.transaction_id
        assert begun["session_url"] == f"/api/sessions/{started.transaction_id}"


async def test_no_wait_when_the_station_rejects_or_the_wait_is_off(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-NO"})
    server.settings.remote_start_session_wait = GENEROUS_WAIT
    async with ocpp_station(ocpp_url, "RS-NO") as cp:
        cp.remote_start_answer = "Rejected"
        # a Rejected answer is final: no wait for a session that will not come
        rejected = await asyncio.wait_for(
            api.post("/api/stations/RS-NO/remote-start", json={"token_uid": "CARD-NO"}), GENEROUS_WAIT / 2
        )
        assert rejected.json()["status"] == "Rejected" and rejected.json()["session_id"] is None
        assert rejected.json()["follow_url"] is None and "location" not in rejected.headers
        cp.remote_start_answer = "Accepted"
        server.settings.remote_start_session_wait = 0
        accepted = await asyncio.wait_for(
            api.post("/api/stations/RS-NO/remote-start", json={"token_uid": "CARD-NO"}), GENEROUS_WAIT / 2
        )
        assert accepted.json()["session_id"] is None and accepted.json()["follow_url"]


async def test_following_a_remote_start_refuses_hostile_ids(api: httpx.AsyncClient) -> None:
    for bad in ("0", "-1", "abc", str(2**53), "1e3", "1%00"):
        response = await api.get(f"/api/sessions/remote-starts/{bad}")
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"] == "invalid_request"
    missing = await api.get("/api/sessions/remote-starts/999")
    assert missing.status_code == 404 and missing.json()["detail"] == "no remote start 999"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_cli_session_start_prints_the_session_or_how_to_follow_it(
    cli: Any, api: httpx.AsyncClient, ocpp_url: str, server: Stekker, version: str
) -> None:
    server.settings.remote_start_session_wait = GENEROUS_WAIT
    station_id = f"RSC{version.replace('.', '')}"
    assert (await cli("token", "add", "CARD-CLI")).exit_code == 0
    async with running(simulated(version, station_id, ocpp_url)):
        result = await cli("session", "start", station_id, "--token", "CARD-CLI", "--evse", "1")
        assert result.exit_code == 0, result.output
        assert "answered Accepted" in result.output
        session_id = _session_in(result.output)
        assert f"stekker session show {session_id}" in result.output
        session = (await api.get(f"/api/sessions/{session_id}")).json()
        assert session["station_id"] == station_id and session["token_uid"] == "CARD-CLI"
        shown = json.loads((await cli("session", "show", str(session_id), "-o", "json")).stdout)
        # a live session: its charging state and energy move on between the two reads
        assert {k: shown[k] for k in ("id", "station_id", "token_uid", "remote_start_id")} == {
            k: session[k] for k in ("id", "station_id", "token_uid", "remote_start_id")
        }


async def test_cli_session_start_says_how_to_follow_a_late_session(
    cli: Any, ocpp_url: str, server: Stekker
) -> None:
    server.settings.remote_start_session_wait = 0.3
    assert (await cli("token", "add", "CARD-CLI2")).exit_code == 0
    async with ocpp_station(ocpp_url, "RSC-LATE") as cp:
        result = await cli("session", "start", "RSC-LATE", "--token", "CARD-CLI2", "--evse", "1")
        assert result.exit_code == 0, result.output
        assert "has not begun yet" in result.output and "stekker session follow 1" in result.output
        pending = await cli("session", "follow", "1", "--wait", "0")
        assert pending.exit_code == 1 and "not begun yet" in pending.output
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-CLI2", meter_start=10, timestamp=now_iso())
        )
        followed = await cli("session", "follow", "1", "--wait", "5")
        assert followed.exit_code == 0, followed.output
        assert f"session {started.transaction_id} began" in followed.output
    missing = await cli("session", "follow", "77")
    assert missing.exit_code == 1 and "no remote start 77" in missing.output


def _session_in(output: str) -> int:
    """The session id in `session N began ...`."""
    for line in output.splitlines():
        words = line.split()
        if len(words) > 2 and words[0] == "session" and words[2].rstrip(":") == "began":
            return int(words[1])
    raise AssertionError(output)
