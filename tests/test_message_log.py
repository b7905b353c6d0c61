"""The OCPP message log: every frame in and out per station, readable through the API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy import func, insert, select

from stekker.app import Stekker
from stekker.db.models import OcppMessage
from stekker.services import message_log
from stekker.services.message_log import MessageLog
from stekker.services.ports import CommandTimeout, StationCommand
from tests.observe import eventually
from tests.peers import ocpp_station, raw_station
from tests.peers201 import ocpp201_station

FAST = {"message_log_flush_interval": 0.05}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(FAST)


async def page(api: httpx.AsyncClient, station_id: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/api/stations/{station_id}/messages", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def logged(api: httpx.AsyncClient, station_id: str, count: int, **params: Any) -> list[dict[str, Any]]:
    """The station's frames, oldest first, once at least `count` are written."""

    async def enough() -> list[dict[str, Any]] | None:
        messages: list[dict[str, Any]] = (await page(api, station_id, limit=1000, **params))["messages"]
        return messages[::-1] if len(messages) >= count else None

    found: list[dict[str, Any]] = await eventually(enough, timeout=5)
    return found


def summary(messages: list[dict[str, Any]]) -> list[tuple[str, int, str | None]]:
    return [(m["direction"], m["message_type"], m["action"]) for m in messages]


# ---- frames in and out, with the action of the call ---------------------------------------------


