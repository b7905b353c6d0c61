"""Key-set paging of the operator API's lists: follow `Link: <...>; rel="next"` until it is
gone and every row is there exactly once, even when rows are added between the fetches."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from stekker.app import Stekker
from stekker.db.models import AuditEntry, ChargingSession, MeterValue, OcppMessage, StationEvent
from stekker.db.models_tariffs import Cdr

_NEXT = re.compile(r'^<([^>]+)>; rel="next"$')
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


async def walk(
    api: httpx.AsyncClient, url: str, between: Callable[[int], Awaitable[None]] | None = None
) -> list[dict[str, Any]]:
    """Every row of a list, page after page by its Link header; `between(n)` runs after page n."""
    rows: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        r = await api.get(next_url)
        assert r.status_code == 200, r.text
        body = r.json()
        rows.extend(body["messages"] if isinstance(body, dict) else body)
        pages += 1
        assert pages < 50, "the Link header never ends"
        link = r.headers.get("link")
        next_url = None
        if link is not None:
            m = _NEXT.match(link)
            assert m is not None, link
            next_url = str(r.url.join(m.group(1)))
        if between is not None:
            await between(pages)
    return rows


def once(rows: list[dict[str, Any]]) -> list[Any]:
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), f"repeated rows: {ids}"
    return ids


async def add_station(api: httpx.AsyncClient, station_id: str) -> None:
    r = await api.post("/api/stations", json={"id": station_id, "password": "a-long-password-16"})
    assert r.status_code == 201, r.text


async def add_session(server: Stekker, station_id: str, n: int) -> int:
    async with server.ctx.db() as db, db.begin():
        s = ChargingSession(
            station_id=station_id,
            evse_number=1,
            connector_number=1,
            transaction_id=f"tx-{n}",
            start_key=f"{station_id}-{n}",
            auth_status="Accepted",
            status="completed",
            start_time=T0 + timedelta(minutes=n),
        )
        db.add(s)
        await db.flush()
        return s.id


async def add_event(server: Stekker, station_id: str, n: int) -> None:
    async with server.ctx.db() as db, db.begin():
        db.add(StationEvent(station_id=station_id, kind="test", detail={"n": n}, occurred_at=T0))


async def add_audit(server: Stekker, n: int) -> None:
    async with server.ctx.db() as db, db.begin():
        db.add(
            AuditEntry(actor="test", action="paging.test", object_type="n", object_id=str(n), occurred_at=T0)
        )


async def add_meter_value(server: Stekker, session_id: int, minute: int) -> None:
    async with server.ctx.db() as db, db.begin():
        db.add(
            MeterValue(
                station_id="CP-MV",
                session_id=session_id,
                evse_number=1,
                connector_number=1,
                timestamp=T0 + timedelta(minutes=minute),
                measurand="Energy.Active.Import.Register",
                value=str(1000 + minute),
                unit="Wh",
            )
        )


async def add_cdr(server: Stekker, session_id: int, n: int) -> None:
    async with server.ctx.db() as db, db.begin():
        db.add(
            Cdr(
                cdr_uid=f"CDR-{session_id}-{n}",
                session_id=session_id,
                sequence=n,
                station_id="CP-C",
                currency="EUR",
                start_time=T0,
                end_time=T0 + timedelta(hours=1),
                total_energy_wh=1000,
                total_time_s=3600,
                total_parking_time_s=0,
                total_cost_excl_vat=1,
                total_cost_incl_vat=1,
                data={},
            )
        )


async def add_frame(server: Stekker, n: int) -> None:
    async with server.ctx.db() as db, db.begin():
        frame = f'[2,"m{n}","Heartbeat",{{}}]'
        db.add(
            OcppMessage(
                station_id="CP-M",
                direction="in",
                message_type=2,
                message_id=f"m{n}",
                action="Heartbeat",
                frame=frame,
                size=len(frame),
                occurred_at=T0 + timedelta(seconds=n),
            )
        )


async def test_stations_pages_by_id(server: Stekker, api: httpx.AsyncClient) -> None:
    for n in range(7):
        await add_station(api, f"CP-{n:02d}")

    async def more(page: int) -> None:
        await add_station(api, f"CP-A{page}")  # sorts after every page read so far

    rows = await walk(api, "/api/stations?limit=3", more)
    ids = once(rows)
    assert ids == sorted(ids)
    assert {f"CP-{n:02d}" for n in range(7)} <= set(ids)


async def test_tokens_pages_by_id(api: httpx.AsyncClient) -> None:
    for n in range(7):
        assert (await api.put("/api/tokens", json={"uid": f"TOK{n}"})).status_code == 200

    async def more(page: int) -> None:
        await api.put("/api/tokens", json={"uid": f"NEW{page}"})

    rows = await walk(api, "/api/tokens?limit=3", more)
    once(rows)
    assert {f"TOK{n}" for n in range(7)} <= {row["uid"] for row in rows}


async def test_sessions_newest_first_neither_repeat_nor_skip(server: Stekker, api: httpx.AsyncClient) -> None:
    await add_station(api, "CP-S")
    first = [await add_session(server, "CP-S", n) for n in range(7)]

    async def more(page: int) -> None:
        await add_session(server, "CP-S", 100 + page)  # lands at the head: offsets would repeat a row

    rows = await walk(api, "/api/sessions?limit=3&station_id=CP-S", more)
    assert once(rows) == sorted(first, reverse=True)


async def test_offset_paging_still_answers(server: Stekker, api: httpx.AsyncClient) -> None:
    await add_station(api, "CP-O")
    ids = [await add_session(server, "CP-O", n) for n in range(3)]
    r = await api.get("/api/sessions?limit=2&offset=1")
    assert [row["id"] for row in r.json()] == sorted(ids, reverse=True)[1:3]
    assert "link" not in r.headers
    r = await api.get(f"/api/sessions?after={ids[2]}&offset=1")
    assert r.status_code == 422 and "not both" in r.json()["detail"]


async def test_meter_values_by_time_then_id(server: Stekker, api: httpx.AsyncClient) -> None:
    await add_station(api, "CP-MV")
    session_id = await add_session(server, "CP-MV", 0)
    for minute in (5, 1, 3, 2, 4, 0, 6):  # stored out of order: the list is in the station's time
        await add_meter_value(server, session_id, minute)

    async def more(page: int) -> None:
        await add_meter_value(server, session_id, 10 + page)  # a later reading: after the cursor

    rows = await walk(api, f"/api/sessions/{session_id}/meter-values?limit=3", more)
    once(rows)
    stamps = [row["timestamp"] for row in rows]
    assert stamps == sorted(stamps)
    assert len(rows) >= 7
    other = await add_session(server, "CP-MV", 1)
    r = await api.get(f"/api/sessions/{other}/meter-values?after={rows[0]['id']}")
    assert r.status_code == 422 and "not a meter value of session" in r.json()["detail"]


async def test_station_events_newest_first(server: Stekker, api: httpx.AsyncClient) -> None:
    await add_station(api, "CP-E")
    before = {row["id"] for row in (await api.get("/api/stations/CP-E/events")).json()}
    for n in range(7):
        await add_event(server, "CP-E", n)

    async def more(page: int) -> None:
        await add_event(server, "CP-E", 100 + page)

    rows = await walk(api, "/api/stations/CP-E/events?limit=3", more)
    ids = once(rows)
    assert ids == sorted(ids, reverse=True)
    assert [row["detail"].get("n") for row in rows if row["id"] not in before] == list(range(6, -1, -1))


async def test_audit_log_newest_first_keeps_filters(server: Stekker, api: httpx.AsyncClient) -> None:
    for n in range(7):
        await add_audit(server, n)

    async def more(page: int) -> None:
        await add_audit(server, 100 + page)

    rows = await walk(api, "/api/audit?limit=3&action=paging.", more)
    once(rows)
    assert [row["object_id"] for row in rows] == [str(n) for n in range(6, -1, -1)]
    r = await api.get("/api/audit?limit=3&action=paging.")
    assert "action=paging." in r.headers["link"] and "limit=3" in r.headers["link"]


async def test_cdrs_newest_first_rows_carry_their_id(server: Stekker, api: httpx.AsyncClient) -> None:
    await add_station(api, "CP-C")
    session_id = await add_session(server, "CP-C", 0)
    for n in range(1, 8):
        await add_cdr(server, session_id, n)

    async def more(page: int) -> None:
        await add_cdr(server, session_id, 100 + page)

    rows = await walk(api, "/api/cdrs?limit=3&station_id=CP-C", more)
    assert [row["sequence"] for row in rows] == list(range(7, 0, -1))
    assert once(rows) == sorted(once(rows), reverse=True)
    # the old name of the cursor still works, and the offset refusal says how to go on
    r = await api.get("/api/cdrs", params={"before_id": rows[2]["id"], "limit": 2})
    assert [row["id"] for row in r.json()] == [rows[3]["id"], rows[4]["id"]]
    r = await api.get("/api/cdrs", params={"offset": 100_001})
    assert r.status_code == 422


async def test_message_log_newest_first(server: Stekker, api: httpx.AsyncClient) -> None:
    await add_station(api, "CP-M")
    for n in range(7):
        await add_frame(server, n)

    async def more(page: int) -> None:
        await add_frame(server, 100 + page)

    rows = await walk(api, "/api/stations/CP-M/messages?limit=3&action=Heartbeat", more)
    assert [row["message_id"] for row in rows] == [f"m{n}" for n in range(6, -1, -1)]
    once(rows)
    last = await api.get("/api/stations/CP-M/messages", params={"limit": 3, "after": rows[3]["id"]})
    assert last.json()["next_before_id"] is None and "link" not in last.headers


async def test_exact_last_page_has_no_link(server: Stekker, api: httpx.AsyncClient) -> None:
    for n in range(4):
        await add_audit(server, n)
    r = await api.get("/api/audit?limit=2&action=paging.")
    assert "link" in r.headers
    r = await api.get(httpx.URL(str(r.url)).join(_NEXT.match(r.headers["link"]).group(1)))  # type: ignore[union-attr]
    assert len(r.json()) == 2 and "link" not in r.headers


@pytest.mark.parametrize(
    "path",
    [
        "/api/cdrs",
        "/api/sessions",
        "/api/tokens",
        "/api/audit",
        "/api/stations/CP-H/events",
        "/api/sessions/1/meter-values",
        "/api/stations/CP-H/messages",
    ],
)
async def test_hostile_cursors_are_a_clear_422(api: httpx.AsyncClient, path: str) -> None:
    for cursor in ("garbage", "-1", "0", "1e3", str(2**64), "1;DROP TABLE sessions", ""):
        r = await api.get(path, params={"after": cursor})
        assert r.status_code == 422, (cursor, r.text)
        assert "after" in r.json()["detail"], (cursor, r.text)


async def test_hostile_station_cursor(api: httpx.AsyncClient) -> None:
    for cursor in ("' OR 1=1 --", "x" * 200, ""):
        r = await api.get("/api/stations", params={"after": cursor})
        assert r.status_code == 422, r.text


async def test_openapi_describes_the_cursor_and_the_link(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    for path in (
        "/api/cdrs",
        "/api/sessions",
        "/api/tokens",
        "/api/stations",
        "/api/audit",
        "/api/stations/{station_id}/events",
        "/api/sessions/{session_id}/meter-values",
        "/api/stations/{station_id}/messages",
    ):
        op = doc["paths"][path]["get"]
        params = {p["name"]: p for p in op["parameters"]}
        assert "Link" in params["after"]["description"], path
        assert "limit" in params, path
        assert "Link" in op["responses"]["200"]["headers"], path


async def test_cli_follows_the_link_with_all_pages(server: Stekker, api: httpx.AsyncClient, cli: Any) -> None:
    await add_station(api, "CP-C")
    session_id = await add_session(server, "CP-C", 0)
    for n in range(1, 6):
        await add_cdr(server, session_id, n)
    first = await cli("cdr", "list", "--station", "CP-C", "--limit", "2", "--json")
    assert first.exit_code == 0, first.output
    assert [row["sequence"] for row in json.loads(first.output)] == [5, 4]
    every = await cli("cdr", "list", "--station", "CP-C", "--limit", "2", "--json", "--all-pages")
    assert every.exit_code == 0, every.output
    assert [row["sequence"] for row in json.loads(every.output)] == [5, 4, 3, 2, 1]
