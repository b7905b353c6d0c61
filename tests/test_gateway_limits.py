"""A hostile or broken station against the real gateway (loopback, SQLite and PostgreSQL): its
fair share of the gateway, the storage it may use, handshake floods and password guessing.

Tests assert what stations and operators see (answers, close codes, events, stored bytes),
never how long something took.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from stekker.app import Stekker
from stekker.db.models import OcppMessage, StationEvent
from stekker.domain.passwords import verify_password
from stekker.domain.storage_budget import cut_detail
from stekker.domain.token_bucket import TokenBucket
from stekker.ocpp.connection import DATABASE_OUTAGE
from stekker.services import stations as stations_service
from stekker.services.message_log import MessageLog
from tests.peers import auth_header, raw_station
from tests.test_gateway_hostile import database_unreachable

RATE, BURST = 20.0, 10


def padded_heartbeat(n: int, pad: int = 1_000) -> str:
    """A valid Heartbeat CALL made longer with JSON whitespace."""
    return f'[2, "hb{n}", "Heartbeat", {{}}' + " " * pad + "]"


async def events(api: httpx.AsyncClient, station_id: str, kind: str) -> list[dict[str, Any]]:
    response = await api.get(f"/api/stations/{station_id}/events")
    assert response.status_code == 200, response.text
    return [e for e in response.json() if e["kind"] == kind]


async def wait_for_events(
    api: httpx.AsyncClient, station_id: str, kind: str, count: int = 1
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(100):
        found = await events(api, station_id, kind)
        if len(found) >= count:
            break
        await asyncio.sleep(0.05)
    return found


# ---- the token bucket -----------------------------------------------------------------------


def test_token_bucket_burst_then_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(rate=10.0, burst=3, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)  # the 4th waits for one token
    assert bucket.reserve() == pytest.approx(0.2)  # and the 5th for the next
    now[0] += 0.2  # the caller waited: both borrowed tokens are paid back
    assert bucket.reserve() == pytest.approx(0.1)
    now[0] += 60  # a quiet minute refills only up to the burst
    assert bucket.tokens == pytest.approx(3.0)
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)


# ---- per-station rate limit -----------------------------------------------------------------


class TestFairShare:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            "ocpp_station_rate": RATE,
            "ocpp_station_burst": BURST,
            "ocpp_station_backlog": 8,
            "ocpp_flood_seconds": 600,
            "message_log_enabled": False,
        }

    async def test_a_flooder_is_slowed_and_another_station_is_answered(
        self, ocpp_url: str, server: Stekker
    ) -> None:
        total = 5_000
        sent = 0
        async with raw_station(ocpp_url, "FLOOD", boot=False, close_timeout=0.2) as flooder:
            connected_at = time.monotonic()  # the bucket starts full when the socket opens

            async def flood() -> None:
                nonlocal sent
                with contextlib.suppress(ConnectionClosed):
                    for n in range(total):
                        await flooder.ws.send(padded_heartbeat(n))
                        sent += 1

            sender = asyncio.create_task(flood())
            try:
                await asyncio.sleep(0.5)
                async with raw_station(ocpp_url, "CALM", boot=False) as calm:
                    frame = await calm.call("Heartbeat", {})
                    assert frame[0] == 3, frame
                    # answered while the flooder still has frames waiting for theirs
                    assert flooder.replies.qsize() < sent
                elapsed = time.monotonic() - connected_at
                answered = flooder.replies.qsize()
                assert BURST <= answered <= BURST + RATE * elapsed + 1, (answered, elapsed)
                # back-pressure: the gateway reads no further than its backlog of 8 frames; the
                # rest waits in the station's own buffers and TCP
                connection = server.gateway.connections["FLOOD"]
                assert connection.throttled > 0
                assert connection.received <= connection.handled + 8 + 1, (
                    connection.received,
                    connection.handled,
                )
                assert connection.received < sent
                answers = [flooder.replies.get_nowait() for _ in range(answered)]
                assert [a[:2] for a in answers] == [[3, f"hb{n}"] for n in range(answered)]
                # nothing is dropped: later frames are answered later, in order
                more = await asyncio.wait_for(flooder.replies.get(), 5)
                assert more[:2] == [3, f"hb{answered}"]
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender


class TestFlooding:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            "ocpp_station_rate": RATE,
            "ocpp_station_burst": 5,
            "ocpp_station_backlog": 4,
            "ocpp_flood_seconds": 0.3,
            "message_log_enabled": False,
        }

    async def test_a_station_that_keeps_flooding_is_disconnected(
        self, ocpp_url: str, api: httpx.AsyncClient
    ) -> None:
        async with raw_station(ocpp_url, "FLOOD2", close_timeout=0.2) as flooder:

            async def flood() -> None:
                with contextlib.suppress(ConnectionClosed):
                    for n in range(2_000):  # pipelined: 100 s of frames at the rate
                        await flooder.ws.send(padded_heartbeat(n, 1_000))

            sender = asyncio.create_task(flood())
            try:
                await asyncio.wait_for(flooder.ws.wait_closed(), 10)
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            assert flooder.ws.close_code == 1008
            assert (flooder.ws.close_reason or "").startswith("flooding")
        found = await wait_for_events(api, "FLOOD2", "flooding")
        assert len(found) == 1, found
        assert found[0]["detail"]["backlog"] == 4 and found[0]["detail"]["throttled"] > 0

    async def test_a_station_that_waits_for_its_answers_is_never_flooding(
        self, ocpp_url: str, api: httpx.AsyncClient
    ) -> None:
        """OCPP's one CALL at a time, however fast: slowed to the rate, never disconnected."""
        async with raw_station(ocpp_url, "REPLAY") as station:
            for _ in range(30):  # 30 > burst 5: most wait for a token
                assert (await station.call("Heartbeat", {}))[0] == 3
            assert station.ws.close_code is None
        assert await events(api, "REPLAY", "flooding") == []


