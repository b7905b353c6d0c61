"""Requirement 152: the helpdesk finds a driver's session in seconds and, with one action,
stops it and releases the plug, every step visible; also at a station that ignores the stop,
at one that is offline, and within a time bound."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from stekker.app import Stekker
from stekker.db.models import AuditEntry, OcppMessage
from stekker.services import stop_release
from stekker.services.stop_release import FlowTiming
from stekker.sim import SimulatedStation, SimulatedStation201
from tests.observe import add_token, eventually
from tests.peers import RawStation, now_iso, ocpp_station, raw_station
from tests.peers201 import tx_event

# Waits end as soon as the station does its part: generous bounds cost a cooperative station
# nothing, short ones keep the tests of stubborn stations quick.
FAST = FlowTiming(total=30, stop_wait=8, settle=3, boot_wait=8)
STUBBORN = FlowTiming(total=20, stop_wait=1, settle=0.5, boot_wait=5)
QUICK = FlowTiming(total=10, stop_wait=0.4, settle=0.2, boot_wait=0.4)


@pytest.fixture
def fast_flows(monkeypatch: pytest.MonkeyPatch) -> FlowTiming:
    monkeypatch.setattr(stop_release, "DEFAULT_TIMING", FAST)
    return FAST


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def _search(api: httpx.AsyncClient, q: str, **params: Any) -> dict[str, Any]:
    response = await api.get("/api/helpdesk/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _ids(found: dict[str, Any]) -> list[int]:
    return [s["session_id"] for s in found["sessions"]]


async def _finished(api: httpx.AsyncClient, flow_id: str, wait: float = 30) -> dict[str, Any]:
    response = await api.get(f"/api/helpdesk/flows/{flow_id}", params={"wait": wait}, timeout=wait + 10)
    assert response.status_code == 200, response.text
    flow: dict[str, Any] = response.json()
    assert flow["status"] != "running", flow
    return flow


def _steps(flow: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {s["name"]: (s["status"], s["answer"]) for s in flow["steps"]}


# ------------------------------------------------------------------------------------------------
# Search
# ------------------------------------------------------------------------------------------------


async def _two_sessions(ocpp_url: str, station_id: str) -> tuple[int, int]:
    """A completed session on EVSE 1 two hours ago and a running one on EVSE 2."""
    async with ocpp_station(ocpp_url, station_id) as cp:
        for n in (1, 2):
            await cp.call(
                call.StatusNotification(
                    connector_id=n, error_code="NoError", status="Available", timestamp=now_iso()
                )
            )
        earlier = datetime.now(UTC) - timedelta(hours=2)
        old = await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag="CARD-9876", meter_start=1_000, timestamp=_iso(earlier)
            )
        )
        await cp.call(
            call.StopTransaction(
                meter_stop=3_500,
                timestamp=_iso(earlier + timedelta(minutes=30)),
                transaction_id=old.transaction_id,
                reason="Local",
            )
        )
        running = await cp.call(
            call.StartTransaction(
                connector_id=2, id_tag="04A1B2C3D4E5F6", meter_start=5_000, timestamp=now_iso()
            )
        )
        await cp.call(
            call.StatusNotification(
                connector_id=2, error_code="NoError", status="Charging", timestamp=now_iso()
            )
        )
    return old.transaction_id, running.transaction_id


async def test_search_finds_the_session_by_every_key(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "04A1B2C3D4E5F6", visual_number="NL-STK-000123-4")
    await add_token(api, "CARD-9876")
    old, running = await _two_sessions(ocpp_url, "HD-SRCH1")
    await eventually(lambda: _search_offline(api, "HD-SRCH1"))  # the peer hung up

    found = await _search(api, "HD-SRCH1")
    assert _ids(found) == [running, old]  # running first
    first = found["sessions"][0]
    assert first["status"] == "active" and first["station_id"] == "HD-SRCH1"
    assert first["evse_id"] == "NL*STK*EHDSRCH1*2" and first["connector_status"] == "Charging"
    assert first["station_online"] is False
    assert first["token_uid"] == "04A1B2C3D4E5F6" and first["token_uid_masked"] == "****E5F6"
    assert first["matched_by"] == "station id"
    assert [s["station_id"] for s in found["stations"]] == ["HD-SRCH1"]
    assert {c["evse_id"]: c["status"] for c in found["stations"][0]["connectors"]} == {
        "NL*STK*EHDSRCH1*1": "Available",
        "NL*STK*EHDSRCH1*2": "Charging",
    }

    for q, expected, how in [
        ("hd-srch", [running, old], "station id prefix"),
        ("NL*STK*EHDSRCH1*2", [running], "EVSE id"),
        ("nl-stk-ehdsrch1-2", [running], "EVSE id"),
        ("EHDSRCH1*1", [old], "EVSE id on the sticker"),
        ("ehdsrch1 1", [old], "EVSE id on the sticker"),
        ("HDSRCH1*2", [running], "EVSE id on the sticker"),  # the E read as part of the print
        ("HD-SRCH1/2", [running], "connector"),
        ("HD-SRCH1 1", [old], "connector"),
        ("04A1B2C3D4E5F6", [running], "card number"),
        ("d4e5f6", [running], "last digits of a card"),
        ("0001234", [running], "last digits of a card"),  # the printed card number's end
        ("CARD-9876", [old], "card number"),
        ("9876", [old], "last digits of a card"),
    ]:
        found = await _search(api, q)
        assert _ids(found) == expected, q
        assert found["sessions"][0]["matched_by"] == how, q
    found = await _search(api, "EHDSRCH1")  # the station part of the sticker: both EVSEs
    assert _ids(found) == [running, old]
    assert (await _search(api, "NOTHING-HERE"))["sessions"] == []


async def test_search_window_limit_and_stations_without_sessions(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    old, running = await _two_sessions(ocpp_url, "HD-WIN")
    await api.post("/api/stations", json={"authentication": "none", "id": "HD-WIN-IDLE", "evse_count": 2})
    now = datetime.now(UTC)
    found = await _search(api, "HD-WIN", **{"from": _iso(now - timedelta(minutes=10))})
    assert _ids(found) == [running]  # the old one ended before the window
    found = await _search(api, "HD-WIN", to=_iso(now - timedelta(hours=1)))
    assert _ids(found) == [old]
    found = await _search(api, "HD-WIN", limit=1)
    assert _ids(found) == [running]
    # an exact station id wins over the stations it is the beginning of
    assert [s["station_id"] for s in (await _search(api, "hd-win"))["stations"]] == ["HD-WIN"]
    assert [s["station_id"] for s in (await _search(api, "HD-WI"))["stations"]] == ["HD-WIN", "HD-WIN-IDLE"]
    found = await _search(api, "HD-WIN-IDLE")
    assert found["sessions"] == []
    [station] = found["stations"]
    assert station["station_id"] == "HD-WIN-IDLE" and station["online"] is False
    assert [c["evse_id"] for c in station["connectors"]] == ["NL*STK*EHDWINIDLE*1", "NL*STK*EHDWINIDLE*2"]


# ------------------------------------------------------------------------------------------------
# Timeline
# ------------------------------------------------------------------------------------------------


async def test_timeline_tells_what_happened(api: httpx.AsyncClient, ocpp_url: str, server: Stekker) -> None:
    await add_token(api, "CARD-TL")
    async with ocpp_station(ocpp_url, "HD-TL") as cp:
        await cp.call(
            call.StatusNotification(
                connector_id=1, error_code="NoError", status="Preparing", timestamp=now_iso()
            )
        )
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-TL", meter_start=10_000, timestamp=now_iso())
        )
        response = await api.post(f"/api/sessions/{started.transaction_id}/remote-stop")
        assert response.json()["status"] == "Accepted"
        await cp.call(
            call.StopTransaction(
                meter_stop=12_500, timestamp=now_iso(), transaction_id=started.transaction_id, reason="Remote"
            )
        )
        await cp.call(
            call.StatusNotification(
                connector_id=1, error_code="GroundFailure", status="Faulted", timestamp=now_iso()
            )
        )

    async def write_frame(db: Any) -> None:  # the gateway's message log, as it stores a frame
        db.add(
            OcppMessage(
                station_id="HD-TL",
                direction="out",
                message_type=2,
                message_id="m-1",
                action="RemoteStopTransaction",
                frame='[2,"m-1","RemoteStopTransaction",{"transactionId":1}]',
                occurred_at=datetime.now(UTC),
            )
        )

    await server.ctx.write(write_frame)
    await eventually(lambda: _search_offline(api, "HD-TL"))  # its disconnection is recorded

    response = await api.get("/api/helpdesk/stations/HD-TL/timeline", params={"hours": 1})
    assert response.status_code == 200, response.text
    timeline = response.json()
    items = timeline["items"]
    summaries = [i["summary"] for i in items]
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)
    assert summaries[:2] == ["registered: unknown station accepted by policy", "connected (ocpp1.6)"]
    for expected in [
        "EVSE 1: Preparing",
        f"session {started.transaction_id} started on EVSE 1 with card CARD-TL",
        f"session {started.transaction_id} stopped (Remote, 2.50 kWh)",
        f"operator: session.remote_stop.requested on session {started.transaction_id} → sent",
        "EVSE 1: Faulted (GroundFailure)",
    ]:
        assert expected in summaries, (expected, summaries)
    assert {"status", "session", "event", "action"} <= {i["kind"] for i in items}
    assert any(s.startswith("booted") for s in summaries) and summaries[-1].startswith("disconnected")
    assert not any(i["kind"] == "message" for i in items)  # frames only on request

    response = await api.get("/api/helpdesk/stations/HD-TL/timeline", params={"include_messages": "true"})
    messages = [i for i in response.json()["items"] if i["kind"] == "message"]
    assert any(
        m["summary"] == "→ station RemoteStopTransaction call" and m["detail"]["message_id"] == "m-1"
        for m in messages
    ), messages
    response = await api.get("/api/helpdesk/stations/HD-TL/timeline", params={"limit": 1})
    assert response.json()["truncated"] is True


# ------------------------------------------------------------------------------------------------
# Stop and release
# ------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(station: Any) -> AsyncIterator[Any]:
    task = asyncio.create_task(station.run())
    try:
        await station.wait_online(timeout=10)
        yield station
    finally:
        await station.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


async def _active_session(api: httpx.AsyncClient, station_id: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        hits = (await _search(api, station_id))["sessions"]
        return hits[0] if hits and hits[0]["status"] == "active" else None

    session: dict[str, Any] = await eventually(found)
    return session


async def _audited(server: Stekker, flow_id: str) -> list[tuple[str, str, str]]:
    from sqlalchemy import select

    async with server.ctx.db() as db:
        rows = (await db.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [(a.actor, a.action, a.result) for a in rows if a.detail.get("flow_id") == flow_id]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_stop_and_release_at_a_cooperative_station(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker, fast_flows: FlowTiming, version: str
) -> None:
    await add_token(api, "CARD-COOP")
    station: SimulatedStation | SimulatedStation201
    if version == "1.6":
        station = SimulatedStation("HD-COOP", ocpp_url, unplug_delay=0.3, reboot_delay=0.2)
    else:
        station = SimulatedStation201("HD-COOP", ocpp_url, unplug_delay=0.3, reboot_delay=0.2)
    async with running(station):
        assert await station.start_session(1, "CARD-COOP") is not None
        session = await _active_session(api, "HD-COOP")
        response = await api.post(
            "/api/helpdesk/stop-and-release", json={"session_id": session["session_id"]}
        )
        assert response.status_code == 202, response.text
        flow = response.json()
        assert flow["status"] == "running" and len(flow["steps"]) == 12
        flow = await _finished(api, flow["id"])
        assert station.active_transactions() == {}
    assert flow["status"] == "released", flow
    steps = _steps(flow)
    assert steps["remote_stop"] == ("ok", "Accepted")
    assert steps["wait_for_stop"][0] == "ok"
    assert steps["unlock"] == ("ok", "Unlocked")
    assert steps["check"][0] == "ok"
    assert {steps[n][0] for n in list(steps)[4:]} == {"skipped"}  # no reset needed
    assert all(s["started_at"] and s["ended_at"] for s in flow["steps"][:4])
    assert "take the cable out" in flow["outcome"]
    done = (await api.get(f"/api/sessions/{session['session_id']}")).json()
    assert done["status"] == "completed"
    audited = await _audited(server, flow["id"])
    assert audited == [
        ("operator", "helpdesk.stop_release.started", "running"),
        ("operator", "helpdesk.stop_release.remote_stop", "ok"),
        ("operator", "helpdesk.stop_release.wait_for_stop", "ok"),
        ("operator", "helpdesk.stop_release.unlock", "ok"),
        ("operator", "helpdesk.stop_release.check", "ok"),
        ("operator", "helpdesk.stop_release.finished", "released"),
    ]


class _Stubborn:
    """A station that accepts every stop but never ends the transaction, and whose lock fails,
    until it is reset (`recovers`: then it ends the session, unlocks and boots again)."""

    def __init__(
        self, st: RawStation, transaction_id: str, recovers: bool, protocol: str = "ocpp1.6"
    ) -> None:
        v16 = protocol == "ocpp1.6"
        st.answers.update(
            {
                "RemoteStopTransaction" if v16 else "RequestStopTransaction": {"status": "Accepted"},
                "UnlockConnector": {"status": "UnlockFailed"},
                # 2.0.1: a soft (OnIdle) reset waits for the running transaction to end
                "Reset": {"status": "Accepted" if v16 else "Scheduled"},
            }
        )
        self.st, self.transaction_id, self.recovers, self.v16 = st, transaction_id, recovers, v16
        self.task = asyncio.create_task(self._watch())

    def actions(self) -> list[str]:
        return [frame[2] for frame in self.st.server_calls]

    async def _watch(self) -> None:
        await eventually(lambda: "Reset" in self.actions(), timeout=60)
        if not self.recovers:
            return
        await asyncio.sleep(0.1)
        if self.v16:
            stop = {"transactionId": int(self.transaction_id), "meterStop": 2_000, "timestamp": now_iso()}
            await self.st.ok("StopTransaction", {**stop, "reason": "SoftReset"})
        else:
            ended = tx_event("Ended", self.transaction_id, 1, trigger="ResetCommand", meter_wh=2_000)
            ended["transactionInfo"]["stoppedReason"] = "Reboot"
            await self.st.ok("TransactionEvent", ended)
        self.st.answers["UnlockConnector"] = {"status": "Unlocked"}
        if self.v16:
            await self.st.ok("BootNotification", {"chargePointVendor": "Raw", "chargePointModel": "R1"})
        else:
            station = {"vendorName": "Raw", "model": "R2"}
            await self.st.ok("BootNotification", {"chargingStation": station, "reason": "RemoteReset"})


async def _stubborn_session(st: RawStation, protocol: str = "ocpp1.6") -> str:
    """A running transaction on EVSE 1: its id as the station knows it."""
    if protocol != "ocpp1.6":
        await st.ok(
            "TransactionEvent", tx_event("Started", "TX-STUCK", 0, token="CARD-STUCK", meter_wh=1_000)
        )
        return "TX-STUCK"
    started = await st.ok(
        "StartTransaction",
        {"connectorId": 1, "idTag": "CARD-STUCK", "meterStart": 1_000, "timestamp": now_iso()},
    )
    return str(started["transactionId"])


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.0.1"])
async def test_a_station_that_ignores_the_stop_is_released_by_a_soft_reset(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    monkeypatch.setattr(stop_release, "DEFAULT_TIMING", STUBBORN)
    await add_token(api, "CARD-STUCK")
    async with raw_station(ocpp_url, "HD-STUCK", protocol=protocol) as st:
        transaction_id = await _stubborn_session(st, protocol)
        session = await _active_session(api, "HD-STUCK")
        stubborn = _Stubborn(st, transaction_id, recovers=True, protocol=protocol)
        response = await api.post(
            "/api/helpdesk/stop-and-release", json={"station_id": "HD-STUCK", "evse_number": 1}
        )
        assert response.status_code == 202, response.text
        assert response.json()["session_id"] == session["session_id"]
        flow = await _finished(api, response.json()["id"])
        stubborn.task.cancel()
        actions = stubborn.actions()
    assert flow["status"] == "released", flow
    v16 = protocol == "ocpp1.6"
    steps = _steps(flow)
    assert steps["remote_stop"] == ("ok", "Accepted")
    assert steps["wait_for_stop"][0] == "failed"
    assert steps["unlock"] == ("failed", "UnlockFailed")
    assert steps["check"][0] == "failed"
    assert steps["soft_reset"] == ("ok", "Accepted" if v16 else "Scheduled")
    assert steps["wait_soft_reset"][0] == "ok"
    assert steps["unlock_after_soft_reset"] == ("ok", "Unlocked")
    assert steps["check_after_soft_reset"][0] == "ok"
    assert {steps[n][0] for n in list(steps)[8:]} == {"skipped"}
    assert "soft reset" in flow["outcome"]
    stop = "RemoteStopTransaction" if v16 else "RequestStopTransaction"
    ours = {stop, "UnlockConnector", "Reset"}  # the gateway may sync a local list too
    assert [a for a in actions if a in ours] == [stop, "UnlockConnector", "Reset", "UnlockConnector"]
    resets = [f[3] for f in st.server_calls if f[2] == "Reset"]
    assert resets == [{"type": "Soft"}] if v16 else resets == [{"type": "OnIdle"}]
    done = (await api.get(f"/api/sessions/{session['session_id']}")).json()
    assert done["status"] == "completed"


async def test_a_station_that_never_lets_go_gets_a_hard_reset_then_a_clear_failure(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stop_release, "DEFAULT_TIMING", QUICK)
    await add_token(api, "CARD-STUCK")
    async with raw_station(ocpp_url, "HD-STUCK2") as st:
        session_id = int(await _stubborn_session(st))
        stubborn = _Stubborn(st, str(session_id), recovers=False)
        response = await api.post(
            "/api/helpdesk/stop-and-release", params={"wait": 30}, json={"session_id": session_id}, timeout=40
        )
        flow = response.json()
        stubborn.task.cancel()
    # "failed", not "timed_out": the flow gave up by its own steps, within its bound
    assert response.status_code == 202 and flow["status"] == "failed", flow
    # stop accepted but not done, unlock refused; each reset accepted, no restart, still locked
    stage = ["ok", "failed", "failed", "failed"]
    assert [s["status"] for s in flow["steps"]] == stage * 3
    assert [f[3] for f in st.server_calls if f[2] == "Reset"] == [{"type": "Soft"}, {"type": "Hard"}]
    assert "technician" in flow["outcome"]
    audited = await _audited(server, flow["id"])
    assert audited[-1] == ("operator", "helpdesk.stop_release.finished", "failed")
    assert ("operator", "helpdesk.stop_release.hard_reset", "ok") in audited


async def test_an_offline_station_fails_clearly_and_at_once(
    api: httpx.AsyncClient, ocpp_url: str, fast_flows: FlowTiming
) -> None:
    await add_token(api, "CARD-OFF")
    async with ocpp_station(ocpp_url, "HD-OFF") as cp:
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-OFF", meter_start=1, timestamp=now_iso())
        )
    await eventually(lambda: _search_offline(api, "HD-OFF"))
    response = await api.post(
        "/api/helpdesk/stop-and-release", params={"wait": 10}, json={"session_id": started.transaction_id}
    )
    # ended within the wait, by its first step (how fast exactly is bench/'s business, not a test's)
    flow = response.json()
    assert flow["status"] == "failed" and "offline" in flow["outcome"], flow
    steps = _steps(flow)
    assert steps["remote_stop"] == ("failed", None)
    assert flow["steps"][0]["message"] == "the station is offline"
    assert {steps[n][0] for n in list(steps)[1:]} == {"skipped"}


async def _search_offline(api: httpx.AsyncClient, station_id: str) -> bool:
    stations = (await _search(api, station_id))["stations"]
    return bool(stations) and stations[0]["online"] is False


async def test_the_flow_time_bound_holds(
    api: httpx.AsyncClient, ocpp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        stop_release, "DEFAULT_TIMING", FlowTiming(total=1.5, stop_wait=30, settle=1, boot_wait=30)
    )
    await add_token(api, "CARD-STUCK")
    async with raw_station(ocpp_url, "HD-SLOW") as st:
        session_id = int(await _stubborn_session(st))
        st.answers["RemoteStopTransaction"] = {"status": "Accepted"}  # ... and then nothing
        response = await api.post("/api/helpdesk/stop-and-release", json={"session_id": session_id})
        flow = await _finished(api, response.json()["id"], wait=20)
    # the 1.5 s bound ended it, not the 30 s stop wait (which the 20 s poll could not outlast)
    assert flow["status"] == "timed_out", flow
    assert flow["outcome"].startswith("Gave up after 1.5 s"), flow
    steps = _steps(flow)
    assert steps["remote_stop"][0] == "ok" and steps["wait_for_stop"][0] == "failed"
    assert "time bound" in flow["steps"][1]["message"]
    assert {steps[n][0] for n in list(steps)[2:]} == {"skipped"}
    assert flow["time_limit_seconds"] == 1.5


async def test_a_second_flow_on_the_same_connector_is_refused(
    api: httpx.AsyncClient, ocpp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stop_release, "DEFAULT_TIMING", FlowTiming(total=1, stop_wait=30))
    await add_token(api, "CARD-STUCK")
    async with raw_station(ocpp_url, "HD-TWICE") as st:
        session_id = int(await _stubborn_session(st))
        first = await api.post("/api/helpdesk/stop-and-release", json={"session_id": session_id})
        second = await api.post(
            "/api/helpdesk/stop-and-release", json={"station_id": "HD-TWICE", "evse_number": 1}
        )
        assert second.status_code == 409 and first.json()["id"] in second.json()["detail"]
        await _finished(api, first.json()["id"], wait=5)


async def test_a_flow_running_at_shutdown_ends_failed_and_says_why(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stop_release, "DEFAULT_TIMING", FlowTiming(total=60, stop_wait=60))
    await add_token(api, "CARD-STUCK")
    async with raw_station(ocpp_url, "HD-DOWN") as st:
        session_id = int(await _stubborn_session(st))
        st.answers["RemoteStopTransaction"] = {"status": "Accepted"}  # ... and then nothing
        response = await api.post("/api/helpdesk/stop-and-release", json={"session_id": session_id})
        flow_id = response.json()["id"]
        await eventually(lambda: _steps_now(server, flow_id).get("wait_for_stop") == "running")
        await server.helpdesk_flows.close()  # what Stekker.stop() does before the database goes
        flow = server.helpdesk_flows.get(flow_id)
    assert flow is not None and flow.status == "failed" and flow.ended_at is not None
    assert "shut down" in (flow.outcome or "")
    assert _steps_now(server, flow_id)["wait_for_stop"] == "failed"


def _steps_now(server: Stekker, flow_id: str) -> dict[str, str]:
    flow = server.helpdesk_flows.get(flow_id)
    return {} if flow is None else {step.name: str(step.status) for step in flow.steps}


# ------------------------------------------------------------------------------------------------
# Hostile input
# ------------------------------------------------------------------------------------------------

BAD_QUERIES: list[dict[str, Any]] = [
    {"q": "' OR 1=1 --"},
    {"q": "x'; DROP TABLE sessions; --"},
    {"q": "%"},
    {"q": "<script>alert(1)</script>"},
    {"q": "   "},
    {"q": ""},
    {"q": "A" * 65},
    {},
    {"q": "CP1", "limit": 0},
    {"q": "CP1", "limit": 10_000},
    {"q": "CP1", "from": "yesterday"},
    {"q": "CP1", "from": "2026-01-01T00:00:00"},  # no offset
    {"q": "CP1", "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
]


@pytest.mark.parametrize("params", BAD_QUERIES)
async def test_bad_search_is_422(api: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await api.get("/api/helpdesk/search", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


async def test_hostile_timeline_and_flow_input(api: httpx.AsyncClient) -> None:
    await api.post("/api/stations", json={"authentication": "none", "id": "HD-H", "evse_count": 1})
    for params in ({"hours": 10**9}, {"hours": 0}, {"hours": -1}, {"hours": "six"}, {"limit": 10**6}):
        response = await api.get("/api/helpdesk/stations/HD-H/timeline", params=params)
        assert response.status_code == 422, (params, response.text)
    for station in ("NOPE", "x' OR '1'='1", "%25"):
        response = await api.get(f"/api/helpdesk/stations/{station}/timeline")
        assert response.status_code == 404, station
    assert (await api.get("/api/helpdesk/stations/" + "x" * 200 + "/timeline")).status_code == 422
    assert (await api.get("/api/helpdesk/flows/not-a-flow")).status_code == 422
    assert (await api.get("/api/helpdesk/flows/" + "0" * 32)).status_code == 404
    assert (await api.get("/api/helpdesk/flows/" + "0" * 32, params={"wait": 10**6})).status_code == 422
    for body in [
        {},
        {"session_id": "abc"},
        {"session_id": -1},
        {"session_id": 10**30},
        {"session_id": 1, "station_id": "HD-H"},
        {"station_id": "HD-H"},
        {"station_id": "HD-H", "evse_number": 0},
        {"station_id": "x" * 10_000, "evse_number": 1},
        {"session_id": 1, "script": "<x>"},
        [1, 2],
    ]:
        response = await api.post("/api/helpdesk/stop-and-release", json=body)
        assert response.status_code == 422, (body, response.text)
    response = await api.post("/api/helpdesk/stop-and-release", content=b"{not json")
    assert response.status_code == 422
    for body, what in [
        ({"session_id": 999}, "no session 999"),
        ({"station_id": "NOPE", "evse_number": 1}, "no station"),
        ({"station_id": "HD-H", "evse_number": 7}, "has no EVSE 7"),
    ]:
        response = await api.post("/api/helpdesk/stop-and-release", json=body)
        assert response.status_code == 404 and what in response.json()["detail"], response.text


# ------------------------------------------------------------------------------------------------
# CLI and roles
# ------------------------------------------------------------------------------------------------


async def test_cli_find_timeline_and_stop_release(
    cli: Callable[..., Any], api: httpx.AsyncClient, ocpp_url: str, fast_flows: FlowTiming
) -> None:
    await add_token(api, "CARD-CLI1234")
    async with running(SimulatedStation("HD-CLI", ocpp_url, unplug_delay=0.3, reboot_delay=0.2)) as station:
        await station.start_session(2, "CARD-CLI1234")
        session = await _active_session(api, "HD-CLI")
        result = await cli("helpdesk", "find", "1234")
        assert result.exit_code == 0, result.output
        assert "HD-CLI" in result.output and str(session["session_id"]) in result.output
        result = await cli("helpdesk", "timeline", "HD-CLI", "--hours", "1")
        assert result.exit_code == 0 and f"session {session['session_id']} started" in result.output
        result = await cli("helpdesk", "stop-release", str(session["session_id"]), "--poll", "0.2")
        assert result.exit_code == 0, result.output
        assert "Ask the station to stop the session (station: Accepted)" in result.output
        assert "Unlock the connector (station: Unlocked)" in result.output
        assert "released: Released" in result.output
    result = await cli("helpdesk", "find", "NOTHING-AT-ALL")
    assert result.exit_code == 1 and "nothing matches" in result.output
    result = await cli("helpdesk", "timeline", "HD-CLI", "--hours", "100")
    assert result.exit_code == 1 and "422" in result.output


@pytest.mark.parametrize("settings_overrides", [{"api_token": "bootstrap-admin-token"}])
async def test_roles_helpdesk_stops_and_sees_only_the_last_digits(
    api: httpx.AsyncClient, ocpp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stop_release, "DEFAULT_TIMING", QUICK)
    admin = {"Authorization": "Bearer bootstrap-admin-token"}
    response = await api.put("/api/tokens", json={"uid": "04A1B2C3D4E5F6"}, headers=admin)
    assert response.status_code in (200, 201), response.text
    tokens = {}
    for name, role in [("hanna", "helpdesk"), ("rob", "read-only"), ("gemma", "municipality")]:
        created = await api.post(
            "/api/users", json={"username": name, "password": "long enough pw", "role": role}, headers=admin
        )
        assert created.status_code == 201, created.text
        login = await api.post("/api/auth/token", json={"username": name, "password": "long enough pw"})
        tokens[role] = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await api.get("/api/helpdesk/search", params={"q": "x1"})).status_code == 401

    async with raw_station(ocpp_url, "HD-ROLE") as st:
        st.answers["RemoteStopTransaction"] = {"status": "Rejected"}
        st.answers["UnlockConnector"] = {"status": "Unlocked"}
        started = await st.ok(
            "StartTransaction",
            {"connectorId": 1, "idTag": "04A1B2C3D4E5F6", "meterStart": 1, "timestamp": now_iso()},
        )
        for role in ("helpdesk", "read-only", "municipality"):
            response = await api.get("/api/helpdesk/search", params={"q": "E5F6"}, headers=tokens[role])
            assert response.status_code == 200, (role, response.text)
            timeline = await api.get("/api/helpdesk/stations/HD-ROLE/timeline", headers=tokens[role])
            assert "04A1B2C3D4E5F6" not in timeline.text
            if role == "helpdesk":
                [hit] = response.json()["sessions"]
                assert hit["token_uid"] is None and hit["token_uid_masked"] == "****E5F6", role
                assert "****E5F6" in timeline.text
                continue
            # the privacy policy: a card's digits find nothing, its pseudonym (the same in every
            # answer) finds its sessions, and no digits show
            assert response.json()["sessions"] == [], role
            [session] = (await api.get("/api/sessions", headers=tokens[role])).json()
            pseudonym = session["token_uid"]
            assert pseudonym.startswith("p:") and pseudonym in timeline.text and "E5F6" not in timeline.text
            found = await api.get("/api/helpdesk/search", params={"q": pseudonym}, headers=tokens[role])
            [hit] = found.json()["sessions"]
            assert hit["token_uid"] == pseudonym and hit["token_uid_masked"] is None, role
        response = await api.get("/api/helpdesk/search", params={"q": "E5F6"}, headers=admin)
        assert response.json()["sessions"][0]["token_uid"] == "04A1B2C3D4E5F6"

        body = {"session_id": started["transactionId"]}
        for role in ("read-only", "municipality"):
            response = await api.post("/api/helpdesk/stop-and-release", json=body, headers=tokens[role])
            assert response.status_code == 403 and "may not" in response.json()["detail"], role
        response = await api.post(
            "/api/helpdesk/stop-and-release", params={"wait": 15}, json=body, headers=tokens["helpdesk"]
        )
        assert response.status_code == 202, response.text
        flow = response.json()
        assert flow["actor"] == "user:hanna" and flow["status"] == "failed", flow
        steps = _steps(flow)
        assert steps["remote_stop"] == ("failed", "Rejected") and steps["wait_for_stop"][0] == "skipped"
        assert steps["unlock"] == ("ok", "Unlocked") and steps["hard_reset"] == ("ok", "Accepted")
        response = await api.get(f"/api/helpdesk/flows/{flow['id']}", headers=tokens["read-only"])
        assert response.status_code == 403
        audit = await api.get("/api/audit", params={"action": "helpdesk.stop_release.started"}, headers=admin)
        assert [(a["actor"], a["object_id"]) for a in audit.json()] == [("user:hanna", "HD-ROLE")]
