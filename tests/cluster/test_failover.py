"""Losing a process with `kill -9` (a crash, an OOM kill, a pulled plug), in a cluster of real
processes: a gateway's stations reconnect through HAProxy to the other gateway, what they queued
while offline is applied, and no session is lost or counted twice; the worker leading the work
that runs once is replaced by the other worker, and nothing is delivered twice or left behind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cluster.harness import (
    Cluster,
    Partner,
    assert_each_push_once,
    by_gateway,
    kill_9,
    register_partner,
    stations,
    stop,
    until,
)
from tests.test_ocpi_credentials import serving

pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("cluster-failover")]


@pytest.fixture(scope="module")
def cluster(empty_cluster: Cluster) -> Cluster:
    empty_cluster.start_topology(gateways=2, apis=1, workers=2)
    return empty_cluster


async def test_gateway_killed_mid_session_its_stations_move_and_nothing_is_lost(cluster: Cluster) -> None:
    assert cluster.haproxy is not None
    ids = ["GF1", "GF2", "GF3", "GF4"]
    cards = {sid: f"CARD-{sid}" for sid in ids}
    async with cluster.api_client() as api, stations(cluster.haproxy.ocpp_url, ids) as fleet:
        for card in cards.values():
            assert (await api.put("/api/tokens", json={"uid": card})).status_code in (200, 201)
        held = await by_gateway(cluster, ids)
        assert sorted(held) == ["gateway-1", "gateway-2"], held
        station = {s.station_id: s for s in fleet}
        transactions = {}
        for sid in ids:  # every station charging, on both gateways
            tx = await station[sid].sim.start_session(1, cards[sid])
            assert tx is not None, sid
            transactions[sid] = tx
        moved, stayed = held["gateway-1"], held["gateway-2"]

        queued_stops: dict[str, int] = {}
        # gateway-1 dies; its stations stay offline until the test lets them reconnect
        for sid in moved:
            station[sid].may_connect.clear()
        kill_9(cluster.node("gateway-1"))
        for sid in moved:
            await station[sid].offline(20)
            # the driver stops while the station is offline: the StopTransaction is queued
            await station[sid].sim.stop_session(1)
            assert len(station[sid].sim._offline_queue) == 1, sid
            queued_stops[sid] = int(station[sid].sim._offline_queue[0].meter_stop)
        for sid in moved:  # at once: HAProxy may not have noticed yet, a refused connect is redispatched
            station[sid].may_connect.set()

        # through HAProxy to the other gateway, which now holds every station
        for sid in moved:
            await station[sid].online(30)
        await until(lambda: all(not station[s].sim._offline_queue for s in moved), 30, "offline queues sent")
        await cluster.haproxy.wait_state(["gateway1"], "DOWN")  # its health check saw it die
        await until(
            lambda: set(cluster.owners().get(s) for s in ids) == {"gateway-2"}, 20, "all on gateway-2"
        )
        for sid in ids:
            shown = await until(
                lambda sid=sid: _online(api, sid), 20, f"{sid} shown online again by the API process"
            )
            assert shown
        assert all(station[s].drops == 0 for s in stayed), "a station of the live gateway was dropped"

        # one session per station: the moved ones ended by their queued stop, the others charging
        # (the message log is written behind the answers: wait for it)
        for sid in moved:
            await until(
                lambda sid=sid: cluster.database.value(
                    "SELECT count(*) = 1 FROM ocpp_messages WHERE station_id = $1 AND direction = 'in' "
                    "AND action = 'StopTransaction' AND message_type = 2",
                    sid,
                ),
                20,
                f"the queued StopTransaction of {sid} logged once",
            )
        for sid in ids:
            rows = await cluster.database.rows(
                "SELECT transaction_id, status, meter_stop_wh FROM sessions WHERE station_id = $1", sid
            )
            assert len(rows) == 1, (sid, rows)
            assert rows[0]["transaction_id"] == str(transactions[sid]), (sid, rows)
            if sid in moved:
                assert rows[0]["status"] == "completed", (sid, rows)
                assert rows[0]["meter_stop_wh"] == queued_stops[sid], (sid, rows, queued_stops)
            else:
                assert rows[0]["status"] == "active", (sid, rows)
        for sid in stayed:
            await station[sid].sim.stop_session(1)
        assert (
            len(await cluster.database.rows("SELECT id FROM sessions WHERE station_id = ANY($1)", ids)) == 4
        )


async def _online(api: Any, station_id: str) -> bool:
    response = await api.get(f"/api/stations/{station_id}")
    return response.status_code == 200 and response.json()["online"] is True


async def test_worker_leading_the_work_killed_another_takes_over_nothing_twice_nothing_left(
    cluster: Cluster,
) -> None:
    assert cluster.haproxy is not None
    live_gateways = [n for n in cluster.gateways if n.alive]
    assert live_gateways, "the previous test left no gateway"
    partner = Partner(fail_first=1)  # the first push is refused: a retry is due when the leader dies
    cards = [f"WF-CARD-{n}" for n in range(3)]
    ids = ["WF1", "WF2", "WF3"]
    async with serving(partner), cluster.api_client() as api:  # type: ignore[arg-type]
        await register_partner(cluster.database.url, partner, cards)
        leases = await until(lambda: cluster.leases().get("ocpi-outbox"), 20, "an outbox leader")
        leader = cluster.node(leases)
        survivor = next(n for n in cluster.of_role("worker") if n is not leader)
        async with stations(cluster.haproxy.ocpp_url, ids) as fleet:
            # a session before the kill: its pushes are queued (the first one refused)
            first = fleet[0].sim
            assert await first.start_session(1, cards[0]) is not None
            await first.stop_session(1)
            await until(lambda: partner.refused == 1, 20, "the first push refused")

            # a job for a station that is not connected yet: it waits in the job runner
            created = await api.post("/api/stations", json={"id": "WF-LATE", "authentication": "none"})
            assert created.status_code == 201, created.text
            response = await api.post(
                "/api/jobs",
                json={"function": "clear_cache", "selection": {"station_ids": ["WF-LATE"]}, "timeout": 10},
            )
            assert response.status_code == 201, response.text
            job_id = response.json()["id"]

            kill_9(leader)
            # the lease expires (3 s in these tests) and the other worker leads
            await until(
                lambda: cluster.leases().get("ocpi-outbox") == survivor.name, 30, "the outbox taken over"
            )

            # sessions after the kill: their CDRs built and pushed by the survivor
            for sim, card in zip([s.sim for s in fleet[1:]], cards[1:], strict=True):
                assert await sim.start_session(1, card) is not None
                await sim.stop_session(1)
            async with stations(cluster.haproxy.ocpp_url, ["WF-LATE"]):

                async def job_done() -> dict[str, Any] | None:
                    detail: dict[str, Any] = (await api.get(f"/api/jobs/{job_id}")).json()
                    return detail if detail["done"] == 1 else None

                detail = await until(job_done, 40, "the waiting job run by the surviving worker")
                assert detail["stations"][0]["state"] == "accepted", detail

            await until(lambda: len(partner.pushes("POST", "/cdrs")) >= 3, 40, "three CDRs pushed")
            await until(
                lambda: cluster.database.value(
                    "SELECT count(*) = 0 FROM ocpi_outbox WHERE status <> 'delivered'"
                ),
                40,
                "the outbox empty",
            )

    sessions = await cluster.database.rows(
        "SELECT id FROM sessions WHERE station_id = ANY($1) ORDER BY id", ["WF1", "WF2", "WF3"]
    )
    assert len(sessions) == 3, sessions
    await assert_each_push_once(cluster, partner, [r["id"] for r in sessions])
    await until(
        lambda: cluster.database.value(
            "SELECT count(*) = 1 FROM ocpp_messages WHERE station_id = 'WF-LATE' AND action = 'ClearCache' "
            "AND direction = 'out' AND message_type = 2"
        ),
        20,
        "one ClearCache sent to the late station",
    )
    assert survivor.alive


async def test_rolling_restart_of_both_gateways_loses_no_station_and_no_session(cluster: Cluster) -> None:
    """A deploy: SIGTERM one gateway, wait until it is back, then the other (deploy/README.md)."""
    assert cluster.haproxy is not None
    for name in ("gateway-1", "gateway-2"):  # a gateway an earlier test killed comes back first
        if not cluster.node(name).alive:
            await cluster.restart(cluster.node(name))
    await cluster.haproxy.wait_state(["gateway1", "gateway2"], "UP")
    ids = ["RR1", "RR2", "RR3", "RR4"]
    async with cluster.api_client() as api, stations(cluster.haproxy.ocpp_url, ids) as fleet:
        for sid in ids:
            assert (await api.put("/api/tokens", json={"uid": f"CARD-{sid}"})).status_code in (200, 201)
        for station in fleet:
            assert await station.sim.start_session(1, f"CARD-{station.station_id}") is not None
        mark = await cluster.database.value("SELECT coalesce(max(id), 0) FROM station_events")

        for name, other in (("gateway-1", "gateway-2"), ("gateway-2", "gateway-1")):
            node = cluster.node(name)
            assert await stop(node) == 0, node.tail()  # the orderly shutdown ends with 0
            # every station online again through HAProxy, all on the gateway that runs
            await until(
                lambda other=other: (
                    all(s.sim.is_online for s in fleet)
                    and set(cluster.owners().get(sid) for sid in ids) == {other}
                ),
                30,
                f"every station on {other} while {name} restarts",
            )
            await cluster.restart(node)
            await cluster.haproxy.wait_state(["gateway1", "gateway2"], "UP")

        for sid in ids:
            shown = (await api.get(f"/api/stations/{sid}")).json()
            assert shown["online"] is True, shown
        # the sessions went on through both restarts: still one each, still charging
        rows = await cluster.database.rows(
            "SELECT station_id, status FROM sessions WHERE station_id = ANY($1) ORDER BY station_id", ids
        )
        assert [(r["station_id"], r["status"]) for r in rows] == [(sid, "active") for sid in ids], rows
        # each restart is a disconnect the timeline names as such, never a crash or a timeout
        # (read before the test's own stations leave)
        causes = await cluster.database.rows(
            "SELECT station_id, occurred_at, detail FROM station_events "
            "WHERE id > $1 AND kind = 'disconnected' AND station_id = ANY($2) ORDER BY id",
            mark,
            ids,
        )
        details = [
            {"station": r["station_id"], "at": str(r["occurred_at"])}
            | (r["detail"] if isinstance(r["detail"], dict) else json.loads(r["detail"]))
            for r in causes
        ]
        assert details, "no disconnect recorded"
        assert [d for d in details if d.get("cause") != "server_shutdown"] == [], details
        for station in fleet:
            await station.sim.stop_session(1)
        await until(
            lambda: cluster.database.value(
                "SELECT count(*) = 4 FROM sessions WHERE station_id = ANY($1) AND status = 'completed'", ids
            ),
            20,
            "every session completed",
        )
