"""The cluster measured (issue 18): a remote command's round trip across processes, the failover of a
killed gateway, and a rolling restart, each against a baseline in the same run.

    .venv/bin/python bench/cluster.py --scenario commands            # 2 gateways + api, 2,000 stations
    .venv/bin/python bench/cluster.py --scenario failover --stations 2000
    .venv/bin/python bench/cluster.py --scenario rolling
    .venv/bin/python bench/cluster.py --scenario all --stations 200  # smoke run

Everything runs on loopback: a private redis-server, HAProxy (TCP) in front of the gateways, a
throw-away PostgreSQL database on --postgres-admin-url (dropped after), `stekker serve --role ...`
processes and bench/cluster_load.py stations that reconnect by themselves with jittered backoff.
Every process is stopped at the end, on failure and on Ctrl-C. Scenarios (see bench/README.md):

1. commands: the cluster (gateway A, gateway B, one api,worker process) holds N stations (half on
   each gateway) under a background of --rate msg/s; M remote commands (POST
   /api/stations/{id}/functions/get_local_list_version: the API process asks the station through
   Redis and the gateway holding it) timed at p50/p99. Baseline: one `stekker serve` (every role,
   same PostgreSQL, no Redis), same stations, same load, same commands.
2. failover: K stations on gateway A behind HAProxy (`balance first`: all on A), transactions
   running on some; `kill -9` of A; time until every station is online again (counted by the
   stations and in the database), sessions lost or duplicated (counted in the database after
   the stations stop their transactions). Baseline: the same K known stations connecting to a
   freshly started single process.
3. rolling: N stations over both gateways (HAProxy leastconn) under load, remote commands at
   --command-rate; SIGTERM gateway A, start it again, wait until it is ready and every station is
   back, then B. Reported: stations offline at most at once, for how long, messages and commands
   not answered. Baseline: the same restart of one single process.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import random
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_procs import BenchError, Cluster, Database, Load, Procs
from run import machine_info

COMMAND = "get_local_list_version"  # reads only: no audit entry, the station answers at once
ID_TAG = "BENCHTAG"


# --------------------------------------------------------------------------- small helpers


def pct(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(fraction * len(s) + 0.5) - 1))]


def f(value: float | int | None, digits: int = 1) -> str:
    """A table cell."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def say(text: str) -> None:
    """Progress on stdout."""
    print(f"[cluster {time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass
class CommandResults:
    """Remote commands sent through the API: latency and outcome of each."""

    latencies_ms: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    samples: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, outcome)

    def add(self, outcome: str, ms: float | None) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.samples.append((time.monotonic(), outcome))
        if ms is not None and outcome == "200":
            self.latencies_ms.append(ms)

    def text(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items()))


async def one_command(client: httpx.AsyncClient, station_id: str, out: CommandResults) -> None:
    """POST the function; the outcome is the HTTP status (or the transport error's name)."""
    started = time.perf_counter()
    try:
        r = await client.post(f"/api/stations/{station_id}/functions/{COMMAND}", json={"args": {}})
        outcome = str(r.status_code)
    except httpx.HTTPError as exc:
        outcome = type(exc).__name__
    out.add(outcome, (time.perf_counter() - started) * 1000.0)


def api_client(cluster: Cluster, node_id: str) -> httpx.AsyncClient:
    """An httpx client for a node's API, authenticated with the bootstrap token."""
    port = cluster.nodes[node_id].http_port
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {cluster.api_token}"},
        timeout=httpx.Timeout(35.0, connect=5.0),
        limits=httpx.Limits(max_connections=64),
    )


async def run_commands(
    client: httpx.AsyncClient, station_ids: list[str], count: int, concurrency: int
) -> CommandResults:
    """`count` commands, `concurrency` at a time, over the stations in turn."""
    out = CommandResults()
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await one_command(client, station_ids[i % len(station_ids)], out)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


