"""Bulk jobs: one function on many stations, with per-station state that an operator reads
while the job runs, cancels, and finds intact after a restart; offline stations are served
when they connect or expire, and never make a job hang."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from stekker.app import Stekker
from stekker.db.models import AuditEntry, StationGroup, StationGroupMember
from stekker.services.jobs import JobRunner
from tests.observe import eventually
from tests.peers import RawStation

OCPP16 = [Subprotocol("ocpp1.6")]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"call_timeout": 2.0}


class JobPeer(RawStation):
    """A bare 1.6 station that answers every CALL of the central system one way:
    "accept", "reject", "error" (a CALLERROR), "silent" (never) or "drop" (closes the socket)."""

    def __init__(self, ws: Any, mode: str = "accept") -> None:
        self.mode = mode
        super().__init__(ws)

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for message in self.ws:
                frame = json.loads(message)
                if frame[0] != 2:
                    await self.replies.put(frame)
                    continue
                self.server_calls.append(frame)
                if self.mode == "silent":
                    continue
                if self.mode == "drop":  # the connection breaks before the answer
                    await self.ws.close()
                    return
                if self.mode == "error":
                    await self.ws.send(json.dumps([4, frame[1], "NotImplemented", "not here", {}]))
                    continue
                answer = self.answers.get(frame[2], {"status": "Accepted"})
                if self.mode == "reject" and "status" in answer:
                    answer = {"status": "Rejected"}
                await self.ws.send(json.dumps([3, frame[1], answer]))

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [f[3] for f in self.server_calls if f[2] == action]


@contextlib.asynccontextmanager
async def peers(ocpp_url: str, modes: dict[str, str]) -> AsyncIterator[dict[str, JobPeer]]:
    """Connect and boot one JobPeer per station id, all at once."""
    async with contextlib.AsyncExitStack() as stack:

        async def one(station_id: str, mode: str) -> tuple[str, JobPeer]:
            ws = await stack.enter_async_context(connect(f"{ocpp_url}/{station_id}", subprotocols=OCPP16))
            peer = JobPeer(ws, mode)
            stack.push_async_callback(peer.close)
            await peer.ok("BootNotification", {"chargePointVendor": "Raw", "chargePointModel": "R1"})
            return station_id, peer

        pairs = await asyncio.gather(*(one(s, m) for s, m in modes.items()))
        yield dict(pairs)


async def register(api: httpx.AsyncClient, *station_ids: str) -> None:
    """Register the stations through the API, all at once (their writes share transactions)."""
    responses = await asyncio.gather(
        *(api.post("/api/stations", json={"authentication": "none", "id": s}) for s in station_ids)
    )
    for response in responses:
        assert response.status_code == 201, response.text


async def make_group(server: Stekker, name: str, station_ids: list[str]) -> None:
    async def job(db: AsyncSession) -> None:
        group = StationGroup(name=name)
        db.add(group)
        await db.flush()
        for station_id in station_ids:
            db.add(StationGroupMember(group_id=group.id, station_id=station_id))

    await server.ctx.write(job)


async def job_of(api: httpx.AsyncClient, job_id: int, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/api/jobs/{job_id}", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def finished(api: httpx.AsyncClient, job_id: int, timeout: float = 15) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job = await job_of(api, job_id)
        return job if job["finished_at"] is not None else None

    body: dict[str, Any] = await eventually(check, timeout)
    return body


def by_station(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["station_id"]: s for s in job["stations"]}


async def audit_actions(server: Stekker, object_type: str) -> list[tuple[str, str, str]]:
    async with server.ctx.db() as db:
        rows = await db.execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.object_id)
            .where(AuditEntry.object_type == object_type)
            .order_by(AuditEntry.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_bulk_job_over_50_stations(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> None:
    server.jobs.after_boot_delay = 0.05
    ids = [f"BJ{i:02d}" for i in range(50)]
    modes = {sid: "accept" for sid in ids[:30]}
    modes |= {sid: "reject" for sid in ids[30:35]}
    modes |= {sid: "error" for sid in ids[35:38]}
    modes |= {sid: "silent" for sid in ids[38:40]}
    late, never = ids[40:45], ids[45:]
    await register(api, *ids)
    await make_group(server, "district-7", ids)

    async with peers(ocpp_url, modes) as online:
        response = await api.post(
            "/api/jobs",
            json={
                "function": "reset",
                "args": {"type": "Soft"},
                "selection": {"group": "district-7"},
                "concurrency": 10,
                "timeout": 1.5,
                "offline_expiry_seconds": 4,
            },
        )
        assert response.status_code == 201, response.text
        created = response.json()
        job_id = created["id"]
        assert created["station_ids"] == ids and created["total"] == 50
        assert created["state"] == "running" and created["function"] == "reset"
        assert created["counts"]["waiting"] == 10  # the offline ones wait from the start

        # readable while it runs: the silent stations keep it going for the call timeout
        running = await job_of(api, job_id)
        assert running["state"] == "running"
        assert sum(running["counts"].values()) == 50
        listed = (await api.get("/api/jobs", params={"state": "running"})).json()
        assert [j["id"] for j in listed] == [job_id]

        # five offline stations come online and are served
        async with peers(ocpp_url, dict.fromkeys(late, "accept")) as later:

            async def late_served() -> bool:
                job = by_station(await job_of(api, job_id))
                return all(job[s]["state"] == "accepted" for s in late)

            await eventually(late_served, 10)
            for peer in later.values():
                assert peer.calls("Reset") == [{"type": "Soft"}]

            job = await finished(api, job_id)

    assert job["state"] == "completed"
    counts = {k: v for k, v in job["counts"].items() if v}
    assert counts == {"accepted": 35, "rejected": 5, "failed": 3, "timed_out": 2, "expired": 5}
    assert job["done"] == 50
    stations = by_station(job)
    assert {stations[s]["status"] for s in ids[:30] + late} == {"Accepted"}
    assert {stations[s]["status"] for s in ids[30:35]} == {"Rejected"}
    assert {stations[s]["status"] for s in ids[35:38]} == {"NotImplemented"}
    assert "not here" in stations[ids[35]]["error"]
    assert all("did not answer" in stations[s]["error"] for s in ids[38:40])
    assert all(stations[s]["attempts"] == 0 and "offline" in stations[s]["error"] for s in never)
    assert all(stations[s]["attempts"] == 1 and stations[s]["sent_at"] for s in ids[:40])
    for sid in ids[:40]:
        assert online[sid].calls("Reset") == [{"type": "Soft"}], sid  # exactly once each

    # the page and state filters of the job view
    page = await job_of(api, job_id, state="expired", limit=2, offset=1)
    assert [s["station_id"] for s in page["stations"]] == never[1:3]
    assert ("job.created", "operator", str(job_id)) in await audit_actions(server, "job")
    # run_function audited each station's outcome
    async with server.ctx.db() as db:
        resets = (
            await db.execute(
                select(AuditEntry.object_id).where(AuditEntry.action.like("station.function.reset%"))
            )
        ).scalars()
        assert set(resets) >= set(ids[:40])


async def test_dry_run_lists_the_stations_and_creates_nothing(
    server: Stekker, api: httpx.AsyncClient
) -> None:
    await register(api, "DR1", "DR2", "DR3")
    response = await api.post(
        "/api/jobs",
        json={
            "function": "clear_cache",
            "selection": {"station_ids": ["DR3", "DR1", "NOPE"]},
            "dry_run": True,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["station_ids"] == ["DR1", "DR3"] and response.json()["count"] == 2
    assert (await api.get("/api/jobs")).json() == []
    # an empty result is a clear 422 when creating for real
    response = await api.post(
        "/api/jobs", json={"function": "clear_cache", "selection": {"station_ids": ["NOPE"]}}
    )
    assert response.status_code == 422 and "no station" in response.json()["detail"]


async def test_cancel_mid_run(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> None:
    ids = [f"CX{i}" for i in range(8)]
    await register(api, *ids, "CXOFF")
    async with peers(ocpp_url, dict.fromkeys(ids, "silent")) as online:
        response = await api.post(
            "/api/jobs",
            json={
                "function": "clear_cache",
                "selection": {"station_ids": [*ids, "CXOFF"]},
                "concurrency": 2,
                "timeout": 1,
            },
        )
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]

        async def two_sent() -> bool:
            return bool((await job_of(api, job_id))["counts"]["sent"] == 2)

        await eventually(two_sent, 5)
        response = await api.post(f"/api/jobs/{job_id}/cancel")
        assert response.status_code == 200, response.text
        cancelled = response.json()
        assert cancelled["state"] == "cancelled" and cancelled["cancelled_by"] == "operator"
        assert cancelled["counts"]["cancelled"] == 7 and cancelled["counts"]["sent"] == 2

        job = await finished(api, job_id)
        assert job["state"] == "cancelled"
        counts = {k: v for k, v in job["counts"].items() if v}
        assert counts == {"cancelled": 7, "timed_out": 2}  # the two in flight finished
        await asyncio.sleep(0.3)
        assert sum(len(p.calls("ClearCache")) for p in online.values()) == 2  # nothing sent after

    again = await api.post(f"/api/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    actions = [a for a, _actor, _id in await audit_actions(server, "job")]
    assert actions == ["job.created", "job.cancelled", "job.finished"]


async def test_station_that_reconnects_without_booting_is_served(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    server.jobs.boot_wait = 0.3
    await register(api, "NB1")
    response = await api.post(
        "/api/jobs", json={"function": "clear_cache", "selection": {"station_ids": ["NB1"]}}
    )
    job_id = response.json()["id"]
    assert response.json()["counts"]["waiting"] == 1
    async with connect(f"{ocpp_url}/NB1", subprotocols=OCPP16) as ws:
        peer = JobPeer(ws)
        job = await finished(api, job_id, 5)
        await peer.close()
    assert job["stations"][0]["state"] == "accepted"
    assert peer.calls("ClearCache") == [{}]


async def test_a_station_that_drops_the_call_waits_and_is_sent_again(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    server.jobs.after_boot_delay = 0.05
    await register(api, "DROP1")
    async with peers(ocpp_url, {"DROP1": "drop"}) as first:
        response = await api.post(
            "/api/jobs", json={"function": "clear_cache", "selection": {"station_ids": ["DROP1"]}}
        )
        job_id = response.json()["id"]

        async def waiting_again() -> dict[str, Any] | None:
            [station] = (await job_of(api, job_id))["stations"]
            return station if station["state"] == "waiting" and station["attempts"] == 1 else None

        station = await eventually(waiting_again, 5)
        assert "disconnected" in station["error"]
        assert len(first["DROP1"].calls("ClearCache")) == 1
    async with peers(ocpp_url, {"DROP1": "accept"}) as second:
        job = await finished(api, job_id, 5)
        assert second["DROP1"].calls("ClearCache") == [{}]
    [station] = job["stations"]
    assert station["state"] == "accepted" and station["attempts"] == 2


async def test_restart_resumes_unfinished_jobs(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """A restart: waiting stations still wait (and are served when they connect); a station
    left `sent` is not sent again but ends timed_out with the outcome unknown."""
    server.jobs.after_boot_delay = 0.05
    await register(api, "RS1", "RS2", "RS3")
    async with peers(ocpp_url, {"RS1": "silent"}) as online:
        response = await api.post(
            "/api/jobs",
            json={
                "function": "clear_cache",
                "selection": {"station_ids": ["RS1", "RS2", "RS3"]},
                "timeout": 30,
            },
        )
        job_id = response.json()["id"]

        async def sent() -> bool:
            return bool((await job_of(api, job_id))["counts"]["sent"] == 1)

        await eventually(sent, 5)
        await server.jobs.stop()  # the process dies with RS1's call in flight
        assert (await job_of(api, job_id))["state"] == "running"

        server.jobs = JobRunner(server.ctx, after_boot_delay=0.05)
        await server.jobs.start()
        job = await job_of(api, job_id)
        assert by_station(job)["RS1"]["state"] == "timed_out"
        assert "outcome unknown" in by_station(job)["RS1"]["error"]
        assert job["counts"]["waiting"] == 2 and job["state"] == "running"

        async with peers(ocpp_url, {"RS2": "accept", "RS3": "reject"}):
            job = await finished(api, job_id, 10)
        assert len(online["RS1"].calls("ClearCache")) == 1  # not re-sent
    states = {sid: s["state"] for sid, s in by_station(job).items()}
    assert states == {"RS1": "timed_out", "RS2": "accepted", "RS3": "rejected"}
    assert job["state"] == "completed"


async def test_offline_stations_expire_and_never_hang(server: Stekker, api: httpx.AsyncClient) -> None:
    await register(api, "EX1", "EX2")
    response = await api.post(
        "/api/jobs",
        json={
            "function": "clear_cache",
            "selection": {"station_ids": ["EX1", "EX2"]},
            "offline_expiry_seconds": 0,
        },
    )
    assert response.status_code == 201, response.text
    job = await finished(api, response.json()["id"], 5)
    assert job["state"] == "completed" and job["counts"]["expired"] == 2


async def login_as(
    api: httpx.AsyncClient, admin: dict[str, str] | None, name: str, role: str
) -> dict[str, str]:
    """A user with `role` (the first one, on the open API, must be the admin): its bearer header."""
    password = "correct horse battery"
    created = await api.post(
        "/api/users", json={"username": name, "password": password, "role": role}, headers=admin or {}
    )
    assert created.status_code == 201, created.text
    response = await api.post("/api/auth/token", json={"username": name, "password": password})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_bulk_jobs_are_the_operators_and_the_function_narrows_them(
    server: Stekker, api: httpx.AsyncClient
) -> None:
    """Only the operator (and admin) start or cancel jobs, and only of functions their role may
    run; the helpdesk, which may reset one station, may not reset many in one call; the
    municipality reads jobs; template changes are the operator's."""
    station = await api.post("/api/stations", json={"id": "RL1", "password": "a-station-password-1"})
    assert station.status_code == 201, station.text
    admin = await login_as(api, None, "root", "admin")
    operator = await login_as(api, admin, "ops", "operator")
    helpdesk = await login_as(api, admin, "hd", "helpdesk")
    municipality = await login_as(api, admin, "gem", "municipality")
    reset = {"function": "reset", "selection": {"station_ids": ["RL1"]}, "offline_expiry_seconds": 60}
    configure = {
        "function": "set_variables",
        "args": {"items": [{"variable": "HeartbeatInterval", "value": "60"}]},
        "selection": {"station_ids": ["RL1"]},
    }
    everything = {"function": "reset", "selection": {"all": True}, "offline_expiry_seconds": 60}
    by_group = {"function": "reset", "selection": {"group": "west"}, "offline_expiry_seconds": 60}
    unlock = {
        "function": "unlock_connector",
        "args": {"evse_number": 1, "connector_number": 1},
        "selection": {"station_ids": ["RL1"]},
    }
    trigger = {
        "function": "trigger_message",
        "args": {"message": "StatusNotification"},
        "selection": {"all": True},
    }

    for body in (everything, by_group, reset, unlock, trigger, configure, {**everything, "dry_run": True}):
        for role in (helpdesk, municipality):
            response = await api.post("/api/jobs", json=body, headers=role)
            assert response.status_code == 403, (body, response.text)
            assert "admin, operator" in response.json()["detail"]
    assert (await api.get("/api/jobs", headers=admin)).json() == []  # nothing was started

    response = await api.post("/api/jobs", json=everything, headers=operator)
    assert response.status_code == 201, response.text
    reset_job = response.json()["id"]
    raw = {"function": "raw", "args": {"action": "Heartbeat", "payload": {}}, "selection": {"all": True}}
    response = await api.post("/api/jobs", json=raw, headers=operator)
    assert response.status_code == 403 and "may not run raw" in response.json()["detail"]
    assert (await api.post(f"/api/jobs/{reset_job}/cancel", headers=municipality)).status_code == 403
    assert (await api.post(f"/api/jobs/{reset_job}/cancel", headers=helpdesk)).status_code == 403
    assert [j["id"] for j in (await api.get("/api/jobs", headers=municipality)).json()] == [reset_job]
    assert (await api.get(f"/api/jobs/{reset_job}", headers=helpdesk)).status_code == 200

    response = await api.post("/api/jobs", json=configure, headers=admin)
    assert response.status_code == 201, response.text
    response = await api.post(f"/api/jobs/{reset_job}/cancel", headers=operator)
    assert response.status_code == 200 and response.json()["cancelled_by"] == "user:ops"
    template = {"name": "t", "group": "g", "items": [{"variable": "A", "value": "1"}]}
    assert (await api.post("/api/templates", json=template, headers=helpdesk)).status_code == 403
    assert (await api.get("/api/jobs")).status_code == 401  # no token once users exist

    # the helpdesk still resets and unlocks one station at a time
    soft = {"args": {"type": "Soft"}}
    single = await api.post("/api/stations/RL1/functions/reset", json=soft, headers=helpdesk)
    assert single.status_code != 403, single.text