# ---- storage budget -------------------------------------------------------------------------

BUDGET = 300_000


async def stored_bytes(server: Stekker, station_id: str) -> tuple[int, list[StationEvent]]:
    """Bytes of message log frames and station events kept for a station, and its events."""
    async with server.ctx.db() as db:
        frames = (
            await db.execute(
                select(func.coalesce(func.sum(func.length(OcppMessage.frame)), 0)).where(
                    OcppMessage.station_id == station_id
                )
            )
        ).scalar_one()
        found = list(
            (await db.execute(select(StationEvent).where(StationEvent.station_id == station_id))).scalars()
        )
    return int(frames) + sum(len(orjson.dumps(e.detail)) for e in found), found


class TestStorageBudget:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            "ocpp_station_storage_per_hour": BUDGET,
            "station_event_max_bytes": 4096,
            "ocpp_station_rate": 100_000,
            "ocpp_station_burst": 100_000,
        }

    async def test_large_data_transfers_store_at_most_the_budget(
        self, ocpp_url: str, server: Stekker, api: httpx.AsyncClient
    ) -> None:
        count, data = 1_000, "x" * 200_000
        async with raw_station(ocpp_url, "DISK") as station:
            for n in range(count):  # pipelined, as fast as the socket takes them
                payload = {"vendorId": "Acme", "messageId": "dump", "data": data}
                await station.ws.send(json.dumps([2, f"dt{n}", "DataTransfer", payload]))
            answers = [await asyncio.wait_for(station.replies.get(), 30) for _ in range(count)]
            # every frame is answered as usual: the budget limits what we keep, not the protocol
            assert {(a[0], a[2]["status"]) for a in answers} == {(3, "UnknownVendorId")}
        await server.gateway.message_log.flush()
        total, found = await stored_bytes(server, "DISK")
        kinds = [e.kind for e in found]
        # what was charged (frames, data transfers) stays within the budget; the connection
        # events and the one notice are not charged
        charged = total - sum(len(orjson.dumps(e.detail)) for e in found if e.kind != "data_transfer")
        assert charged <= BUDGET, (charged, kinds.count("data_transfer"))
        assert total < BUDGET + 10_000
        assert kinds.count("storage_budget_exceeded") == 1, kinds
        transfers = [e for e in found if e.kind == "data_transfer"]
        assert transfers and all(e.detail["truncated"] is True for e in transfers)
        assert transfers[0].detail["original_bytes"] > 200_000
        assert transfers[0].detail["vendor_id"] == "Acme"  # small values are kept whole
        assert len(orjson.dumps(transfers[0].detail)) <= 4096
        notice = next(e for e in found if e.kind == "storage_budget_exceeded")
        assert notice.detail["budget_bytes"] == BUDGET
        storage = (await api.get("/api/stations/DISK/connection")).json()["storage"]
        assert storage["budget_bytes"] == BUDGET and storage["used_bytes"] <= BUDGET
        # counted, not stored: the data transfers, and the frames in and out
        assert storage["events_not_stored"] + storage["frames_not_stored"] > count, storage