async def commands_at_rate(
    client: httpx.AsyncClient, station_ids: list[str], rate: float, stop: asyncio.Event, out: CommandResults
) -> None:
    """Commands to random stations at `rate` per second until `stop` (each with its own task, so a
    slow one does not hold the next)."""
    rng = random.Random(7)
    tasks: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        t = asyncio.create_task(one_command(client, rng.choice(station_ids), out))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        try:
            await asyncio.wait_for(stop.wait(), 1.0 / rate)
        except TimeoutError:
            pass
    if tasks:
        await asyncio.wait(tasks, timeout=40)


async def create_token(client: httpx.AsyncClient) -> None:
    """The card the benchmark's transactions start with (valid, may charge at many stations)."""
    r = await client.put("/api/tokens", json={"uid": ID_TAG, "allow_concurrent": True})
    if r.status_code >= 300:
        raise BenchError(f"PUT /api/tokens: {r.status_code} {r.text[:200]}")


def backoff_args(args: argparse.Namespace) -> list[str]:
    """The stations' reconnect backoff, for cluster_load.py."""
    return ["--backoff-base", str(args.backoff_base), "--backoff-jitter", str(args.backoff_jitter)]


def station_ids(prefix: str, n: int) -> list[str]:
    """The ids cluster_load.py gives its stations."""
    return [f"{prefix}{i:06d}" for i in range(n)]


async def db_online(db: Database, ids: list[str]) -> int:
    """Stations of `ids` the database shows online."""
    rows = await db.fetch("SELECT count(*) FROM charging_stations WHERE online AND id = ANY($1)", ids)
    return int(rows[0][0])


async def db_connected_at(db: Database, ids: list[str]) -> dict[str, Any]:
    """Each station's last connect time as stored."""
    rows = await db.fetch("SELECT id, connected_at FROM charging_stations WHERE id = ANY($1)", ids)
    return {r[0]: r[1] for r in rows}


async def db_reconnected(db: Database, before: dict[str, Any]) -> int:
    """Stations online with a connect time newer than in `before` (they came back after it)."""
    rows = await db.fetch(
        "SELECT id, connected_at FROM charging_stations WHERE online AND id = ANY($1)", list(before)
    )
    return sum(1 for sid, at in rows if at is not None and (before.get(sid) is None or at > before[sid]))


async def last_session_id(db: Database) -> int:
    """The newest session's id: what a phase's check counts from (an earlier phase left its own)."""
    rows = await db.fetch("SELECT coalesce(max(id), 0) FROM sessions")
    return int(rows[0][0])


async def sessions_check(
    db: Database, started: dict[str, int], after_id: int, stops: list[dict[str, Any]]
) -> dict[str, int]:
    """For the stations that started a transaction (sessions newer than `after_id`): sessions lost
    (none, or not stopped), duplicated (more than one), and stopped with another meter reading
    than the station's StopTransaction carried."""
    ids = list(started)
    meter_stop = {sid: wh for a in stops for sid, wh in a.get("meter_stop", {}).items()}
    ends = await db.fetch(
        "SELECT station_id, meter_stop_wh FROM sessions WHERE station_id = ANY($1) AND id > $2", ids, after_id
    )
    wrong = sum(1 for sid, wh in ends if sid in meter_stop and wh != meter_stop[sid])
    rows = await db.fetch(
        "SELECT station_id, count(*), count(*) FILTER (WHERE stop_time IS NOT NULL) "
        "FROM sessions WHERE station_id = ANY($1) AND id > $2 GROUP BY station_id",
        ids,
        after_id,
    )
    by_station = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    lost = sum(1 for sid in ids if by_station.get(sid, (0, 0))[0] == 0)
    not_stopped = sum(1 for sid in ids if by_station.get(sid, (0, 0))[0] >= 1 and by_station[sid][1] == 0)
    duplicated = sum(1 for sid in ids if by_station.get(sid, (0, 0))[0] > 1)
    return {
        "started": len(ids),
        "lost": lost,
        "not_stopped": not_stopped,
        "duplicated": duplicated,
        "wrong_meter_stop": wrong,
    }