async def test_ocpp16_frames_in_and_out_with_actions(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    async with ocpp_station(ocpp_url, "LOG16") as station:
        reply = await server.gateway.send(
            "LOG16",
            StationCommand("raw", {"action": "ChangeConfiguration", "payload": {"key": "K", "value": "V"}}),
        )
        assert reply == {"status": "Accepted"}
        messages = await logged(api, "LOG16", 4)
    assert summary(messages) == [
        ("in", 2, "BootNotification"),
        ("out", 3, "BootNotification"),  # our reply carries the action of the call it answers
        ("out", 2, "ChangeConfiguration"),
        ("in", 3, "ChangeConfiguration"),  # so does the station's
    ]
    boot_in, boot_out, call_out, result_in = messages
    assert boot_in["message_id"] == boot_out["message_id"]
    assert call_out["message_id"] == result_in["message_id"]
    assert json.loads(boot_in["frame"])[3]["chargePointVendor"] == "Test"
    assert json.loads(boot_out["frame"])[2]["status"] == "Accepted"
    assert json.loads(call_out["frame"])[3] == {"key": "K", "value": "V"}
    assert json.loads(result_in["frame"]) == [3, call_out["message_id"], {"status": "Accepted"}]
    assert station.configuration == {"K": "V"}
    assert all(not m["truncated"] and m["size"] == len(m["frame"]) for m in messages)
    times = [datetime.fromisoformat(m["occurred_at"]) for m in messages]
    assert times == sorted(times)


async def test_ocpp201_frames_in_and_out_with_actions(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    async with ocpp201_station(ocpp_url, "LOG201") as station:
        reply = await server.gateway.send(
            "LOG201",
            StationCommand(
                "raw",
                {
                    "action": "GetVariables",
                    "payload": {
                        "getVariableData": [
                            {"component": {"name": "AuthCtrlr"}, "variable": {"name": "LocalPreAuthorize"}}
                        ]
                    },
                },
            ),
        )
        assert reply["getVariableResult"][0]["attributeValue"] == "true"
        assert station.calls("GetVariables")
        messages = await logged(api, "LOG201", 4)
    assert summary(messages) == [
        ("in", 2, "BootNotification"),
        ("out", 3, "BootNotification"),
        ("out", 2, "GetVariables"),
        ("in", 3, "GetVariables"),
    ]
    assert json.loads(messages[0]["frame"])[3]["chargingStation"]["vendorName"]
    only_in = (await page(api, "LOG201", direction="in"))["messages"]
    assert [m["action"] for m in only_in] == ["GetVariables", "BootNotification"]


async def test_a_late_reply_is_logged_with_the_action_it_answers(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    async with raw_station(ocpp_url, "LATE") as station:
        station.silent = True
        with pytest.raises(CommandTimeout):
            await server.gateway.send(
                "LATE", StationCommand("raw", {"action": "ClearCache", "payload": {}}), timeout=0.2
            )
        call_id = station.server_calls[-1][1]
        await station.ws.send(json.dumps([3, call_id, {"status": "Accepted"}]))
        messages = await logged(api, "LATE", 4)
    assert summary(messages)[2:] == [("out", 2, "ClearCache"), ("in", 3, "ClearCache")]


# ---- rejected frames ----------------------------------------------------------------------------


async def test_rejected_frames_and_our_callerrors_are_logged(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "BAD") as station:
        garbage = await station.send_text("{not json at all")
        assert garbage[0] == 4
        short = await station.send_text(json.dumps([2, "c1", "Heartbeat"]))
        assert short[0] == 4
        unknown = await station.call("FlyToTheMoon", {})
        assert unknown[0] == 4
        with_nul = await station.send_text("nul\x00byte")  # PostgreSQL text cannot hold NUL
        assert with_nul[0] == 4
        messages = await logged(api, "BAD", 10)
    assert summary(messages[2:]) == [
        ("in", 0, None),  # not JSON: stored as text, message type 0
        ("out", 4, None),
        ("in", 2, "Heartbeat"),
        ("out", 4, "Heartbeat"),
        ("in", 2, "FlyToTheMoon"),
        ("out", 4, "FlyToTheMoon"),
        ("in", 0, None),
        ("out", 4, None),
    ]
    bad_in, bad_out = messages[2], messages[3]
    assert bad_in["frame"] == "{not json at all" and bad_in["message_type_name"] == "unreadable"
    assert bad_in["message_id"] == "" and bad_out["message_id"] == "-1"
    assert json.loads(bad_out["frame"])[2] == "FormationViolation"
    assert json.loads(messages[7]["frame"])[2] == "NotImplemented"
    assert messages[8]["frame"] == "nul\ufffdbyte" and messages[8]["size"] == 8


@pytest.mark.parametrize("settings_overrides", [{**FAST, "message_log_max_frame_chars": 300}])
async def test_long_frames_are_cut_and_marked(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "BIG") as station:
        data = "x" * 5000
        reply = await station.call("DataTransfer", {"vendorId": "V", "data": data})
        assert reply[0] in (3, 4)
        garbage = "{" * 1000
        await station.send_text(garbage)
        messages = await logged(api, "BIG", 6)
    big, broken = messages[2], messages[4]
    assert big["action"] == "DataTransfer" and big["truncated"] is True
    assert len(big["frame"]) == 300 and big["size"] > 5000
    assert (
        big["frame"]
        == json.dumps([2, big["message_id"], "DataTransfer", {"vendorId": "V", "data": data}])[:300]
    )
    assert broken["message_type"] == 0 and broken["truncated"] is True
    assert broken["frame"] == garbage[:300] and broken["size"] == 1000
    assert messages[3]["truncated"] is False  # our short reply


# ---- the log can be turned off ------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{**FAST, "message_log_enabled": False}])
async def test_the_log_can_be_turned_off(api: httpx.AsyncClient, ocpp_url: str, server: Stekker) -> None:
    async with ocpp_station(ocpp_url, "QUIET") as station:
        await station.call(call.Heartbeat())
        await asyncio.sleep(0.3)
    assert (await page(api, "QUIET"))["messages"] == []
    async with server.ctx.db() as db:
        assert (await db.execute(select(func.count()).select_from(OcppMessage))).scalar_one() == 0
    stats = (await api.get("/api/monitoring/connections")).json()["message_log"]
    assert stats["enabled"] is False and stats["written"] == 0


# ---- overload: drop the oldest, never block -----------------------------------------------------


async def test_overload_drops_the_oldest_frames_and_counts_them(server: Stekker) -> None:
    settings = server.settings.model_copy(update={"message_log_max_pending": 3})
    log = MessageLog(dataclasses.replace(server.ctx, settings=settings))
    at = datetime.now(UTC)
    for n in range(10):
        log.record("OVER", "in", 2, f"m{n}", "Heartbeat", f'[2,"m{n}","Heartbeat",{{}}]', at)
    assert log.pending == 3 and log.dropped == 7
    await log.flush()
    async with server.ctx.db() as db:
        ids = (await db.execute(select(OcppMessage.message_id).order_by(OcppMessage.id))).scalars().all()
    assert ids == ["m7", "m8", "m9"] and log.written == 3


async def test_frames_still_buffered_are_written_on_shutdown(server: Stekker) -> None:
    settings = server.settings.model_copy(update={"message_log_flush_interval": 3600})
    log = MessageLog(dataclasses.replace(server.ctx, settings=settings))
    log.start()
    log.record("SHUT", "out", 2, "x1", "Reset", '[2,"x1","Reset",{"type":"Soft"}]', datetime.now(UTC))
    await asyncio.sleep(0.05)
    assert log.written == 0
    await log.stop()
    assert log.written == 1 and log.pending == 0


# ---- retention ----------------------------------------------------------------------------------


async def _insert_frames(server: Stekker, station_id: str, at: list[datetime]) -> None:
    async with server.ctx.db() as db, db.begin():
        await db.execute(
            insert(OcppMessage),
            [
                {
                    "station_id": station_id,
                    "direction": "in",
                    "message_type": 2,
                    "message_id": f"old{n}",
                    "action": "Heartbeat",
                    "frame": f'[2,"old{n}","Heartbeat",{{}}]',
                    "size": 20,
                    "truncated": False,
                    "occurred_at": when,
                }
                for n, when in enumerate(at)
            ],
        )


async def _count(server: Stekker) -> int:
    async with server.ctx.db() as db:
        return int((await db.execute(select(func.count()).select_from(OcppMessage))).scalar_one())


async def test_retention_purges_old_frames_in_chunks(
    api: httpx.AsyncClient, server: Stekker, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.post("/api/stations", json={"authentication": "none", "id": "OLD"})
    now = datetime.now(UTC)
    await _insert_frames(server, "OLD", [now - timedelta(days=31, minutes=n) for n in range(12)])
    await _insert_frames(server, "OLD", [now - timedelta(days=29), now - timedelta(hours=1)])
    monkeypatch.setattr(message_log, "_PURGE_CHUNK", 5)
    assert await message_log.purge(server.ctx) == 12
    kept = (await page(api, "OLD"))["messages"]
    assert sorted(m["message_id"] for m in kept) == ["old0", "old1"]  # the two recent ones
    assert await message_log.purge(server.ctx) == 0


@pytest.mark.parametrize("settings_overrides", [{**FAST, "message_log_retention_days": 2}])
async def test_purge_runs_at_start_with_the_retention_setting(server: Stekker) -> None:
    now = datetime.now(UTC)
    await _insert_frames(server, "R", [now - timedelta(days=3), now - timedelta(days=1)])
    await server.claim.release()  # the first process is gone (a crash): its claim went with it
    restarted = Stekker(server.settings)
    await restarted.start()
    try:

        async def purged() -> bool:
            return await _count(server) == 1

        await eventually(purged, timeout=5)
    finally:
        await restarted.stop()


# ---- reading: filters and pages -----------------------------------------------------------------


async def test_pages_and_filters(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "PAGED") as station:
        for _ in range(6):
            await station.ok("Heartbeat", {})
        await station.ok(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        )
        everything = await logged(api, "PAGED", 16)
    newest_first = everything[::-1]

    seen: list[dict[str, Any]] = []
    before: int | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 5}
        if before is not None:
            params["before_id"] = before
        body = await page(api, "PAGED", **params)
        seen += body["messages"]
        before = body["next_before_id"]
        if before is None:
            break
    assert [m["id"] for m in seen] == [m["id"] for m in newest_first]
    assert len({m["id"] for m in seen}) == 16

    heartbeats = (await page(api, "PAGED", action="Heartbeat"))["messages"]
    assert len(heartbeats) == 12 and {m["action"] for m in heartbeats} == {"Heartbeat"}
    replies = (await page(api, "PAGED", action="Heartbeat", direction="out"))["messages"]
    assert len(replies) == 6 and all(m["direction"] == "out" and m["message_type"] == 3 for m in replies)

    middle = everything[7]["occurred_at"]
    older = (await page(api, "PAGED", to=middle))["messages"]
    newer = (await page(api, "PAGED", **{"from": middle}))["messages"]
    assert all(m["occurred_at"] <= middle for m in older) and everything[0]["id"] in [m["id"] for m in older]
    assert all(m["occurred_at"] >= middle for m in newer) and everything[-1]["id"] in [m["id"] for m in newer]
    assert len(older) + len(newer) >= 16
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await page(api, "PAGED", **{"from": future}))["messages"] == []


# ---- hostile query parameters -------------------------------------------------------------------


HOSTILE = [
    "limit=0",
    "limit=1001",
    "limit=abc",
    "before_id=0",
    "before_id=-5",
    "before_id=99999999999999999999999",
    "before_id=1.5",
    "direction=sideways",
    "action=%27%3B%20DROP%20TABLE%20ocpp_messages%3B--",
    "action=" + "A" * 65,
    "from=yesterday",
    "from=2026-01-01T00:00:00",  # no offset: ambiguous
    "to=0001-01-01T00:00:00%2B01:00",  # before year 1 once in UTC
    "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    "from=2026-13-45T00:00:00Z",
]


async def test_hostile_query_parameters_are_422(api: httpx.AsyncClient) -> None:
    await api.post("/api/stations", json={"authentication": "none", "id": "HOST"})
    for query in HOSTILE:
        response = await api.get(f"/api/stations/HOST/messages?{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.json()["detail"]


async def test_bad_station_ids_and_cursors(api: httpx.AsyncClient, ocpp_url: str, server: Stekker) -> None:
    assert (await api.get("/api/stations/NOPE/messages")).status_code == 404
    injected = await api.get("/api/stations/%27%20OR%201%3D1--/messages")
    assert injected.status_code == 404 and "no station" in injected.json()["detail"]
    assert (await api.get(f"/api/stations/{'X' * 49}/messages")).status_code == 422
    assert (await api.get("/api/stations/A%01B/messages")).status_code == 422
    async with raw_station(ocpp_url, "ONE"), raw_station(ocpp_url, "TWO"):
        one = await logged(api, "ONE", 2)
        await logged(api, "TWO", 2)
    # a cursor from another station's log is refused, not silently mixed in
    response = await api.get("/api/stations/TWO/messages", params={"before_id": one[0]["id"]})
    assert (
        response.status_code == 422 and "not a logged message of station 'TWO'" in response.json()["detail"]
    )
    gone = await api.get("/api/stations/ONE/messages", params={"before_id": 10**12})
    assert gone.status_code == 422
