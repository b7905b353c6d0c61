"""The processes of a cluster benchmark: Stekker nodes, Redis, HAProxy, a throw-away PostgreSQL
database and the load generators, each in its own process group so that everything is stopped
(SIGTERM, then SIGKILL) when the benchmark ends, fails or is interrupted with Ctrl-C."""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
STEKKER = str(Path(sys.executable).parent / "stekker")
HAPROXY = "/usr/sbin/haproxy"
REDIS = "redis-server"
HAPROXY_MAX_CONN = 9000  # each connection is two descriptors; the machine allows 20,000 per process


def free_port() -> int:
    """A currently unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 12) -> str:
    """The end of a log file."""
    try:
        with path.open(errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except OSError:
        return ""


class BenchError(RuntimeError):
    """A step of the benchmark could not be done (a process did not start, a wait ran out)."""


@dataclass
class Proc:
    """One started process and its log."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path
    argv: list[str]
    env: dict[str, str]
    http_port: int | None = None
    ocpp_port: int | None = None

    @property
    def alive(self) -> bool:
        """Not exited yet."""
        return self.proc.returncode is None

    def cpu_seconds(self) -> float:
        """User + system CPU of the process so far (0 once it is gone)."""
        try:
            t = psutil.Process(self.proc.pid).cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0


@dataclass
class Procs:
    """Every process the benchmark started; `stop_all` ends them all."""

    workdir: Path
    started: list[Proc] = field(default_factory=list)

    async def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        pipes: bool = False,
        http_port: int | None = None,
        ocpp_port: int | None = None,
    ) -> Proc:
        """Start a process in its own session (so its group can be signalled) with output to
        workdir/name.log, or with stdin/stdout pipes (stderr still to the log)."""
        log = self.workdir / f"{name}.log"
        handle = log.open("ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                cwd=self.workdir,
                stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipes else handle,
                stderr=handle,
                start_new_session=True,
                limit=2**26,  # the load generator's stats line carries every latency
            )
        finally:
            handle.close()
        p = Proc(name, proc, log, argv, dict(env or {}), http_port, ocpp_port)
        self.started.append(p)
        return p

    async def stop(self, p: Proc, sig: int = signal.SIGTERM, wait: float = 20.0) -> int | None:
        """Signal the process group, wait (bounded), then SIGKILL it; the exit code."""
        if p.alive:
            _signal_group(p.proc.pid, sig)
            try:
                await asyncio.wait_for(p.proc.wait(), wait)
            except TimeoutError:
                _signal_group(p.proc.pid, signal.SIGKILL)
                await asyncio.wait_for(p.proc.wait(), 10)
        else:
            _signal_group(p.proc.pid, signal.SIGKILL)  # children it may have left
        return p.proc.returncode

    def kill9(self, p: Proc) -> None:
        """SIGKILL the process (only it: that is what losing a machine looks like)."""
        try:
            os.kill(p.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    async def stop_all(self) -> None:
        """End every process still running, newest first."""
        for p in reversed(self.started):
            try:
                await self.stop(p, signal.SIGTERM, 10.0)
            except Exception:
                _signal_group(p.proc.pid, signal.SIGKILL)

    def kill_all_now(self) -> None:
        """Last resort (interpreter exit): SIGKILL every process group we started."""
        for p in self.started:
            if p.proc.returncode is None:
                _signal_group(p.proc.pid, signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class Database:
    """A throw-away PostgreSQL database for one scenario."""

    admin_dsn: str
    name: str = field(default_factory=lambda: f"stekker_cluster_{uuid.uuid4().hex[:8]}")
    pool: Any = None

    @property
    def dsn(self) -> str:
        """libpq URL of the database."""
        return self.admin_dsn.rsplit("/", 1)[0] + "/" + self.name

    @property
    def url(self) -> str:
        """STEKKER_DATABASE_URL for it."""
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def create(self) -> None:
        """CREATE DATABASE (dropped at interpreter exit too, should a second Ctrl-C skip `drop`)."""
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await conn.close()
        atexit.register(self.drop_now)

    def drop_now(self) -> None:
        """Drop the database with psql, synchronously (idempotent)."""
        sql = f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'
        subprocess.run(["psql", self.admin_dsn, "-qAtc", sql], capture_output=True, timeout=30, check=False)

    async def open_pool(self) -> None:
        """Connect the orchestrator (after the migration made the tables)."""
        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=2)

    async def drop(self) -> None:
        """Close the pool and drop the database, whoever is still connected."""
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """Rows of a query."""
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))