def offline_summary(
    intervals: list[tuple[str, float, float | None]], t_from: float, t_to: float
) -> dict[str, Any]:
    """From the stations' offline intervals that began in [t_from, t_to]: most offline at once,
    how long any station was offline (first down to last back), per-station durations."""
    chosen = [(sid, s, e) for sid, s, e in intervals if t_from <= s <= t_to]
    if not chosen:
        return {"stations": 0, "max_at_once": 0, "window_s": 0.0, "p50_s": None, "max_s": None, "still": 0}
    events: list[tuple[float, int]] = []
    durations = []
    still = 0
    for _, s, e in chosen:
        end = e if e is not None else t_to
        if e is None:
            still += 1
        events += [(s, 1), (end, -1)]
        durations.append(end - s)
    events.sort(key=lambda x: (x[0], x[1]))
    now = peak = 0
    for _, d in events:
        now += d
        peak = max(peak, now)
    first = min(s for _, s, _ in chosen)
    last = max(e if e is not None else t_to for _, _, e in chosen)
    return {
        "stations": len({sid for sid, _, _ in chosen}),
        "max_at_once": peak,
        "window_s": last - first,
        "p50_s": pct(durations, 0.5),
        "max_s": max(durations),
        "still": still,
    }


# --------------------------------------------------------------------------- report