BAD_JOBS: list[Any] = [
    {},
    [],
    "reset",
    {"function": "reset"},
    {"function": "reset", "selection": {}},  # empty selection: refused, not "every station"
    {"function": "no_such_thing", "selection": {"station_ids": ["A"]}},
    {"function": "'; DROP TABLE jobs; --", "selection": {"station_ids": ["A"]}},
    {"function": "reset", "args": {"type": "Violent"}, "selection": {"station_ids": ["A"]}},
    {"function": "reset", "args": {"bogus": 1}, "selection": {"station_ids": ["A"]}},
    {"function": "reset", "args": "Soft", "selection": {"station_ids": ["A"]}},
    {"function": "reset", "selection": {"station_ids": ["../etc/passwd"]}},
    {"function": "reset", "selection": {"station_ids": ["x" * 49]}},
    {"function": "reset", "selection": {"station_ids": "A"}},
    {"function": "reset", "selection": {"group": "a'; --"}},
    {"function": "reset", "selection": {"location_id": -1}},
    {"function": "reset", "selection": {"location_id": 10**30}},
    {"function": "reset", "selection": {"bogus": 1}},
    {"function": "reset", "selection": {"station_ids": ["A"]}, "concurrency": 0},
    {"function": "reset", "selection": {"station_ids": ["A"]}, "concurrency": 10**6},
    {"function": "reset", "selection": {"station_ids": ["A"]}, "timeout": -1},
    {"function": "reset", "selection": {"station_ids": ["A"]}, "timeout": "soon"},
    {"function": "reset", "selection": {"station_ids": ["A"]}, "offline_expiry_seconds": 10**12},
    {"function": "reset", "selection": {"station_ids": ["A"]}, "extra": True},
    {
        "function": "data_transfer",
        "args": {"vendor_id": "x", "data": "y" * 70_000},
        "selection": {"all": True},
    },
    {"function": "reset", "selection": {"station_ids": [f"S{i}" for i in range(10_001)]}},
]