# --------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    """Starts Stekker nodes (one process, or roles), Redis and HAProxy for one scenario."""

    procs: Procs
    db: Database
    lease_seconds: float = 10.0
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redis_url: str | None = None
    nodes: dict[str, Proc] = field(default_factory=dict)
    haproxies: list[Proc] = field(default_factory=list)
    haproxy_ports: list[int] = field(default_factory=list)

    def env(self, node_id: str, http_port: int, ocpp_port: int, redis: bool) -> dict[str, str]:
        """The environment of one node (nothing STEKKER_* inherited from the caller's shell)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEKKER_")}
        env.update(
            STEKKER_DATABASE_URL=self.db.url,
            STEKKER_HOST="127.0.0.1",
            STEKKER_OCPP_PORT=str(ocpp_port),
            STEKKER_HTTP_PORT=str(http_port),
            STEKKER_UNKNOWN_STATIONS="accept",
            STEKKER_API_TOKEN=self.api_token,
            STEKKER_LOG_LEVEL="WARNING",
            STEKKER_NODE_ID=node_id,
            STEKKER_CLUSTER_LEASE_SECONDS=str(self.lease_seconds),
        )
        if redis and self.redis_url:
            env["STEKKER_REDIS_URL"] = self.redis_url
        return env

    async def migrate(self) -> None:
        """`stekker migrate` once, so that nodes starting together do not race on the schema."""
        env = self.env("migrate", free_port(), free_port(), redis=False)
        p = await self.procs.start("migrate", [STEKKER, "migrate"], env)
        code = await asyncio.wait_for(p.proc.wait(), 180)
        if code != 0:
            raise BenchError(f"stekker migrate failed ({code}): {tail(p.log)}")
        await self.db.open_pool()

    async def start_redis(self) -> str:
        """A private redis-server without persistence; its URL."""
        port = free_port()
        argv = [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--maxclients", "4000"]  # fmt: skip
        p = await self.procs.start("redis", argv)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"PING\r\n")
                await w.drain()
                answer = await asyncio.wait_for(r.readline(), 2)
                w.close()
                if answer.startswith(b"+PONG"):
                    self.redis_url = f"redis://127.0.0.1:{port}/0"
                    return self.redis_url
            except OSError:
                pass
            if not p.alive:
                raise BenchError(f"redis-server exited: {tail(p.log)}")
            await asyncio.sleep(0.1)
        raise BenchError("redis-server did not answer PING in 15 s")

    async def start_node(
        self, node_id: str, role: str | None, *, redis: bool = True, ports: tuple[int, int] | None = None
    ) -> Proc:
        """`stekker serve [--role ROLE]`, ready (GET /ready, else /health, answers 200)."""
        http_port, ocpp_port = ports or (free_port(), free_port())
        argv = [STEKKER, "serve"] + (["--role", role] if role else [])
        env = self.env(node_id, http_port, ocpp_port, redis)
        p = await self.procs.start(node_id, argv, env, http_port=http_port, ocpp_port=ocpp_port)
        self.nodes[node_id] = p
        await self.wait_ready(p)
        return p

    async def restart_node(self, node_id: str) -> Proc:
        """Start a node again with its id, role and ports (as a deploy does)."""
        old = self.nodes[node_id]
        assert old.http_port is not None and old.ocpp_port is not None
        p = await self.procs.start(
            node_id, old.argv, old.env, http_port=old.http_port, ocpp_port=old.ocpp_port
        )
        self.nodes[node_id] = p
        await self.wait_ready(p, limit=90)
        return p

    async def wait_ready(self, p: Proc, limit: float = 90.0) -> None:
        """Until the node answers 200 on /ready (or /health where there is no /ready yet)."""
        deadline = time.monotonic() + limit
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not p.alive:
                    raise BenchError(f"{p.name} exited with {p.proc.returncode}: {tail(p.log)}")
                for path in ("/ready", "/health"):
                    try:
                        r = await client.get(f"http://127.0.0.1:{p.http_port}{path}")
                    except httpx.HTTPError:
                        break
                    if r.status_code == 200:
                        return
                    if r.status_code != 404:
                        break
                await asyncio.sleep(0.2)
        raise BenchError(f"{p.name} not ready after {limit:.0f} s: {tail(p.log)}")

    async def health(self, node_id: str) -> dict[str, Any]:
        """The node's GET /health ({} when it does not answer)."""
        p = self.nodes[node_id]
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                r = await client.get(f"http://127.0.0.1:{p.http_port}/health")
            return dict(r.json()) if r.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}

    async def check_path(self, node_id: str) -> str:
        """/ready where the node has it (a draining gateway says 503 there), else /health."""
        p = self.nodes[node_id]
        async with httpx.AsyncClient(timeout=2.0) as client:
            r = await client.get(f"http://127.0.0.1:{p.http_port}/ready")
        return "/health" if r.status_code == 404 else "/ready"

    async def start_haproxy(self, gateways: list[str], balance: str, count: int = 1) -> list[str]:
        """`count` HAProxy processes (TCP, /ready checks, the deploy/ settings) in front of the
        gateways; the station URLs, one per process. Several processes only because each may
        hold 20,000 descriptors here (two per station)."""
        urls = []
        check = await self.check_path(gateways[0])
        for i in range(count):
            port = free_port()
            servers = []
            for g in gateways:
                p = self.nodes[g]
                servers.append(f"    server {g} 127.0.0.1:{p.ocpp_port} check port {p.http_port}")
            cfg = HAPROXY_CONFIG.format(port=port, balance=balance, maxconn=HAPROXY_MAX_CONN, check=check,
                                        servers="\n".join(servers))  # fmt: skip
            path = self.procs.workdir / f"haproxy{i}.cfg"
            path.write_text(cfg)
            p = await self.procs.start(f"haproxy{i}", [HAPROXY, "-db", "-f", str(path)])
            self.haproxies.append(p)
            self.haproxy_ports.append(port)
            urls.append(f"ws://127.0.0.1:{port}/ocpp/")
        for port, hp in zip(self.haproxy_ports, self.haproxies, strict=True):
            deadline = time.monotonic() + 15
            while True:
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                    w.close()
                    break
                except OSError:
                    if not hp.alive or time.monotonic() > deadline:
                        raise BenchError(f"haproxy did not start: {tail(hp.log)}") from None
                    await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # the first health checks mark the gateways up
        return urls


