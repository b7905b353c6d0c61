"""The helpdesk's stop and release and the public problem report through two API processes
on one database and one real Redis (issue 18): a flow started through one process's API or
console is read, followed and refused a twin through the other's; a flow whose process died
reads as interrupted (in words, in both languages); with Redis away both answer 503 with a
clear message and nothing is sent; a driver's problem reports count across both processes.

Each "process" is a ServiceContext with its own engine, Redis client and HTTP app (httpx over
ASGI). The flows run a puppet runner the test moves (the real runner needs a station; its
steps are covered in tests/test_helpdesk.py).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.api.app import create_http_app
from stekker.bus import InProcessBus
from stekker.cluster.node import NodeInfo, Role
from stekker.cluster.redis_link import Keys, connect
from stekker.db.engine import make_engine, make_session_factory
from stekker.db.models import ChargingStation
from stekker.db.models_users import Role as UserRole
from stekker.domain.problem_reports import REPORT_BURST
from stekker.services import users
from stekker.services.context import ServiceContext
from stekker.services.stations import ensure_connector, ensure_evse
from stekker.services.stop_release import FlowBook
from tests.conftest import make_settings
from tests.observe import eventually
from tests.redis_server import RedisServer
from tests.test_shared_state import Puppet  # a flow runner the test moves

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

KEYS = Keys("t18hd:")
PASSWORD = "helpdesk-password-1"
STATION = "CP-HD-1"


@dataclass
class Process:
    ctx: ServiceContext
    book: FlowBook
    app: FastAPI
    api: httpx.AsyncClient  # the helpdesk's API token
    web: httpx.AsyncClient  # the console, logged in


@dataclass
class Pair:
    a: Process
    b: Process
    puppet: Puppet


async def _station(ctx: ServiceContext) -> None:
    async def job(db: AsyncSession) -> None:
        db.add(ChargingStation(id=STATION))
        await db.flush()
        for number in (1, 2):
            await ensure_connector(db, await ensure_evse(db, ctx, STATION, number), 1)

    await ctx.write(job)


async def _login(web: httpx.AsyncClient) -> None:
    page = await web.get("/console/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    done = await web.post(
        "/console/login",
        data={"csrf_token": found.group(1), "username": "desk", "password": PASSWORD, "next": "/console/"},
    )
    assert done.status_code == 303, done.text


async def _stop(web: httpx.AsyncClient, evse_number: int, **params: str) -> httpx.Response:
    """The console's confirmed "stop and release" for an EVSE of the station (with its CSRF field)."""
    page = await web.get("/console/helpdesk", params={"q": STATION})
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    form = {"csrf_token": found.group(1), "station_id": STATION, "evse_number": str(evse_number)}
    return await web.post("/console/helpdesk/stop", data={**form, "confirmed": "yes"}, params=params)


@pytest.fixture
async def pair(database_url: str, redis_server: RedisServer) -> AsyncIterator[Pair]:
    settings = make_settings(database_url)
    bus = InProcessBus()
    puppet = Puppet()
    made: list[Process] = []
    opened: list[Any] = []
    secret = ""
    for name in ("api-a", "api-b"):
        engine = make_engine(database_url)
        client = connect(redis_server.url)
        opened.extend([engine, client])
        ctx = ServiceContext(
            settings,
            make_session_factory(engine),
            bus,
            node=NodeInfo(name, frozenset({Role.API})),
            redis=client,
            keys=KEYS,
        )
        if not made:
            await _station(ctx)
            await users.create_user(ctx, "test", "admin", PASSWORD + "-admin", UserRole.ADMIN)
            await users.create_user(ctx, "test", "desk", PASSWORD, UserRole.HELPDESK)
            _token, secret = await users.create_token(ctx, "test", "desk", "desk", None)
        book = FlowBook.for_context(ctx, runner=puppet, mirror_every=0.05, alive_seconds=0.5)
        app = create_http_app(ctx, book)
        transport = httpx.ASGITransport(app=app)
        api = httpx.AsyncClient(
            transport=transport, base_url="https://testserver", headers={"Authorization": f"Bearer {secret}"}
        )
        web = httpx.AsyncClient(transport=transport, base_url="https://testserver")
        await _login(web)
        made.append(Process(ctx, book, app, api, web))
    yield Pair(made[0], made[1], puppet)
    puppet.go.set()
    for process in made:
        await process.book.close()
        await process.api.aclose()
        await process.web.aclose()
    for thing in opened:
        await (thing.dispose() if hasattr(thing, "dispose") else thing.aclose())


START = {"station_id": STATION, "evse_number": 1}