def test_cut_detail_keeps_small_values_and_marks_the_cut() -> None:
    detail = {"vendor_id": "Acme", "data": {"blob": "y" * 50_000}}
    cut = cut_detail(detail, 1024)
    assert cut["vendor_id"] == "Acme" and cut["truncated"] is True
    assert cut["original_bytes"] == len(orjson.dumps(detail))
    assert len(orjson.dumps(cut)) <= 1024
    assert cut_detail({"a": 1}, 1024) == {"a": 1}


# ---- message log during a database outage ---------------------------------------------------


class TestMessageLogOutage:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        # written only when the test says so; at most 10 frames kept while the database is down
        return {
            "message_log_flush_interval": 3600,
            "message_log_max_pending": 10,
            "message_log_spill_bytes": 0,
        }

    async def test_frames_are_kept_the_gap_counted_and_the_outage_logged_once(
        self, ocpp_url: str, server: Stekker, api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        log = server.gateway.message_log
        DATABASE_OUTAGE.ok()
        async with raw_station(ocpp_url, "GAP") as station:
            await log.flush()
            written = log.written
            caplog.clear()
            with caplog.at_level(logging.INFO):
                async with database_unreachable(server):
                    status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
                    for _ in range(15):
                        frame = await station.call("StatusNotification", status)
                        assert frame[2] == "InternalError"  # nothing acknowledged (rule 4)
                        await log.flush()  # fails: the frames stay buffered
                    assert log.pending == 10 and log.lost == 0
                await log.flush()  # the database is back
                assert (await station.call("StatusNotification", status))[0] == 3
                await log.flush()
            shed = log.dropped_by_station["GAP"]
            assert shed == 30 - 10  # 15 CALLs and their 15 CALLERRORs, of which 10 are kept
            assert log.written - written == 10 + 2  # the 10 kept, then the last CALL and its answer
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        texts = [r.getMessage() for r in warnings]
        assert sum("message log: the database is unavailable" in t for t in texts) == 1, texts
        assert sum("message log: the database is back" in t for t in texts) == 1, texts
        assert sum("gateway: the database is unavailable" in t for t in texts) == 1, texts
        assert sum("gateway: the database is back" in t for t in texts) == 1, texts
        gateway = ("stekker.ocpp", "stekker.services.message_log", "stekker.services.stations")
        tracebacks = [r.getMessage() for r in caplog.records if r.exc_info and r.name.startswith(gateway)]
        assert tracebacks == [], "no traceback per message"
        async with server.ctx.db() as db:
            gaps = list(
                (
                    await db.execute(
                        select(StationEvent).where(
                            StationEvent.station_id == "GAP", StationEvent.kind == "message_log_gap"
                        )
                    )
                ).scalars()
            )
        assert [g.detail["frames"] for g in gaps] == [shed]
        health = (await api.get("/api/stations/GAP/connection")).json()
        assert health["message_log_dropped"] == shed
        assert gaps[0].detail["first"] <= gaps[0].detail["last"]


# ---- handshakes: refusals sampled, password guessing slowed, slowloris dropped --------------


async def status_of(url: str, password: str | None = None, **kw: Any) -> int:
    headers = auth_header(url.rsplit("/", 1)[1], password) if password is not None else {}
    try:
        async with connect(url, subprotocols=["ocpp1.6"], additional_headers=headers, **kw):  # type: ignore[list-item]
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


class TestHandshakes:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        # the test server's long handshake bound: a loaded machine may take a while to refuse
        return {"unknown_stations": "reject", "ocpp_auth_free_failures": 5}

    async def test_refused_handshakes_are_sampled_with_their_count(
        self, ocpp_url: str, server: Stekker
    ) -> None:
        now = [datetime(2026, 12, 7, 12, 0, tzinfo=UTC)]
        server.ctx.clock = lambda: now[0]
        for _ in range(200):
            assert await status_of(f"{ocpp_url}/NOPE") == 404
        now[0] += timedelta(seconds=61)
        assert await status_of(f"{ocpp_url}/NOPE") == 404
        async with server.ctx.db() as db:
            rows = list(
                (
                    await db.execute(
                        select(StationEvent)
                        .where(StationEvent.station_id == "NOPE", StationEvent.kind == "connection_refused")
                        .order_by(StationEvent.id)
                    )
                ).scalars()
            )
        # one row a minute, the second standing for itself and the 199 not written
        assert [r.detail["refusals"] for r in rows] == [1, 200]

    async def test_password_guessing_is_throttled_but_not_the_real_station(
        self, ocpp_url: str, server: Stekker, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        password = "0123456789abcdef"
        created = await api.post("/api/stations", json={"id": "GUESS", "password": password})
        assert created.status_code == 201, created.text
        checks: list[str] = []

        def counting(candidate: str, stored: str) -> bool:
            checks.append(candidate)
            return verify_password(candidate, stored)

        monkeypatch.setattr(stations_service, "verify_password", counting)
        url = f"{ocpp_url}/GUESS"
        for n in range(5):
            assert await status_of(url, f"guess-{n}-xxxxxxxx") == 401
        assert len(checks) == 5
        assert await status_of(url, "guess-6-xxxxxxxx") == 429  # refused without a check
        assert await status_of(url, password) == 429  # from this address, even the right one waits
        assert len(checks) == 5
        throttled = [
            e for e in await events_of(server, "GUESS", "connection_refused") if "retry_after" in e.detail
        ]
        assert [e.detail["refusals"] for e in throttled] == [1]  # sampled: one for the two
        # the real station, at its own address, connects
        assert await status_of(url, password, local_addr=("127.0.0.2", 0)) == 101
        assert checks[-1] == password


class TestSlowHandshake:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        # a short handshake bound (and an admission bound below it, as the settings require)
        return {"ocpp_handshake_timeout": 0.3, "ocpp_admission_timeout": 0.2}

    async def test_a_half_sent_upgrade_request_is_dropped(self, server: Stekker) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ocpp_port)
        writer.write(b"GET /ocpp/SLOW HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        await writer.drain()
        # then nothing: the server must close the connection (timeout 0.3 s; the default 10 s would fail)
        rest = await asyncio.wait_for(reader.read(), 3)
        assert b"101" not in rest
        writer.close()


class TestMessageLogSpill:
    @pytest.fixture
    def settings_overrides(self, tmp_path: Path) -> dict[str, Any]:
        return {
            "message_log_flush_interval": 3600,
            "message_log_max_pending": 10,
            "message_log_spill_bytes": 10_000_000,
            "files_dir": str(tmp_path / "files"),
        }

    async def test_frames_beyond_the_memory_bound_wait_on_disk_and_are_written_back(
        self, ocpp_url: str, server: Stekker, api: httpx.AsyncClient, tmp_path: Path
    ) -> None:
        log = server.gateway.message_log
        spill = tmp_path / "files" / "message-log-spill.jsonl"
        async with raw_station(ocpp_url, "SPILL") as station:
            await log.flush()
            async with database_unreachable(server):
                status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
                for n in range(15):
                    frame = await station.call("StatusNotification", status, msg_id=f"s{n}")
                    assert frame[2] == "InternalError"
                    await log.flush()
                assert log.pending == 10 and spill.stat().st_size > 0
            await log.flush()  # the database is back: memory first, then the file
        assert not spill.exists()
        assert log.dropped_by_station["SPILL"] == 0 and log.lost == 0
        messages = (await api.get("/api/stations/SPILL/messages", params={"limit": 1000})).json()["messages"]
        ids = {(m["direction"], m["message_id"]) for m in messages}
        assert {("in", f"s{n}") for n in range(15)} | {("out", f"s{n}") for n in range(15)} <= ids
        assert await events_of(server, "SPILL", "message_log_gap") == []


async def events_of(server: Stekker, station_id: str, kind: str) -> list[StationEvent]:
    async with server.ctx.db() as db:
        query = select(StationEvent).where(StationEvent.station_id == station_id, StationEvent.kind == kind)
        return list((await db.execute(query)).scalars())


class TestMessageLogShutdownDuringOutage:
    @pytest.fixture
    def settings_overrides(self, tmp_path: Path) -> dict[str, Any]:
        return {"message_log_spill_bytes": 10_000_000, "files_dir": str(tmp_path / "files")}

    async def test_frames_buffered_at_shutdown_are_written_after_the_restart(self, server: Stekker) -> None:
        before = MessageLog(server.ctx)
        at = datetime.now(UTC)
        for n in range(5):
            before.record("DOWN", "in", 2, f"d{n}", "Heartbeat", f'[2,"d{n}","Heartbeat",{{}}]', at)
        async with database_unreachable(server):
            await before.stop()
        assert before.lost == 0
        after = MessageLog(server.ctx)  # the next start finds the file
        await after.flush()
        async with server.ctx.db() as db:
            query = (
                select(OcppMessage.message_id)
                .where(OcppMessage.station_id == "DOWN")
                .order_by(OcppMessage.id)
            )
            assert list((await db.execute(query)).scalars()) == [f"d{n}" for n in range(5)]
        assert after.written == 5