HAPROXY_CONFIG = """\
# written by bench/cluster.py: deploy/haproxy.cfg's station part, on loopback ports
global
    maxconn {maxconn}

defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    retries 3
    option redispatch 1
    default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2

frontend ocpp
    bind 127.0.0.1:{port}
    maxconn {maxconn}
    default_backend gateways

backend gateways
    balance {balance}
    option httpchk
    http-check send meth GET uri {check}
    http-check expect status 200
    default-server on-marked-down shutdown-sessions
{servers}
"""


# --------------------------------------------------------------------------- load generators


@dataclass
class Load:
    """One or more bench/cluster_load.py processes (each holds at most `per_process` stations)."""

    procs: Procs
    per_process: int = 9000
    parts: list[Proc] = field(default_factory=list)

    async def start(
        self, urls: list[str], stations: int, rate_total: float, *, prefix: str, ramp: int,
        extra: list[str] | None = None,
    ) -> None:  # fmt: skip
        """Start the stations; they connect and reconnect by themselves."""
        count = max(1, -(-stations // self.per_process))
        size = -(-stations // count)
        for i in range(count):
            first = i * size
            n = min(size, stations - first)
            argv = [sys.executable, str(BENCH_DIR / "cluster_load.py"), "--stations", str(n),
                    "--first", str(first), "--total-stations", str(stations), "--prefix", prefix,
                    "--rate-total", str(rate_total),
                    "--ramp-concurrency", str(max(1, ramp // count))]  # fmt: skip
            for u in urls:
                argv += ["--url", u]
            argv += extra or []
            p = await self.procs.start(f"load-{prefix}-{i}", argv, dict(os.environ), pipes=True)
            self.parts.append(p)

    async def ask(self, cmd: str, limit: float = 120.0, **args: Any) -> list[dict[str, Any]]:
        """Send a command to every part; their answers."""
        for p in self.parts:
            assert p.proc.stdin is not None
            p.proc.stdin.write(orjson.dumps({"cmd": cmd, **args}) + b"\n")
            await p.proc.stdin.drain()
        return list(await asyncio.wait_for(asyncio.gather(*(self._answer(p) for p in self.parts)), limit))

    @staticmethod
    async def _answer(p: Proc) -> dict[str, Any]:
        assert p.proc.stdout is not None
        line = await p.proc.stdout.readline()
        if not line:
            raise BenchError(f"load generator {p.name} exited: {tail(p.log)}")
        return dict(orjson.loads(line))

    async def status(self) -> dict[str, Any]:
        """online / ever_online / stations summed over the parts."""
        out: dict[str, Any] = {"online": 0, "ever_online": 0, "stations": 0, "queued_tx": 0}
        for a in await self.ask("status", 30):
            for k in out:
                out[k] += a[k]
        return out

    async def wait_online(self, count: int, limit: float, started: float | None = None) -> float | None:
        """Seconds (from `started`, default now) until `count` stations are online; None on timeout."""
        t0 = started if started is not None else time.monotonic()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if (await self.status())["online"] >= count:
                return time.monotonic() - t0
            await asyncio.sleep(0.2)
        return None

    async def stats(self) -> dict[str, Any]:
        """Counters summed and latencies merged over the parts."""
        merged: dict[str, Any] = {}
        for a in await self.ask("stats"):
            for k, v in a.items():
                if k == "reply":
                    continue
                if isinstance(v, list):
                    merged.setdefault(k, []).extend(v)
                elif isinstance(v, dict):
                    d = merged.setdefault(k, {})
                    for kk, vv in v.items():
                        d[kk] = d.get(kk, 0) + vv
                else:
                    merged[k] = merged.get(k, 0) + v
        return merged

    async def intervals(self) -> list[tuple[str, float, float | None]]:
        """Every offline interval of every station after its first boot."""
        out: list[tuple[str, float, float | None]] = []
        for a in await self.ask("intervals"):
            out.extend((sid, start, end) for sid, start, end in a["intervals"])
        return out

    async def quit(self) -> None:
        """Close every station and end the processes (bounded)."""
        for p in self.parts:
            if p.alive and p.proc.stdin is not None:
                try:
                    p.proc.stdin.write(b'{"cmd":"quit"}\n')
                    await p.proc.stdin.drain()
                except (ConnectionError, RuntimeError):
                    pass
        for p in self.parts:
            try:
                await asyncio.wait_for(p.proc.wait(), 30)
            except TimeoutError:
                await self.procs.stop(p, signal.SIGKILL)
        self.parts = []
