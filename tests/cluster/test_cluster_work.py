"""A cluster as an operator runs it: 2 gateways behind HAProxy, 1 API process, 2 workers, one
PostgreSQL and one Redis, all real processes on loopback. A remote start from the API process
reaches a station on either gateway; the session's CDR is built once and pushed to the eMSP
once although two workers run; a bulk job reaches stations on both gateways once each; a second
process started on taken ports exits and no station notices."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from ocpp.exceptions import OCPPError
from ocpp.v16 import call

from tests.cluster.harness import (
    Cluster,
    Partner,
    ReconnectingStation,
    assert_each_push_once,
    by_gateway,
    exited,
    register_partner,
    stations,
    until,
)
from tests.peers import now_iso
from tests.test_ocpi_credentials import serving

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster-work")]


@pytest.fixture(scope="module")
def cluster(empty_cluster: Cluster) -> Cluster:
    empty_cluster.start_topology(gateways=2, apis=1, workers=2)
    return empty_cluster


async def session_of_remote_start(api: httpx.AsyncClient, answer: dict[str, Any]) -> int:
    """The session a remote start began: in the answer, or by following its remote start."""
    if answer.get("session_id") is not None:
        return int(answer["session_id"])

    async def begun() -> int | None:
        found = (await api.get(answer["follow_url"])).json()
        return found.get("session_id")

    return int(await until(begun, 20, f"a session for remote start {answer.get('remote_start_id')}"))


async def session_status(api: httpx.AsyncClient, session_id: int) -> str:
    response = await api.get(f"/api/sessions/{session_id}")
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def test_remote_start_on_each_gateway_one_cdr_one_push_each(cluster: Cluster) -> None:
    assert cluster.haproxy is not None
    partner = Partner()
    cards = ["ABC-CARD-1", "ABC-CARD-2"]
    ids = ["RS1", "RS2", "RS3", "RS4"]
    async with serving(partner), cluster.api_client() as api:  # type: ignore[arg-type]
        await register_partner(cluster.database.url, partner, cards)
        async with stations(cluster.haproxy.ocpp_url, ids) as fleet:
            held = await by_gateway(cluster, ids)
            assert sorted(held) == ["gateway-1", "gateway-2"], held  # HAProxy spread them
            chosen = [held["gateway-1"][0], held["gateway-2"][0]]
            station = {s.station_id: s for s in fleet}

            sessions: dict[str, int] = {}
            for station_id, card in zip(chosen, cards, strict=True):
                response = await api.post(
                    f"/api/stations/{station_id}/remote-start", json={"token_uid": card, "evse_number": 1}
                )
                assert response.status_code == 200, response.text
                assert response.json()["status"] == "Accepted", response.json()
                sessions[station_id] = await session_of_remote_start(api, response.json())
            for station_id in chosen:
                sim = station[station_id].sim
                await until(lambda sim=sim: sim.active_transactions(), 20, f"{station_id} charging")
                await sim.stop_session(1)
            for station_id, session_id in sessions.items():
                await until(
                    lambda s=session_id: _completed(api, s),
                    20,
                    f"session {session_id} of {station_id} completed",
                )

        # every push delivered: the outbox empty of pending work, then count what the partner got
        await until(lambda: len(partner.pushes("POST", "/cdrs")) >= len(chosen), 30, "both CDRs pushed")
        await until(
            lambda: cluster.database.value("SELECT count(*) = 0 FROM ocpi_outbox WHERE status = 'pending'"),
            30,
            "the outbox delivered",
        )

    for station_id, session_id in sessions.items():
        rows = await cluster.database.rows("SELECT id FROM sessions WHERE station_id = $1", station_id)
        assert [r["id"] for r in rows] == [session_id], (station_id, rows)
    await assert_each_push_once(cluster, partner, sessions.values())
    assert await cluster.database.value("SELECT count(*) FROM ocpi_outbox WHERE status = 'dead'") == 0


async def _completed(api: httpx.AsyncClient, session_id: int) -> bool:
    return await session_status(api, session_id) == "completed"


async def test_bulk_job_reaches_stations_on_both_gateways_once_each(cluster: Cluster) -> None:
    assert cluster.haproxy is not None
    ids = ["BJ1", "BJ2", "BJ3", "BJ4"]
    async with stations(cluster.haproxy.ocpp_url, ids), cluster.api_client() as api:
        held = await by_gateway(cluster, ids)
        assert sorted(held) == ["gateway-1", "gateway-2"], held
        response = await api.post(
            "/api/jobs", json={"function": "clear_cache", "selection": {"station_ids": ids}, "timeout": 10}
        )
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]

        async def finished() -> dict[str, Any] | None:
            detail: dict[str, Any] = (await api.get(f"/api/jobs/{job_id}")).json()
            return detail if detail["done"] == len(ids) else None

        detail = await until(finished, 40, f"job {job_id} done on every station")
        assert {s["station_id"]: s["state"] for s in detail["stations"]} == dict.fromkeys(ids, "accepted")
        assert all(s["attempts"] == 1 for s in detail["stations"]), detail["stations"]

    # each station was sent the command once, by the gateway that held it (the message log is
    # written behind the answers: wait for it)
    async def sent() -> dict[str, int] | None:
        rows = await cluster.database.rows(
            "SELECT station_id, count(*) AS n FROM ocpp_messages WHERE action = 'ClearCache' "
            "AND direction = 'out' AND message_type = 2 GROUP BY station_id"
        )
        found = {r["station_id"]: r["n"] for r in rows}
        return found if len(found) == len(ids) else None

    assert await until(sent, 20, "every ClearCache in the message log") == dict.fromkeys(ids, 1)


async def test_second_process_on_taken_ports_exits_and_no_station_notices(cluster: Cluster) -> None:
    assert cluster.haproxy is not None
    ids = ["TP1", "TP2", "TP3"]
    async with stations(cluster.haproxy.ocpp_url, ids) as fleet, cluster.api_client() as api:
        before = await by_gateway(cluster, ids)
        mark = await cluster.database.value("SELECT coalesce(max(id), 0) FROM station_events")
        gateway, api_node = cluster.gateways[0], cluster.of_role("api")[0]

        # a second gateway on a running gateway's ports (a deploy script started it twice)
        intruder = cluster.spawn(
            "gateway", "intruder-gateway", http_port=gateway.http_port, ocpp_port=gateway.ocpp_port
        )
        assert await exited(intruder) == 2, intruder.log()
        assert f"STEKKER_OCPP_PORT={gateway.ocpp_port} is in use" in intruder.log(), intruder.log()
        assert "Traceback" not in intruder.log()
        # an API process on the API's port, and a worker on a gateway's HTTP port
        for name, roles, port in (("intruder-api", "api", api_node.http_port),
                                  ("intruder-worker", "worker", gateway.http_port)):  # fmt: skip
            other = cluster.spawn(roles, name, http_port=port)
            assert await exited(other) == 2, other.log()
            assert f"STEKKER_HTTP_PORT={port} is in use" in other.log(), other.log()

        # nothing changed for the stations: same sockets, same owners, online, no false event
        assert all(s.sim.is_online and s.drops == 0 for s in fleet), [(s.station_id, s.drops) for s in fleet]
        assert await by_gateway(cluster, ids) == before
        for station_id in ids:
            shown = (await api.get(f"/api/stations/{station_id}")).json()
            assert shown["online"] is True, shown
        events = await cluster.database.rows(
            "SELECT station_id, kind FROM station_events WHERE id > $1 AND kind = 'disconnected'", mark
        )
        assert events == [], events
        assert all(node.alive for node in cluster.nodes if not node.name.startswith("intruder"))


async def test_postgresql_connections_cut_under_load_no_false_accepted(cluster: Cluster) -> None:
    """Every connection of every process to PostgreSQL cut at once (a failover of the database,
    a restarted pgbouncer): stations get their answer or a CALLERROR InternalError to retry,
    never an acknowledgement of something that was not stored; then everything goes on."""
    assert cluster.haproxy is not None
    ids = ["PG1", "PG2"]
    answers: Counter[str] = Counter()
    odd: list[str] = []

    async def load(station: ReconnectingStation) -> None:
        n = 0
        while True:
            n += 1
            reading = {
                "value": str(1_000_000 + n),
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            }
            values = call.MeterValues(
                connector_id=1, meter_value=[{"timestamp": now_iso(), "sampled_value": [reading]}]
            )
            try:
                await station.sim._request(values)
                answers["accepted"] += 1
                acknowledged.append((station.station_id, reading["value"]))
            except OCPPError as exc:
                answers[exc.code] += 1
                if exc.code != "InternalError":
                    odd.append(repr(exc))
            except Exception as exc:
                odd.append(repr(exc))
            await asyncio.sleep(0.02)

    acknowledged: list[tuple[str, str]] = []
    async with stations(cluster.haproxy.ocpp_url, ids) as fleet:
        loads = [asyncio.create_task(load(s)) for s in fleet]
        try:
            await until(lambda: answers["accepted"] >= 20, 20, "load answered")
            for _ in range(3):  # a few cuts, a moment apart, while the load runs
                await cluster.database.value(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                await asyncio.sleep(0.3)
            after = answers["accepted"]
            await until(lambda: answers["accepted"] >= after + 20, 30, "answered again after the cuts")
        finally:
            for task in loads:
                task.cancel()
            await asyncio.gather(*loads, return_exceptions=True)
        assert odd == [], odd[:5]
        assert all(s.drops == 0 for s in fleet), "a station lost its connection"

    # everything acknowledged is stored
    rows = await cluster.database.rows(
        "SELECT station_id, value FROM meter_values WHERE station_id = ANY($1)", ids
    )
    missing = set(acknowledged) - {(r["station_id"], r["value"]) for r in rows}
    assert not missing, sorted(missing)[:10]


async def test_redis_stopped_and_started_under_load(cluster: Cluster) -> None:
    """Last in this module: it takes Redis away from the whole cluster and brings it back."""
    assert cluster.haproxy is not None and cluster.redis_server is not None
    ids = ["RD1", "RD2"]
    card = "RD-CARD"
    answered: Counter[str] = Counter()
    errors: list[str] = []

    async def load(station: ReconnectingStation) -> None:
        while True:  # a station busy talking, as under load
            try:
                await station.sim._request(call.Heartbeat())
                answered[station.station_id] += 1
            except Exception as exc:
                errors.append(f"{station.station_id}: {exc!r}")
            await asyncio.sleep(0.05)

    async with cluster.api_client() as api, stations(cluster.haproxy.ocpp_url, ids) as fleet:
        assert (await api.put("/api/tokens", json={"uid": card})).status_code in (200, 201)
        await by_gateway(cluster, ids)
        station = {s.station_id: s for s in fleet}
        loads = [asyncio.create_task(load(s)) for s in fleet]
        try:
            cluster.redis_server.stop()
            before = dict(answered)
            await until(
                lambda: all(answered[s] >= before.get(s, 0) + 10 for s in ids),
                30,
                "answers while Redis is away",
            )
            # a session begins and ends while Redis is away: committed, acknowledged
            assert await station["RD1"].sim.start_session(1, card) is not None
            await station["RD1"].sim.stop_session(1)
            outage_session = await cluster.database.value("SELECT id FROM sessions WHERE station_id = 'RD1'")
            assert outage_session is not None
            # a command the API process must route to a gateway: a clear 503
            response = await api.post(
                "/api/stations/RD2/remote-start", json={"token_uid": card, "evse_number": 1}
            )
            assert response.status_code == 503, response.text
            assert "cluster messaging unavailable" in response.text

            cluster.redis_server.start()  # the same port, empty (no persistence here)
            await by_gateway(cluster, ids, 30)  # the gateways claimed their stations again

            async def routed() -> httpx.Response | None:
                answer = await api.post(
                    "/api/stations/RD2/remote-start", json={"token_uid": card, "evse_number": 1}
                )
                return answer if answer.status_code != 503 else None

            response = await until(routed, 30, "remote start routed again after Redis returned")
            if response.status_code != 200 or response.json()["status"] != "Accepted":
                starts = await cluster.database.rows(
                    "SELECT id, answer, requested_at FROM remote_starts WHERE station_id = 'RD2' ORDER BY id"
                )
                frames = await cluster.database.rows(
                    "SELECT occurred_at, frame FROM ocpp_messages WHERE station_id = 'RD2' "
                    "AND action = 'RemoteStartTransaction' ORDER BY id"
                )
                raise AssertionError(f"{response.text}\nremote starts: {starts}\nframes: {frames}")
            session_id = await session_of_remote_start(api, response.json())
            await until(lambda: station["RD2"].sim.active_transactions(), 20, "RD2 charging")
            await station["RD2"].sim.stop_session(1)
        finally:
            for task in loads:
                task.cancel()
            await asyncio.gather(*loads, return_exceptions=True)
        assert errors == [], errors[:5]
        assert all(s.drops == 0 for s in fleet), "a station lost its connection"

    # the session of the outage got its CDR from its event, after Redis came back
    for sid in (outage_session, session_id):
        await until(
            lambda sid=sid: cluster.database.value(
                "SELECT count(*) = 1 FROM cdrs WHERE session_id = $1", sid
            ),
            30,
            f"the CDR of session {sid}",
        )
    # built by the CDR builder from the event, not picked up by the sweep that catches losses
    sweeps = [
        line for n in cluster.of_role("worker") for line in n.log().splitlines() if "cdr-sweep: " in line
    ]
    assert not [line for line in sweeps if " done" in line], sweeps