@dataclass
class Report:
    """What a scenario prints and returns: the command, the machine, a table, notes."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.header))) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def machine_lines() -> str:
    m = machine_info()
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, {m['python']}, {m['os']}; "
        f"{m['date']}; git {m['git commit']}"
    )


# --------------------------------------------------------------------------- scenario 1


async def onboard(cluster: Cluster, procs: Procs, args: argparse.Namespace, n: int, prefix: str) -> None:
    """Register the stations once (first boot, configuration report) in a single process, so the
    measured runs see known stations on both sides."""
    single = await cluster.start_node("onboard", None, redis=False)
    load = Load(procs, args.stations_per_process)
    await load.start([f"ws://127.0.0.1:{single.ocpp_port}/ocpp/"], n, 0.0, prefix=prefix, ramp=args.ramp)
    took = await load.wait_online(n, args.connect_limit)
    say(f"onboarded {n} stations in {f(took)} s (first boot)")
    if took is None:
        raise BenchError(f"onboarding: not all {n} stations came online in {args.connect_limit:.0f} s")
    async with api_client(cluster, "onboard") as client:
        await create_token(client)
    await asyncio.sleep(args.settle)
    await load.quit()
    await procs.stop(cluster.nodes.pop("onboard"), signal.SIGTERM)


async def measure_commands(
    cluster: Cluster, procs: Procs, args: argparse.Namespace, urls: list[str], api_node: str, label: str
) -> list[str]:
    """Connect the stations to `urls`, settle, then time the commands under the background load."""
    n = args.stations
    load = Load(procs, args.stations_per_process)
    await load.start(urls, n, args.rate, prefix=args.prefix, ramp=args.ramp)
    took = await load.wait_online(n, args.connect_limit)
    say(f"{label}: {n} stations online in {f(took)} s")
    if took is None:
        status = await load.status()
        await load.quit()
        return [label, f(n), f(status["online"]), "FAILED: not all online", *["-"] * 6]
    await asyncio.sleep(args.settle)
    held = {g: (await cluster.health(g)).get("stations_connected") for g in cluster.nodes}
    say(f"{label}: stations held per process (GET /health): {held}")
    await load.ask("reset")
    t_reset = time.monotonic()
    ids = station_ids(args.prefix, n)
    # the stations alternate over the URLs (gateways): consecutive ids hit both
    targets = ids[:: max(1, n // max(1, args.commands))] or ids
    cpu0 = {name: p.cpu_seconds() for name, p in cluster.nodes.items() if p.alive}
    t0 = time.monotonic()
    async with api_client(cluster, api_node) as client:
        res = await run_commands(client, targets, args.commands, args.command_concurrency)
    seconds = time.monotonic() - t0
    cpu = {
        name: 100.0 * (p.cpu_seconds() - cpu0[name]) / seconds
        for name, p in cluster.nodes.items()
        if name in cpu0 and p.alive
    }
    bg = await load.stats()
    bg_rate = bg["answered"] / (time.monotonic() - t_reset)
    await load.quit()
    lat = res.latencies_ms
    say(f"{label}: commands {res.text()}; p50 {f(pct(lat, 0.5))} p99 {f(pct(lat, 0.99))} ms")
    return [
        label,
        f(n),
        f(n),
        res.text(),
        f(pct(lat, 0.5)),
        f(pct(lat, 0.99)),
        f(max(lat) if lat else None),
        f(bg_rate, 0),
        f(pct(bg["latencies_ms"], 0.99)),
        ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()),
    ]


async def scenario_commands(procs: Procs, args: argparse.Namespace) -> Report:
    """Scenario 1 (see the module docstring)."""
    report = Report(
        f"Remote command round trip, {args.stations:,} stations, background {args.rate:g} msg/s, "
        f"{args.commands} commands {args.command_concurrency} at a time",
        ["setup", "stations", "online", "commands (HTTP status: count)", "p50 ms", "p99 ms", "max ms",
         "background msg/s", "background p99 ms", "CPU % per process (of one core)"],
    )  # fmt: skip
    db = Database(args.postgres_admin_url)
    await db.create()
    try:
        cluster = Cluster(procs, db, lease_seconds=args.lease_seconds)
        await cluster.migrate()
        await onboard(cluster, procs, args, args.stations, args.prefix)
        # baseline: one process, every role, no Redis, same database and stations
        single = await cluster.start_node("single", None, redis=False)
        url = f"ws://127.0.0.1:{single.ocpp_port}/ocpp/"
        report.rows.append(
            await measure_commands(cluster, procs, args, [url], "single", "one process (baseline)")
        )
        await procs.stop(single, signal.SIGTERM)
        del cluster.nodes["single"]
        # the cluster
        await cluster.start_redis()
        gw_a = await cluster.start_node("gw-a", "gateway")
        gw_b = await cluster.start_node("gw-b", "gateway")
        await cluster.start_node("api-1", "api,worker")
        urls = [f"ws://127.0.0.1:{gw_a.ocpp_port}/ocpp/", f"ws://127.0.0.1:{gw_b.ocpp_port}/ocpp/"]
        report.rows.append(
            await measure_commands(cluster, procs, args, urls, "api-1", "cluster: 2 gateways + api,worker")
        )
    finally:
        await procs.stop_all()
        await db.drop()
    report.notes.append(
        f"command: POST /api/stations/{{id}}/functions/{COMMAND} (GetLocalListVersion), from the API "
        "process; in the cluster each station's gateway is another process, reached through Redis"
    )
    return report


# --------------------------------------------------------------------------- scenario 2


async def scenario_failover(procs: Procs, args: argparse.Namespace) -> Report:
    """Scenario 2 (see the module docstring)."""
    k = args.stations
    report = Report(
        f"Failover: kill -9 of the gateway holding {k:,} stations (background {args.rate:g} msg/s, "
        f"{args.transactions} transactions running)",
        ["setup", "stations", "all online again (stations) s", "all online again (database) s",
         "offline at most at once", "offline per station p50 / max s",
         "sessions lost / not stopped / duplicated",
         "transaction messages retransmitted / given up"],
    )  # fmt: skip
    db = Database(args.postgres_admin_url)
    await db.create()
    ids = station_ids(args.prefix, k)
    try:
        cluster = Cluster(procs, db, lease_seconds=args.lease_seconds)
        await cluster.migrate()
        await onboard(cluster, procs, args, k, args.prefix)

        # baseline: the same known stations connect to a freshly started single process
        single = await cluster.start_node("single", None, redis=False)
        load = Load(procs, args.stations_per_process)
        t0 = time.monotonic()
        await load.start([f"ws://127.0.0.1:{single.ocpp_port}/ocpp/"], k, args.rate, prefix=args.prefix,
                         ramp=args.ramp)  # fmt: skip
        took = await load.wait_online(k, args.connect_limit, t0)
        db_took = None
        while db_took is None and time.monotonic() - t0 < args.connect_limit:
            if await db_online(db, ids) >= k:
                db_took = time.monotonic() - t0
            else:
                await asyncio.sleep(0.2)
        say(f"baseline: {k} stations online in {f(took)} s (database {f(db_took)} s)")
        report.rows.append(["fresh single process (baseline)", f(k), f(took), f(db_took), "-", "-", "-", "-"])
        bst = await load.stats()
        report.notes.append(
            f"baseline: boot after the WebSocket opened p50 {f(pct(bst['boot_ms'], 0.5))} / p99 "
            f"{f(pct(bst['boot_ms'], 0.99))} ms, failed connect attempts {bst['connect_failures']}"
        )
        await load.quit()
        await procs.stop(single, signal.SIGTERM)
        del cluster.nodes["single"]

        # the cluster: every station on gateway A (HAProxy `balance first`), B idle beside it
        await cluster.start_redis()
        await cluster.start_node("gw-a", "gateway")
        await cluster.start_node("gw-b", "gateway")
        await cluster.start_node("api-1", "api,worker")
        hap_count = max(1, -(-k // args.stations_per_haproxy))
        urls = await cluster.start_haproxy(["gw-a", "gw-b"], "first", hap_count)
        load = Load(procs, args.stations_per_process)
        await load.start(urls, k, args.rate, prefix=args.prefix, ramp=args.ramp, extra=backoff_args(args))
        took = await load.wait_online(k, args.connect_limit)
        if took is None:
            raise BenchError(f"cluster: not all {k} stations online: {await load.status()}")
        held = {g: (await cluster.health(g)).get("stations_connected") for g in ("gw-a", "gw-b")}
        say(f"cluster: {k} online in {f(took)} s; held per gateway {held}")
        first_session = await last_session_id(db)
        tx = await load.ask("tx_start", 300, count=-(-args.transactions // len(load.parts)), id_tag=ID_TAG)
        started = {sid: t for a in tx for sid, t in a["transactions"].items()}
        say(f"transactions started: {len(started)} (failed {sum(a['failed'] for a in tx)})")
        await asyncio.sleep(3)  # some metered values of the running sessions
        await load.ask("reset")
        before = await db_connected_at(db, ids)

        t_kill = time.monotonic()
        procs.kill9(cluster.nodes["gw-a"])
        say("kill -9 gw-a")
        back = db_back = None
        deadline = t_kill + args.failover_limit
        while time.monotonic() < deadline and (back is None or db_back is None):
            st = await load.status()
            if back is None and st["online"] >= k and time.monotonic() - t_kill > 0.5:
                back = time.monotonic() - t_kill
            if db_back is None and await db_reconnected(db, before) >= k:
                db_back = time.monotonic() - t_kill
            await asyncio.sleep(0.25)
        t_end = time.monotonic()
        say(f"all back: stations {f(back)} s, database {f(db_back)} s")
        # a killed owner's lease expires after this: nothing may turn offline then
        await asyncio.sleep(args.lease_seconds * 2 + 2)
        online_after_lease = await db_online(db, ids)
        api_sample = ids[:: max(1, k // 50)]
        async with api_client(cluster, "api-1") as client:
            api_online = 0
            for sid in api_sample:
                r = await client.get(f"/api/stations/{sid}")
                api_online += r.status_code == 200 and r.json().get("online") is True
        held_after = (await cluster.health("gw-b")).get("stations_connected")
        stop = await load.ask("tx_stop", 300, timeout=120)
        await asyncio.sleep(2)
        sessions = await sessions_check(db, started, first_session, stop)
        intervals = await load.intervals()
        off = offline_summary(intervals, t_kill, t_end)
        st = await load.stats()
        await load.quit()
        report.rows.append(
            [
                "cluster: kill -9 gateway A, HAProxy sends the stations to B",
                f(k),
                f(back),
                f(db_back),
                f(off["max_at_once"]),
                f"{f(off['p50_s'])} / {f(off['max_s'])}",
                f"{sessions['lost']} / {sessions['not_stopped']} / {sessions['duplicated']} "
                f"of {sessions['started']}",
                f"{st['retransmitted']} / {st['tx_given_up']}",
            ]
        )
        report.notes += [
            f"before the kill: stations held per gateway (GET /health) {held}; "
            f"after: gw-b holds {held_after}",
            f"{args.lease_seconds * 2 + 2:.0f} s after the kill (the dead owner's leases expired): "
            f"{online_after_lease:,} of {k:,} online in the database; GET /api/stations/{{id}} on the API "
            f"process: {api_online} of a sample of {len(api_sample)} online",
            f"sessions whose stored meter stop differs from the station's: {sessions['wrong_meter_stop']}",
            f"StopTransaction answered {sum(a['stopped'] for a in stop)}, "
            f"failed {sum(a['failed'] for a in stop)}; "
            f"CALLs interrupted by the kill {st['interrupted']} (of which transaction messages "
            f"{st['interrupted_tx']}, sent again), timeouts {st['timeouts']}, CALLERRORs {st['call_errors']}",
            f"station connects after the kill {st['connects']}, failed attempts {st['connect_failures']} "
            "(refused, or the boot not answered: each retried after the backoff); boot after the "
            f"WebSocket opened (BootNotification + 3 StatusNotification) p50 {f(pct(st['boot_ms'], 0.5))} "
            f"/ p99 {f(pct(st['boot_ms'], 0.99))} ms",
            f"reconnect backoff: {args.backoff_base:g} s x 2^attempt (cap 30 s) "
            f"+ 0..{args.backoff_jitter:g} s "
            "random; the baseline connects at once",
        ]
    finally:
        await procs.stop_all()
        await db.drop()
    return report


# --------------------------------------------------------------------------- scenario 3


async def restart_phase(
    cluster: Cluster, load: Load, nodes: list[str], args: argparse.Namespace, n: int
) -> list[dict[str, Any]]:
    """SIGTERM each node in turn, start it again, wait until ready and every station is back."""
    steps = []
    for node in nodes:
        t0 = time.monotonic()
        code = await cluster.procs.stop(cluster.nodes[node], signal.SIGTERM, 30)
        t_exit = time.monotonic() - t0
        await cluster.restart_node(node)
        t_ready = time.monotonic() - t0
        all_back = await load.wait_online(n, args.failover_limit, t0)
        say(
            f"restart {node}: exit {code} after {t_exit:.1f} s, ready {t_ready:.1f} s, "
            f"all back {f(all_back)} s"
        )
        steps.append(
            {
                "node": node,
                "exit": code,
                "exit_s": t_exit,
                "ready_s": t_ready,
                "all_back_s": all_back,
                "t0": t0,
                "t1": time.monotonic(),
            }
        )
        await asyncio.sleep(args.settle)
    return steps


async def rolling_run(
    cluster: Cluster, procs: Procs, args: argparse.Namespace, urls: list[str], api_node: str,
    restart: list[str], label: str,
) -> list[str]:  # fmt: skip
    """Stations on `urls` under load and commands; restart `restart` one after the other."""
    n = args.stations
    load = Load(procs, args.stations_per_process)
    await load.start(urls, n, args.rate, prefix=args.prefix, ramp=args.ramp, extra=backoff_args(args))
    if await load.wait_online(n, args.connect_limit) is None:
        raise BenchError(f"{label}: not all {n} stations online: {await load.status()}")
    first_session = await last_session_id(cluster.db)
    tx = await load.ask("tx_start", 300, count=-(-args.transactions // len(load.parts)), id_tag=ID_TAG)
    started = {sid: t for a in tx for sid, t in a["transactions"].items()}
    held = {g: (await cluster.health(g)).get("stations_connected") for g in restart}
    say(f"{label}: all online, {len(started)} transactions; stations per node {held}")
    await asyncio.sleep(2)
    await load.ask("reset")
    ids = station_ids(args.prefix, n)
    stop = asyncio.Event()
    commands = CommandResults()
    client = api_client(cluster, api_node)
    t0 = time.monotonic()
    sender = asyncio.create_task(commands_at_rate(client, ids, args.command_rate, stop, commands))
    try:
        steps = await restart_phase(cluster, load, restart, args, n)
    finally:
        stop.set()
        await sender
        await client.aclose()
    t1 = time.monotonic()
    await asyncio.sleep(args.lease_seconds + 2)  # a lease of the stopped process expires: nothing changes
    db_online_end = await db_online(cluster.db, ids)
    stop_tx = await load.ask("tx_stop", 300, timeout=120)
    await asyncio.sleep(2)
    sessions = await sessions_check(cluster.db, started, first_session, stop_tx)
    intervals = await load.intervals()
    off = offline_summary(intervals, t0, t1)
    per_step = [offline_summary(intervals, s["t0"], s["t1"])["max_at_once"] for s in steps]
    step_peaks = ", ".join(f"{s['node']}: {m}" for s, m in zip(steps, per_step, strict=True))
    st = await load.stats()
    await load.quit()
    not_answered = st["timeouts"] + st["call_errors"] + st["interrupted"]
    return [
        label,
        f(n),
        f(off["max_at_once"]) + (f" ({step_peaks})" if len(restart) > 1 else ""),
        f(off["window_s"]),
        f"{f(off['p50_s'])} / {f(off['max_s'])}",
        f"{st['answered']:,} / {not_answered} ({st['interrupted']} interrupted, {st['timeouts']} timeouts, "
        f"{st['call_errors']} errors); tx given up {st['tx_given_up']}",
        commands.text(),
        f"{sessions['lost']} / {sessions['duplicated']} of {sessions['started']}"
        + (f", meter stop wrong {sessions['wrong_meter_stop']}" if sessions["wrong_meter_stop"] else ""),
        "; ".join(f"{s['node']} exit {s['exit']} in {s['exit_s']:.1f} s, ready {s['ready_s']:.1f} s, "
                  f"all back {f(s['all_back_s'])} s" for s in steps)
        + f"; StopTransaction failed {sum(a['failed'] for a in stop_tx)}; online in the database "
        f"{args.lease_seconds + 2:.0f} s later: {db_online_end:,} of {n:,}",
    ]  # fmt: skip


async def scenario_rolling(procs: Procs, args: argparse.Namespace) -> Report:
    """Scenario 3 (see the module docstring)."""
    n = args.stations
    report = Report(
        f"Rolling restart under load: {n:,} stations, background {args.rate:g} msg/s, remote commands "
        f"{args.command_rate:g}/s, {args.transactions} transactions running",
        ["setup", "stations", "offline at most at once", "window with any offline s",
         "offline per station p50 / max s", "station CALLs answered / not (why)",
         "commands (HTTP status: count)",
         "sessions lost / duplicated", "steps"],
    )  # fmt: skip
    db = Database(args.postgres_admin_url)
    await db.create()
    try:
        cluster = Cluster(procs, db, lease_seconds=args.lease_seconds)
        await cluster.migrate()
        await onboard(cluster, procs, args, n, args.prefix)
        single = await cluster.start_node("single", None, redis=False)
        row = await rolling_run(cluster, procs, args, [f"ws://127.0.0.1:{single.ocpp_port}/ocpp/"], "single",
                                ["single"], "restart of one process (baseline)")  # fmt: skip
        report.rows.append(row)
        await procs.stop(cluster.nodes.pop("single"), signal.SIGTERM)

        await cluster.start_redis()
        await cluster.start_node("gw-a", "gateway")
        await cluster.start_node("gw-b", "gateway")
        await cluster.start_node("api-1", "api,worker")
        urls = await cluster.start_haproxy(
            ["gw-a", "gw-b"], "leastconn", max(1, -(-n // args.stations_per_haproxy))
        )
        row = await rolling_run(cluster, procs, args, urls, "api-1", ["gw-a", "gw-b"],
                                "cluster: SIGTERM gw-a, start, then gw-b (HAProxy)")  # fmt: skip
        report.rows.append(row)
    finally:
        await procs.stop_all()
        await db.drop()
    report.notes.append(
        "commands: POST /api/stations/{id}/functions/get_local_list_version to random stations; "
        "409 = the station was offline at that moment, 504 = no answer in time, 503 = cluster "
        "messaging unavailable, ConnectError = the API process itself was down (baseline)"
    )
    return report


# --------------------------------------------------------------------------- main


SCENARIOS = {"commands": scenario_commands, "failover": scenario_failover, "rolling": scenario_rolling}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="commands")
    p.add_argument("--stations", type=int, default=2000, help="N (commands, rolling) or K (failover)")
    p.add_argument("--rate", type=float, default=1000.0, help="background messages/s of all stations")
    p.add_argument("--commands", type=int, default=500, help="scenario commands: how many")
    p.add_argument("--command-concurrency", type=int, default=4)
    p.add_argument("--command-rate", type=float, default=10.0, help="scenario rolling: commands/s")
    p.add_argument("--transactions", type=int, default=100, help="failover, rolling: sessions running")
    p.add_argument("--ramp", type=int, default=200, help="stations connecting/booting at a time")
    p.add_argument("--connect-limit", type=float, default=0.0, help="s for all to connect (0: N/20 + 60)")
    p.add_argument("--failover-limit", type=float, default=120.0, help="s for all to be back after a kill")
    p.add_argument("--settle", type=float, default=5.0, help="s of quiet after the stations connected")
    p.add_argument("--lease-seconds", type=float, default=10.0, help="STEKKER_CLUSTER_LEASE_SECONDS")
    p.add_argument("--backoff-base", type=float, default=0.5, help="stations' first reconnect wait, s")
    p.add_argument("--backoff-jitter", type=float, default=2.0, help="plus random 0..this, s")
    p.add_argument("--prefix", default="CL")
    # each process may hold 20,000 descriptors here: a station is one in a load generator, two in HAProxy
    p.add_argument("--stations-per-process", type=int, default=9000, help="per load generator process")
    p.add_argument("--stations-per-haproxy", type=int, default=8000, help="per HAProxy process")
    p.add_argument("--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--keep-logs", action="store_true", help="keep the processes' logs (path printed)")
    a = p.parse_args(argv)
    if a.stations < 2 or a.commands < 1 or a.rate < 0:
        p.error("--stations >= 2, --commands >= 1, --rate >= 0")
    if not a.connect_limit:
        a.connect_limit = a.stations / 20.0 + 60.0
    return a


async def main_async(args: argparse.Namespace, workdir: Path) -> list[Report]:
    procs = Procs(workdir)
    atexit.register(procs.kill_all_now)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    reports = []
    try:
        for name in names:
            say(f"scenario {name}")
            try:
                reports.append(await SCENARIOS[name](procs, args))
            except BenchError as exc:
                say(f"scenario {name} FAILED: {exc}")
                r = Report(f"{name}: FAILED", ["why"], [[str(exc).replace("\n", " ")[:2000]]])
                reports.append(r)
            print(reports[-1].markdown(), flush=True)
    finally:
        await procs.stop_all()
    return reports


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # SIGTERM/SIGHUP end the run as Ctrl-C does: the finally blocks stop every process
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    command = " ".join(
        shlex.quote(x) for x in [".venv/bin/python", "bench/cluster.py", *(argv or sys.argv[1:])]
    )
    workdir = Path(tempfile.mkdtemp(prefix="stekker-cluster-bench-"))
    header = f"{machine_lines()}\nCommand: `{command}`"
    print(header, flush=True)
    try:
        reports = asyncio.run(main_async(args, workdir))
    except KeyboardInterrupt:
        print("interrupted: every process stopped", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if args.keep_logs:
            print(f"logs in {workdir}", flush=True)
        else:
            for log in workdir.glob("*"):
                log.unlink(missing_ok=True)
            workdir.rmdir()
    print("\n" + header + "\n")
    for r in reports:
        print(r.markdown() + "\n")


if __name__ == "__main__":
    main()
