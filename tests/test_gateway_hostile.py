"""Hostile and broken stations against the real gateway, over loopback, on SQLite and PostgreSQL.

Every test checks what a real station would see: the CALLERROR (with OCPP 1.6 spellings),
the close code or the HTTP status of a refused handshake, and that the connection (or the
server) is still usable afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from stekker.app import Stekker
from stekker.db.engine import make_engine, make_session_factory
from stekker.services.ports import CommandTimeout, StationCommand
from tests.peers import RawStation, auth_header, now_iso, raw_station

BOOT = {"chargePointVendor": "Raw", "chargePointModel": "R1"}


async def assert_usable(station: RawStation) -> None:
    """A Heartbeat still gets its CALLRESULT: the connection survived what came before."""
    frame = await station.send_text(json.dumps([2, "hb-after", "Heartbeat", {}]))
    assert frame[0] == 3 and frame[1] == "hb-after", frame
    assert isinstance(frame[2]["currentTime"], str)


async def error_for(station: RawStation, text: str) -> list[Any]:
    """Send text; the reply must be a well-formed CALLERROR [4, id, code, description, details]."""
    frame = await station.send_text(text)
    assert frame[0] == 4 and len(frame) == 5, frame
    assert isinstance(frame[3], str) and isinstance(frame[4], dict), frame
    return frame


async def sessions(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get("/api/sessions")
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def poll_online(api: httpx.AsyncClient, station_id: str, want: bool, seconds: float = 2.0) -> bool:
    online: bool = not want
    for _ in range(int(seconds / 0.05)):
        online = (await api.get(f"/api/stations/{station_id}")).json()["online"]
        if online is want:
            break
        await asyncio.sleep(0.05)
    return online


# ---- 1-3: framing -------------------------------------------------------------------------


async def test_not_json_is_formation_violation(ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "F1") as station:
        for text in ["hello", '[2, "x"', "", "[2, 'single', 'Heartbeat', {}]", '[2, "m", "Heartbeat", {}']:
            frame = await error_for(station, text)
            assert frame[1:3] == ["-1", "FormationViolation"], (text, frame)
            await assert_usable(station)


WRONG_SHAPES = [
    ('"hello"', "-1"),  # valid JSON, not an array
    ("{}", "-1"),
    ('{"0": 2, "1": "id", "2": "Heartbeat", "3": {}}', "-1"),
    ("[2]", "-1"),
    ("[]", "-1"),
    ('["2", "id", "Heartbeat", {}]', "id"),
    ('[2, "id3", "Heartbeat"]', "id3"),
    ('[2, "id5", "Heartbeat", {}, {}]', "id5"),
    ('[2, 5, "Heartbeat", {}]', "-1"),
    ('[2, null, "Heartbeat", {}]', "-1"),
    ('[2, "act", 7, {}]', "act"),
    ('[2, "a", "Heartbeat", []]', "a"),
    ('[2, "s", "Heartbeat", "payload"]', "s"),
    ('[2, "n", "Heartbeat", null]', "n"),
    (json.dumps([2, "x" * 36, "Heartbeat"]), "x" * 36),  # the longest id 1.6 allows is echoed
    (json.dumps([2, "x" * 37, "Heartbeat"]), "-1"),  # a longer one is not
]


async def test_wrong_frame_shape_is_formation_violation(ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "F2") as station:
        for text, expected_id in WRONG_SHAPES:
            frame = await error_for(station, text)
            assert frame[1:3] == [expected_id, "FormationViolation"], (text, frame)
            await assert_usable(station)


async def test_unknown_message_type_is_formation_violation(ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "F4") as station:
        for kind in (7, 0, 5, -1):
            frame = await error_for(station, json.dumps([kind, f"mt{kind}", "Heartbeat", {}]))
            # OCPP 1.6 has no MessageTypeNotSupported.
            assert frame[1:3] == [f"mt{kind}", "FormationViolation"], frame
            await assert_usable(station)


async def test_stray_callresult_and_callerror_get_no_answer(ocpp_url: str) -> None:
    """Replies to calls we never made are dropped silently (answering a reply with a
    CALLERROR invites a loop), and the connection stays usable."""
    async with raw_station(ocpp_url, "F5") as station:
        await station.ws.send(json.dumps([3, "never-asked", {"status": "Accepted"}]))
        await station.ws.send(json.dumps([4, "never-asked", "GenericError", "", {}]))
        await assert_usable(station)
        assert station.replies.empty()


# ---- 4: schema violations -----------------------------------------------------------------

SCHEMA_VIOLATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("BootNotification", {"chargePointModel": "R1"}, "OccurenceConstraintViolation"),
    (
        "StatusNotification",
        {"connectorId": "1", "errorCode": "NoError", "status": "Available"},
        "TypeConstraintViolation",
    ),
    (
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Broken"},
        "PropertyConstraintViolation",
    ),
    ("Authorize", {"idTag": "X" * 21}, "PropertyConstraintViolation"),
    ("Authorize", {"idTag": 12345}, "TypeConstraintViolation"),
    ("Heartbeat", {"unexpected": 1}, "FormationViolation"),
    ("Authorize", {"idTag": "CARD-1", "colour": "blue"}, "FormationViolation"),
    ("MeterValues", {"connectorId": 1, "meterValue": []}, "OccurenceConstraintViolation"),
]


async def test_schema_violations_get_their_error_code(ocpp_url: str, api: httpx.AsyncClient) -> None:
    async with raw_station(ocpp_url, "S1") as station:
        available = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        await station.ok("StatusNotification", available)
        for n, (action, payload, code) in enumerate(SCHEMA_VIOLATIONS):
            frame = await error_for(station, json.dumps([2, f"bad{n}", action, payload]))
            assert frame[1:3] == [f"bad{n}", code], (action, payload, frame)
            await assert_usable(station)
    body = (await api.get("/api/stations/S1")).json()
    assert body["vendor"] == "Raw"  # the bad BootNotification changed nothing
    assert [c["status"] for e in body["evses"] for c in e["connectors"]] == ["Available"]


START_VIOLATIONS: list[tuple[dict[str, Any], str]] = [
    ({"timestamp": "yesterday"}, "PropertyConstraintViolation"),
    ({"timestamp": "2024-13-45T99:00:00Z"}, "PropertyConstraintViolation"),
    ({"timestamp": None}, "TypeConstraintViolation"),
    ({"meterStart": "1000"}, "TypeConstraintViolation"),
    ({"meterStart": 1.5}, "TypeConstraintViolation"),
    ({"idTag": "T" * 21}, "PropertyConstraintViolation"),
    ({"connectorId": None}, "TypeConstraintViolation"),
    ({"bonus": True}, "FormationViolation"),
]


async def test_bad_start_transaction_stores_nothing(ocpp_url: str, api: httpx.AsyncClient) -> None:
    good = {"connectorId": 1, "idTag": "CARD-1", "meterStart": 1000, "timestamp": now_iso()}
    async with raw_station(ocpp_url, "S3") as station:
        for n, (changes, code) in enumerate(START_VIOLATIONS):
            bad = {**good, **changes}
            frame = await error_for(station, json.dumps([2, f"tx{n}", "StartTransaction", bad]))
            assert frame[1:3] == [f"tx{n}", code], (changes, frame)
            await assert_usable(station)
        missing = {k: v for k, v in good.items() if k != "timestamp"}
        frame = await error_for(station, json.dumps([2, "tx-missing", "StartTransaction", missing]))
        assert frame[1:3] == ["tx-missing", "OccurenceConstraintViolation"]
        await assert_usable(station)
    assert await sessions(api) == []


async def test_schema_valid_but_unstorable_value_is_not_internal_error(
    ocpp_url: str, api: httpx.AsyncClient
) -> None:
    """A date-time the schema accepts but that is before year 1 in UTC can never be stored.
    InternalError would tell the station to retry it forever (blocking its transaction
    queue); it must get PropertyConstraintViolation, and nothing is stored."""
    ancient = "0001-01-01T00:00:00+14:00"
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": ancient}
    start = {"connectorId": 1, "idTag": "CARD-1", "meterStart": 1000, "timestamp": ancient}
    async with raw_station(ocpp_url, "S5") as station:
        for n, (action, payload) in enumerate([("StatusNotification", status), ("StartTransaction", start)]):
            frame = await error_for(station, json.dumps([2, f"old{n}", action, payload]))
            assert frame[1:3] == [f"old{n}", "PropertyConstraintViolation"], (action, frame)
            await assert_usable(station)
    assert await sessions(api) == []
    body = (await api.get("/api/stations/S5")).json()
    assert [c["status"] for e in body["evses"] for c in e["connectors"]] == []


# ---- 5: actions ---------------------------------------------------------------------------


async def test_unknown_or_wrong_direction_action(ocpp_url: str) -> None:
    cases = [
        ("FooBar", "NotImplemented"),
        ("heartbeat", "NotImplemented"),
        ("", "NotImplemented"),
        ("RemoteStartTransaction", "NotSupported"),
        ("Reset", "NotSupported"),
        ("GetConfiguration", "NotSupported"),
    ]
    async with raw_station(ocpp_url, "A1") as station:
        for action, code in cases:
            frame = await error_for(station, json.dumps([2, "act1", action, {}]))
            assert frame[1:3] == ["act1", code], (action, frame)
            await assert_usable(station)


# ---- 6: oversized frames ------------------------------------------------------------------


async def test_huge_frame_closes_1009_and_server_stays_up(ocpp_url: str, server: Stekker) -> None:
    limit = server.settings.ws_max_frame_bytes
    async with raw_station(ocpp_url, "H1") as station:
        huge = json.dumps([2, "big", "DataTransfer", {"vendorId": "V", "data": "x" * (limit + 1)}])
        assert len(huge) > limit
        await station.ws.send(huge)
        await asyncio.wait_for(station.ws.wait_closed(), 5)
        assert station.ws.close_code == 1009
        assert station.replies.empty()
    async with raw_station(ocpp_url, "H1") as again:  # the same station reconnects fine
        await assert_usable(again)
    async with raw_station(ocpp_url, "H2") as other:
        await assert_usable(other)


async def test_frame_just_under_the_limit_is_handled(ocpp_url: str, server: Stekker) -> None:
    limit = server.settings.ws_max_frame_bytes
    async with raw_station(ocpp_url, "H3") as station:
        head = json.dumps([2, "big", "Heartbeat", {"pad": ""}])
        text = head.replace('""', '"' + "x" * (limit - len(head) - 10) + '"')
        assert limit - 20 < len(text) <= limit
        frame = await error_for(station, text)  # Heartbeat has no "pad": the schema says no
        assert frame[1:3] == ["big", "FormationViolation"]
        await assert_usable(station)


# ---- 7: handshake refusals ----------------------------------------------------------------


async def handshake_status(url: str, **kw: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, open_timeout=5, **kw):
            pass
    status: int = info.value.response.status_code
    return status


async def test_handshake_without_subprotocol_is_400(ocpp_url: str) -> None:
    assert await handshake_status(f"{ocpp_url}/P1") == 400
    assert await handshake_status(f"{ocpp_url}/P1", subprotocols=["ocpp2.0"]) == 400
    assert await handshake_status(f"{ocpp_url}/P1", subprotocols=["ocpp1.5", "soap"]) == 400
    async with raw_station(ocpp_url, "P1") as station:  # the right offer still works
        assert station.ws.subprotocol == "ocpp1.6"
        await assert_usable(station)


async def test_handshake_picks_ocpp16_among_several_offers(ocpp_url: str) -> None:
    async with connect(f"{ocpp_url}/P2", subprotocols=["ocpp2.0", "ocpp1.6"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "ocpp1.6"
        station = RawStation(ws)
        try:
            assert (await station.ok("BootNotification", BOOT))["status"] == "Accepted"
            await assert_usable(station)
        finally:
            await station.close()


async def test_unusable_station_id_is_404(ocpp_url: str) -> None:
    base = ocpp_url.rsplit("/", 1)[0]
    assert await handshake_status(f"{base}/ocpp/" + "L" * 49, subprotocols=["ocpp1.6"]) == 404
    assert await handshake_status(f"{base}/ocpp/%0A", subprotocols=["ocpp1.6"]) == 404


class TestUnknownStationsRejected:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"unknown_stations": "reject"}

    async def test_unknown_station_is_404(self, ocpp_url: str, api: httpx.AsyncClient) -> None:
        assert await handshake_status(f"{ocpp_url}/NOPE", subprotocols=["ocpp1.6"]) == 404
        assert (await api.get("/api/stations/NOPE")).status_code == 404
        created = await api.post("/api/stations", json={"authentication": "none", "id": "KNOWN"})
        assert created.status_code == 201, created.text
        async with raw_station(ocpp_url, "KNOWN") as station:
            await assert_usable(station)


async def test_station_with_password_needs_basic_auth(ocpp_url: str, api: httpx.AsyncClient) -> None:
    password = "0123456789abcdef"
    created = await api.post("/api/stations", json={"id": "SEC1", "password": password})
    assert created.status_code == 201, created.text
    url = f"{ocpp_url}/SEC1"
    sub = {"subprotocols": ["ocpp1.6"]}
    assert await handshake_status(url, **sub) == 401
    for headers in [
        auth_header("SEC1", "wrong-password!"),
        auth_header("SEC2", password),  # right password, but the user name is not the station id
        auth_header("SEC1", ""),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer x"},
    ]:
        assert await handshake_status(url, additional_headers=headers, **sub) == 401, headers
    async with raw_station(ocpp_url, "SEC1", additional_headers=auth_header("SEC1", password)) as station:
        await assert_usable(station)
    assert await poll_online(api, "SEC1", False) is False


# ---- 8: database down ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database_unreachable(server: Stekker) -> AsyncIterator[None]:
    """Point every database path of the running server (the context's session factory and
    the group-commit writer's) at a port where nothing listens; restore it afterwards."""
    dead_engine = make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    dead = make_session_factory(dead_engine)
    writer = server.ctx.writer
    saved = server.ctx.db, (writer.factory if writer is not None else None)
    server.ctx.db = dead
    if writer is not None:
        writer.factory = dead
    try:
        yield
    finally:
        server.ctx.db = saved[0]
        if writer is not None and saved[1] is not None:
            writer.factory = saved[1]
        await dead_engine.dispose()


async def test_database_down_is_internal_error_never_accepted(
    ocpp_url: str, api: httpx.AsyncClient, server: Stekker
) -> None:
    assert (await api.put("/api/tokens", json={"uid": "CARD-DB"})).status_code == 200
    payload = {"connectorId": 1, "idTag": "CARD-DB", "meterStart": 500, "timestamp": now_iso()}
    start = json.dumps([2, "start-1", "StartTransaction", payload])
    async with raw_station(ocpp_url, "DB1") as station:
        async with database_unreachable(server):
            frame = await error_for(station, start)
            assert frame[1:3] == ["start-1", "InternalError"]
            status = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
            frame = await error_for(station, json.dumps([2, "st-1", "StatusNotification", status]))
            assert frame[1:3] == ["st-1", "InternalError"]
            await assert_usable(station)  # Heartbeat needs no database
        assert await sessions(api) == []
        retry = await station.send_text(start)  # the station retries the same message
        assert retry[0] == 3 and retry[1] == "start-1", retry
        assert isinstance(retry[2]["transactionId"], int)
        assert retry[2]["idTagInfo"]["status"] == "Accepted"
        again = await station.send_text(start)  # a retransmission gets the same transaction
        assert again[0] == 3 and again[2]["transactionId"] == retry[2]["transactionId"], again
    assert [s["id"] for s in await sessions(api)] == [retry[2]["transactionId"]]


# ---- 9: reconnect while the old socket hangs ----------------------------------------------


async def test_reconnect_replaces_hanging_socket(
    ocpp_url: str, api: httpx.AsyncClient, server: Stekker
) -> None:
    async with raw_station(ocpp_url, "Z1") as first:
        async with raw_station(ocpp_url, "Z1", boot=False) as second:
            boot = await asyncio.wait_for(second.ok("BootNotification", BOOT), 2)
            assert boot["status"] == "Accepted"
            await asyncio.wait_for(first.ws.wait_closed(), 3)
            assert first.ws.close_code == 1001
            await assert_usable(second)
            assert (await api.get("/api/stations/Z1")).json()["online"] is True
            # The server's commands go to the new socket.
            reply = await server.gateway.send(
                "Z1", StationCommand("raw", {"action": "ClearCache", "payload": {}}), timeout=2
            )
            assert reply == {"status": "Accepted"}
            assert [c[2] for c in second.server_calls] == ["ClearCache"]
            assert first.server_calls == []
            await asyncio.sleep(0.3)  # the replaced socket's end must not mark the station offline
            assert (await api.get("/api/stations/Z1")).json()["online"] is True
        assert await poll_online(api, "Z1", False) is False
    kinds: list[str] = []
    for _ in range(40):  # the disconnect is written just after the connection is dropped
        kinds = [e["kind"] for e in (await api.get("/api/stations/Z1/events")).json()]
        if "disconnected" in kinds:
            break
        await asyncio.sleep(0.05)
    # Two connects, and only the last socket's end is a disconnect (the replaced one is not).
    assert kinds.count("connected") == 2 and kinds.count("disconnected") == 1, kinds


# ---- 10: late replies ---------------------------------------------------------------------


async def test_late_reply_is_dropped_not_matched_to_next_call(ocpp_url: str, server: Stekker) -> None:
    clear = StationCommand("raw", {"action": "ClearCache", "payload": {}})
    async with raw_station(ocpp_url, "R1") as station:
        station.silent = True
        with pytest.raises(CommandTimeout):
            await server.gateway.send("R1", clear, timeout=0.3)
        first_id = station.server_calls[-1][1]

        second = asyncio.create_task(server.gateway.send("R1", clear, timeout=3))
        for _ in range(100):
            if len(station.server_calls) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(station.server_calls) == 2, station.server_calls
        second_id = station.server_calls[-1][1]
        assert second_id != first_id
        await station.ws.send(json.dumps([3, first_id, {"status": "Rejected"}]))  # late, for call 1
        await asyncio.sleep(0.05)
        assert not second.done()
        await station.ws.send(json.dumps([3, second_id, {"status": "Accepted"}]))
        assert await second == {"status": "Accepted"}

        # and a later call still works normally
        station.silent = False
        assert await server.gateway.send("R1", clear, timeout=3) == {"status": "Accepted"}
        await assert_usable(station)