async def test_bad_jobs_are_4xx_and_create_nothing(server: Stekker, api: httpx.AsyncClient) -> None:
    await register(api, "A")
    for body in BAD_JOBS:
        response = await api.post("/api/jobs", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"], body
    assert (await api.get("/api/jobs")).json() == []


async def test_unknown_group_is_404(server: Stekker, api: httpx.AsyncClient) -> None:
    response = await api.post("/api/jobs", json={"function": "reset", "selection": {"group": "nowhere"}})
    assert response.status_code == 404 and "nowhere" in response.json()["detail"]


BAD_JOB_REQUESTS = [
    ("GET", "/api/jobs/0"),
    ("GET", "/api/jobs/-1"),
    ("GET", "/api/jobs/abc"),
    ("GET", "/api/jobs/99999999999999999999999"),
    ("GET", "/api/jobs/1%27%20OR%201=1"),
    ("GET", "/api/jobs?state=bogus"),
    ("GET", "/api/jobs?limit=0"),
    ("GET", "/api/jobs?limit=100000"),
    ("GET", "/api/jobs?offset=-1"),
    ("GET", "/api/jobs?function=DROP%20TABLE"),
    ("GET", "/api/jobs/1?state=bogus"),
    ("GET", "/api/jobs/1?limit=0"),
    ("POST", "/api/jobs/abc/cancel"),
    ("POST", "/api/jobs/0/cancel"),
]


async def test_bad_job_ids_and_parameters_are_422(server: Stekker, api: httpx.AsyncClient) -> None:
    for method, path in BAD_JOB_REQUESTS:
        response = await api.request(method, path)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["detail"]


async def test_unknown_job_is_404(server: Stekker, api: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/api/jobs/12345"), ("POST", "/api/jobs/12345/cancel")):
        response = await api.request(method, path)
        assert response.status_code == 404 and "no job 12345" in response.json()["detail"]


async def test_not_json_is_422(server: Stekker, api: httpx.AsyncClient) -> None:
    response = await api.post("/api/jobs", content=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


async def test_cli_runs_a_job_with_progress(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str, cli: Any
) -> None:
    server.jobs.after_boot_delay = 0.05
    await register(api, "CL1", "CL2")
    await make_group(server, "cli-group", ["CL1", "CL2"])
    async with peers(ocpp_url, {"CL1": "accept", "CL2": "reject"}):
        result = await cli("job", "run", "reset", "--group", "cli-group", "--arg", "type=Hard", "--wait")
        assert result.exit_code == 0, result.output
        assert "accepted 1" in result.output and "rejected 1" in result.output
    [job] = (await api.get("/api/jobs")).json()
    assert job["args"] == {"type": "Hard"} and job["state"] == "completed"

    result = await cli("job", "list")
    assert result.exit_code == 0 and "reset" in result.output
    result = await cli("job", "show", str(job["id"]))
    assert result.exit_code == 0 and "CL2" in result.output and "Rejected" in result.output
    result = await cli("job", "cancel", str(job["id"]))
    assert result.exit_code == 1 and "already completed" in result.output
    result = await cli("job", "run", "reset", "--station", "NOPE")
    assert result.exit_code == 1 and "no station" in result.output
    result = await cli("job", "run", "reset", "--arg", "novalue", "--station", "CL1")
    assert result.exit_code != 0