async def test_a_flow_started_through_a_is_followed_and_guarded_through_b(pair: Pair) -> None:
    started = await pair.a.api.post("/api/helpdesk/stop-and-release", json=START)
    assert started.status_code == 202, started.text
    flow_id = started.json()["id"]
    await asyncio.wait_for(pair.puppet.started.wait(), 5)
    seen = await pair.b.api.get(f"/api/helpdesk/flows/{flow_id}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["status"] == "running" and seen.json()["station_id"] == STATION
    # one flow per EVSE in the whole cluster: b refuses the twin, naming the running flow
    twin = await pair.b.api.post("/api/helpdesk/stop-and-release", json=START)
    assert twin.status_code == 409 and flow_id in twin.json()["detail"]
    # b's console shows a's flow, and refuses the twin with a page
    page = await pair.b.web.get(f"/console/helpdesk/flows/{flow_id}")
    assert page.status_code == 200 and STATION in page.text
    twice = await _stop(pair.b.web, 1)
    assert twice.status_code == 409 and flow_id in twice.text
    pair.puppet.go.set()
    # b waits for a's flow to end (bounded by `wait`), and sees the fresh state
    ended = await pair.b.api.get(f"/api/helpdesk/flows/{flow_id}", params={"wait": 10})
    assert ended.status_code == 200
    assert ended.json()["status"] == "released"
    steps = {s["name"]: s for s in ended.json()["steps"]}
    assert steps["remote_stop"]["status"] == "ok" and steps["remote_stop"]["answer"] == "Accepted"
    # unknown and malformed ids
    assert (await pair.b.api.get(f"/api/helpdesk/flows/{'0' * 32}")).status_code == 404
    assert (await pair.b.api.get("/api/helpdesk/flows/not-an-id")).status_code == 422
    assert (await pair.b.web.get(f"/console/helpdesk/flows/{'0' * 32}")).status_code == 404


async def test_the_console_starts_a_flow_the_other_process_shows(pair: Pair) -> None:
    started = await _stop(pair.b.web, 2)
    assert started.status_code == 303, started.text
    flow_id = started.headers["location"].rsplit("/", 1)[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", flow_id)
    seen = await pair.a.api.get(f"/api/helpdesk/flows/{flow_id}")
    assert seen.status_code == 200 and seen.json()["evse_number"] == 2


async def test_a_flow_whose_process_died_reads_as_interrupted_in_words(pair: Pair) -> None:
    started = await pair.a.api.post("/api/helpdesk/stop-and-release", json=START)
    flow_id = started.json()["id"]
    await asyncio.wait_for(pair.puppet.started.wait(), 5)
    # "kill -9" of process a: its tasks stop without a word (nothing final is written)
    for prefix in ("flow-mirror-", "stop-release-"):
        tasks = [t for t in pair.a.book._tasks if t.get_name().startswith(prefix)]
        assert tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def failed() -> dict[str, Any] | None:
        answer = (await pair.b.api.get(f"/api/helpdesk/flows/{flow_id}")).json()
        return answer if answer["status"] == "failed" else None

    flow = await eventually(failed, timeout=10)
    assert "api-a" in flow["outcome"] and "check the station" in flow["outcome"]
    dutch = await pair.b.web.get(f"/console/helpdesk/flows/{flow_id}", params={"lang": "nl"})
    assert dutch.status_code == 200
    assert "stopte halverwege" in dutch.text and "api-a" in dutch.text
    english = await pair.b.web.get(f"/console/helpdesk/flows/{flow_id}", params={"lang": "en"})
    assert "stopped during it" in english.text


async def test_with_redis_away_the_api_and_console_say_so_and_send_nothing(
    pair: Pair, redis_server: RedisServer
) -> None:
    started = await pair.a.api.post("/api/helpdesk/stop-and-release", json=START)
    flow_id = started.json()["id"]
    redis_server.stop()
    refused = await pair.b.api.post("/api/helpdesk/stop-and-release", json={**START, "evse_number": 2})
    assert refused.status_code == 503 and refused.json()["error"] == "cluster_unavailable"
    unread = await pair.b.api.get(f"/api/helpdesk/flows/{flow_id}")
    assert unread.status_code == 503 and unread.json()["error"] == "cluster_unavailable"
    page = await _stop(pair.b.web, 2, lang="en")
    assert page.status_code == 503 and "nothing was sent to the station" in page.text
    polled = await pair.b.web.get(f"/console/helpdesk/flows/{flow_id}", params={"lang": "nl"})
    assert polled.status_code == 503 and "niets naar de laadpaal gestuurd" in polled.text
    assert [f.target.evse_number for f in pair.b.book._flows.values()] == []  # nothing started in b
    # the process running the flow still shows it
    assert (await pair.a.api.get(f"/api/helpdesk/flows/{flow_id}")).json()["status"] == "running"
    redis_server.start()


async def test_problem_reports_from_one_address_count_across_both_processes(pair: Pair) -> None:
    uid = (await pair.a.api.get(f"/api/stations/{STATION}")).json()["evses"][0]["evse_id"]
    drivers = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=p.app, client=("192.0.2.9", 4000)),
            base_url="https://testserver",
        )
        for p in (pair.a, pair.b)
    ]

    async def report(driver: httpx.AsyncClient) -> httpx.Response:
        form = await driver.get(f"/p/{uid}/report")
        assert form.status_code == 200, form.text
        found = re.search(r'name="token" value="([^"]+)"', form.text)
        assert found is not None
        data = {"token": found.group(1), "kind": "wont_start", "message": "", "contact": ""}
        return await driver.post(f"/p/{uid}/report", data=data)

    try:
        for n in range(REPORT_BURST):  # alternately through a and b
            sent = await report(drivers[n % 2])
            assert sent.status_code == 303, sent.text
        for driver in drivers:
            refused = await report(driver)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    finally:
        for driver in drivers:
            await driver.aclose()
