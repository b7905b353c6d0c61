"""A Stekker cluster of real processes on loopback, for the cluster tests.

What it starts, each on free ports, and always tears down (kill, drop):
- a throw-away PostgreSQL database on the test server (`PG_ADMIN_URL`), migrated once with
  `stekker migrate` before any process serves (processes started together must not race on it);
- a private `redis-server` (tests/redis_server.py), which a test may stop and start;
- `stekker serve --role ...` processes (`Node`), each with its own environment, node id, HTTP
  port and (gateways) OCPP port, its output kept in a log file; ready when `/ready` says 200;
- HAProxy started from deploy/haproxy.cfg itself, the servers' names and ports replaced by the
  gateways' and API processes' loopback ports, so the tests exercise the configuration an
  operator copies.

Stations are `stekker.sim` stations (`ReconnectingStation`) connecting through HAProxy and
connecting again at once when their socket closes, as real stations do.

Every wait has a deadline: a broken feature fails a test, it never hangs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

from stekker.cluster.redis_link import Keys
from stekker.sim.station import SimulatedStation
from tests.conftest import PG_ADMIN_URL
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_HAPROXY = ROOT / "deploy" / "haproxy.cfg"
API_TOKEN = "cluster-test-admin-token"
#: Seconds a node's leases last in the tests (stations held, work led): a killed process's
#: stations and work are taken over after about this long.
LEASE_SECONDS = 3
#: How long a process may take to import, connect and say it is ready on a loaded CI machine.
READY_TIMEOUT = 120.0
LOG_TAIL = 8000
READY_PATH = "/ready"  # what HAProxy checks: database, Redis and listeners usable


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Database:
    """A PostgreSQL database of its own for one cluster, dropped at the end."""

    def __init__(self) -> None:
        self.name = f"stekker_cluster_{uuid.uuid4().hex[:8]}"
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        self.url = f"{base}/{self.name}"

    def create(self) -> None:
        asyncio.run(_admin(f'CREATE DATABASE "{self.name}"'))
        asyncio.run(_admin(f'ALTER DATABASE "{self.name}" SET synchronous_commit TO off'))

    def drop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def rows(self, query: str, *args: Any) -> list[Any]:
        """What a query returns, read directly from the database (the truth the tests count)."""
        conn = await asyncpg.connect(_plain(self.url))
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def value(self, query: str, *args: Any) -> Any:
        conn = await asyncpg.connect(_plain(self.url))
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()


def base_env() -> dict[str, str]:
    """The environment of a `stekker` process, without any STEKKER_* of the test run."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("STEKKER_")}
    env.update(
        STEKKER_HOST="127.0.0.1",
        STEKKER_UNKNOWN_STATIONS="accept",
        STEKKER_CONFIGURE_STATIONS_ON_BOOT="false",
        STEKKER_API_TOKEN=API_TOKEN,
        STEKKER_SHUTDOWN_TIMEOUT="10",
        STEKKER_CLUSTER_LEASE_SECONDS=str(LEASE_SECONDS),
        STEKKER_LOG_LEVEL="INFO",
        STEKKER_CALL_TIMEOUT="5",
        STEKKER_REMOTE_START_SESSION_WAIT="5",
        STEKKER_OCPI_ALLOW_PRIVATE_URLS="true",
        STEKKER_HEARTBEAT_INTERVAL="60",
        COLUMNS="200",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`stekker ARGS` to its end, as an operator types it."""
    return subprocess.run(
        [sys.executable, "-m", "stekker.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@dataclass
class Node:
    """One `stekker serve` process of the cluster."""

    name: str
    roles: str
    http_port: int
    ocpp_port: int | None
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def node_id(self) -> str:
        return self.env["STEKKER_NODE_ID"]

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, chars: int = LOG_TAIL) -> str:
        return self.log()[-chars:]


def kill_9(node: Node) -> None:
    """SIGKILL: what a crash, an OOM kill or a pulled plug looks like to everyone else."""
    if node.process is not None and node.process.poll() is None:
        node.process.kill()
        node.process.wait(10)


async def stop(node: Node, timeout: float = 30.0) -> int | None:
    """SIGTERM (systemd's stop) and wait for the orderly shutdown; SIGKILL when it overruns."""
    process = node.process
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 (a process, no event)
        await asyncio.sleep(0.05)  # the test's stations keep being served meanwhile
    if process.poll() is None:
        process.kill()
        process.wait(10)
        raise AssertionError(f"{node.name} did not stop within {timeout} s of SIGTERM:\n{node.tail()}")
    return process.returncode


class HAProxy:
    """HAProxy from deploy/haproxy.cfg, its listeners and servers moved to loopback ports."""

    def __init__(self, workdir: Path, gateways: list[Node], apis: list[Node]) -> None:
        binary = shutil.which("haproxy") or (
            "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
        )
        if binary is None:
            raise AssertionError("haproxy is needed (make test installs it: scripts/ensure-cluster-tools)")
        self.binary = binary
        self.workdir = workdir
        self.ocpp_port, self.http_port, self.stats_port = free_port(), free_port(), free_port()
        self.config_path = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        self.config_path.write_text(self.config(DEPLOY_HAPROXY.read_text(), gateways, apis))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config(self, text: str, gateways: list[Node], apis: list[Node]) -> str:
        """The operator's file, with only what must differ on a test machine changed."""
        text = text.replace("bind :8190", f"bind 127.0.0.1:{self.ocpp_port}")
        text = text.replace("bind :8191", f"bind 127.0.0.1:{self.http_port}")
        text = text.replace("bind 127.0.0.1:8404", f"bind 127.0.0.1:{self.stats_port}")
        text = re.sub(r"maxconn \d+", "maxconn 4096", text)  # no need to raise the fd limit here
        # quicker checks than in production, so the tests wait less for HAProxy to notice
        text = re.sub(
            r"default-server inter .*",
            "default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1",
            text,
        )
        servers: dict[str, tuple[int | None, int | None]] = {
            f"gateway{i + 1}": (n.ocpp_port, n.http_port) for i, n in enumerate(gateways)
        }
        servers |= {f"api{i + 1}": (n.http_port, None) for i, n in enumerate(apis)}
        lines = []
        for line in text.splitlines():
            found = re.match(r"(\s*)server (\S+) \S+(.*)$", line)
            if found is None:
                lines.append(line)
                continue
            indent, name, rest = found.groups()
            if name not in servers:
                continue  # the test's cluster has fewer processes than the example
            port, check_port = servers[name]
            if check_port is not None:
                rest = re.sub(r"check port \d+", f"check port {check_port}", rest)
            lines.append(f"{indent}server {name} 127.0.0.1:{port}{rest}")
        missing = set(servers) - {m for m in re.findall(r"server (\S+) 127", "\n".join(lines))}
        assert not missing, f"deploy/haproxy.cfg has no server line for {missing}"
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        check = subprocess.run(
            [self.binary, "-c", "-f", str(self.config_path)], capture_output=True, text=True
        )
        assert check.returncode == 0, f"haproxy -c refused the config:\n{check.stdout}{check.stderr}"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-f", str(self.config_path), "-db"], stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def servers(self) -> dict[str, str]:
        """Server name → HAProxy's state of it (UP, DOWN, ...), from its stats page."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.stats_port}/;csv", timeout=2).text
        except httpx.HTTPError:
            return {}
        rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
        return {r[1]: r[17] for r in rows if len(r) > 17 and r[1] not in ("FRONTEND", "BACKEND")}

    def wait_state_sync(self, names: Iterable[str], state: str = "UP", timeout: float = 30.0) -> None:
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while True:
            current = self.servers()
            if all(current.get(n, "").startswith(state) for n in wanted):
                return
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(
                    f"haproxy exited:\n{self.log_path.read_text(errors='replace')[-LOG_TAIL:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy servers {sorted(wanted)} not {state} in time: {current}")
            time.sleep(0.1)

    async def wait_state(self, names: Iterable[str], state: str = "UP", timeout: float = 30.0) -> None:
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while True:
            current = await asyncio.to_thread(self.servers)
            if all(current.get(n, "").startswith(state) for n in wanted):
                return
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(
                    f"haproxy exited:\n{self.log_path.read_text(errors='replace')[-LOG_TAIL:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy servers {sorted(wanted)} not {state} in time: {current}")
            await asyncio.sleep(0.1)


@dataclass
class Cluster:
    """Everything of one cluster test module; `close()` always ends every process."""

    workdir: Path
    database: Database = field(default_factory=Database)
    redis_server: RedisServer | None = None
    nodes: list[Node] = field(default_factory=list)
    haproxy: HAProxy | None = None
    _counter: int = 0

    # ---- set-up ---------------------------------------------------------------------------

    def start_backends(self) -> None:
        """PostgreSQL database and Redis, and the schema migrated once."""
        self.database.create()
        self.redis_server = RedisServer(self.workdir / "redis")
        self.redis_server.start()
        env = base_env() | {"STEKKER_DATABASE_URL": self.database.url}
        done = run_cli(["migrate"], env, self.workdir)
        assert done.returncode == 0, f"stekker migrate failed:\n{done.stdout}{done.stderr}"

    @property
    def redis_url(self) -> str:
        assert self.redis_server is not None
        return self.redis_server.url

    def node_env(self, name: str, http_port: int, ocpp_port: int | None, **extra: str) -> dict[str, str]:
        env = base_env() | {
            "STEKKER_DATABASE_URL": self.database.url,
            "STEKKER_REDIS_URL": self.redis_url,
            "STEKKER_NODE_ID": name,
            "STEKKER_HTTP_PORT": str(http_port),
            "STEKKER_FILES_DIR": str(self.workdir / "files"),
        }
        if ocpp_port is not None:
            env["STEKKER_OCPP_PORT"] = str(ocpp_port)
        env.update(extra)
        return env

    def spawn(
        self,
        roles: str,
        name: str | None = None,
        *,
        http_port: int | None = None,
        ocpp_port: int | None = None,
        env: dict[str, str] | None = None,
        **extra: str,
    ) -> Node:
        """Start `stekker serve --role ROLES` (not waiting for it); gateways get an OCPP port."""
        self._counter += 1
        name = name or f"{roles.replace(',', '+')}-{self._counter}"
        http_port = http_port or free_port()
        if ocpp_port is None and "gateway" in roles.split(","):
            ocpp_port = free_port()
        node = Node(
            name=name,
            roles=roles,
            http_port=http_port,
            ocpp_port=ocpp_port,
            env=env if env is not None else self.node_env(name, http_port, ocpp_port, **extra),
            log_path=self.workdir / f"{name}.log",
        )
        rundir = self.workdir / name
        rundir.mkdir(exist_ok=True)
        with node.log_path.open("ab") as log:
            node.process = subprocess.Popen(
                [sys.executable, "-m", "stekker.cli", "serve", "--role", roles],
                cwd=rundir, env=node.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.nodes.append(node)
        return node

    def wait_ready_sync(self, nodes: Iterable[Node], timeout: float = READY_TIMEOUT) -> None:
        """Until every node's /ready answers 200 (for the module's fixture, outside a loop)."""
        pending = list(nodes)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2) as client:
            while pending:
                for node in list(pending):
                    if not node.alive:
                        raise AssertionError(
                            f"{node.name} exited ({node.returncode}) at start:\n{node.tail()}"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{node.http_url}{READY_PATH}").status_code == 200:
                            pending.remove(node)
                if pending and time.monotonic() > deadline:
                    raise AssertionError(self._not_ready(pending))
                time.sleep(0.1)

    async def wait_ready(self, nodes: Iterable[Node], timeout: float = READY_TIMEOUT) -> None:
        pending = list(nodes)
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while pending:
                for node in list(pending):
                    if not node.alive:
                        raise AssertionError(
                            f"{node.name} exited ({node.returncode}) at start:\n{node.tail()}"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{node.http_url}{READY_PATH}")).status_code == 200:
                            pending.remove(node)
                if pending and time.monotonic() > deadline:
                    raise AssertionError(self._not_ready(pending))
                await asyncio.sleep(0.1)

    def _not_ready(self, nodes: list[Node]) -> str:
        parts = []
        for node in nodes:
            try:
                answer = httpx.get(f"{node.http_url}{READY_PATH}", timeout=2)
                said = f"{answer.status_code} {answer.text[:300]}"
            except httpx.HTTPError as exc:
                said = repr(exc)
            parts.append(f"{node.name}: /ready said {said}\n{node.tail()}")
        return "not ready in time:\n" + "\n".join(parts)

    def start_topology(
        self, gateways: int = 2, apis: int = 1, workers: int = 1, haproxy: bool = True
    ) -> None:
        """Start the processes (all at once: they must not race on anything), wait until each is
        ready, then HAProxy in front, and wait until it sees every process up."""
        nodes = [self.spawn("gateway", f"gateway-{i + 1}") for i in range(gateways)]
        nodes += [self.spawn("api", f"api-{i + 1}") for i in range(apis)]
        nodes += [self.spawn("worker", f"worker-{i + 1}") for i in range(workers)]
        self.wait_ready_sync(nodes)
        if haproxy:
            lb = self.start_haproxy()
            names = [f"gateway{i + 1}" for i in range(gateways)] + [f"api{i + 1}" for i in range(apis)]
            lb.wait_state_sync(names, "UP")

    async def restart(self, node: Node) -> Node:
        """Start `node` again as systemd's Restart=always does: same roles, name, ports and
        environment; the old process must have ended. Waits until the new one is ready."""
        assert not node.alive, f"{node.name} still runs"
        node.name = f"{node.name}-ended-{self._counter}"  # keeps its log for the report
        again = self.spawn(
            node.roles,
            node.env["STEKKER_NODE_ID"],
            http_port=node.http_port,
            ocpp_port=node.ocpp_port,
            env=node.env,
        )
        await self.wait_ready([again])
        return again

    def start_haproxy(self) -> HAProxy:
        self.haproxy = HAProxy(self.workdir, self.gateways, self.of_role("api"))
        self.haproxy.start()
        return self.haproxy

    # ---- views ----------------------------------------------------------------------------

    def of_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes if role in n.roles.split(",")]

    @property
    def gateways(self) -> list[Node]:
        return self.of_role("gateway")

    def api_client(self, node: Node | None = None, timeout: float = 30) -> httpx.AsyncClient:
        """An operator's client of an API process (the first one unless named)."""
        target = node or self.of_role("api")[0]
        return httpx.AsyncClient(
            base_url=target.http_url, timeout=timeout, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )

    def owners(self) -> dict[str, str]:
        """Station id → the node id holding its socket, from the Redis registry."""
        client = redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=3)
        try:
            raw: dict[str, str] = client.hgetall(Keys().owners)  # type: ignore[assignment]
        finally:
            client.close()
        return {station: value.split("|", 1)[0] for station, value in raw.items()}

    def leases(self) -> dict[str, str]:
        """Lease name → the node holding it (work that runs once in the cluster)."""
        keys = Keys()
        client = redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=3)
        try:
            names = list(client.scan_iter(keys.lease("*")))
            return {name.removeprefix(keys.lease("")): str(client.get(name)) for name in names}
        finally:
            client.close()

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def logs(self) -> str:
        """Every process's log tail, for a failed test's report."""
        parts = [f"===== {n.name} ({n.roles}, rc={n.returncode}) =====\n{n.tail()}" for n in self.nodes]
        if self.haproxy is not None and self.haproxy.log_path.exists():
            parts.append(
                f"===== haproxy =====\n{self.haproxy.log_path.read_text(errors='replace')[-LOG_TAIL:]}"
            )
        return "\n".join(parts)

    # ---- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        """Kill everything this cluster started and drop its database, whatever happened."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                kill_9(node)
        if self.haproxy is not None:
            with contextlib.suppress(Exception):
                self.haproxy.stop()
        if self.redis_server is not None:
            with contextlib.suppress(Exception):
                self.redis_server.stop()
        self.database.drop()


# ---- stations ---------------------------------------------------------------------------------


class ReconnectingStation:
    """A simulated OCPP 1.6 station that connects again 0.2 s after its socket closed, as a
    real one does (theirs wait a few seconds); `connections` counts its successful boots."""

    def __init__(self, station_id: str, base_url: str, *, connectors: int = 1) -> None:
        self.station_id = station_id
        self.sim = SimulatedStation(
            station_id,
            base_url,
            connectors=connectors,
            heartbeat_interval=30,
            meter_interval=3600,  # meter values only when a test sends them
            unplug_delay=0.1,
            reboot_delay=0.2,
            response_timeout=10,
        )
        self.drops = 0
        # cleared: the station stays offline after its socket closed (a test then acts while it
        # is offline, e.g. stops a session so that its StopTransaction is queued)
        self.may_connect = asyncio.Event()
        self.may_connect.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_connected(), name=f"{self.station_id}:keep")

    async def _keep_connected(self) -> None:
        while not self._closing:
            try:
                await self.sim.run()
            except Exception:
                self.drops += 1
            if self._closing:
                return
            await asyncio.sleep(0.2)
            await self.may_connect.wait()

    @property
    def boots(self) -> int:
        return self.sim.boot_count

    async def offline(self, timeout: float = 30.0) -> None:
        await until(lambda: not self.sim.is_online, timeout, f"{self.station_id} offline")

    async def online(self, timeout: float = 30.0) -> None:
        try:
            await self.sim.wait_online(timeout)
        except TimeoutError:
            raise AssertionError(f"{self.station_id} did not come online within {timeout} s") from None

    async def close(self) -> None:
        self._closing = True
        await self.sim.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 10)


@contextlib.asynccontextmanager
async def stations(base_url: str, ids: Iterable[str], timeout: float = 30.0) -> Any:
    """Stations connected and booted for the block's length, closed after it."""
    fleet = [ReconnectingStation(sid, base_url) for sid in ids]
    try:
        for station in fleet:  # one at a time: HAProxy's leastconn then spreads them evenly
            station.start()
            await station.online(timeout)
        yield fleet
    finally:
        await asyncio.gather(*(s.close() for s in fleet), return_exceptions=True)


async def until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `check` (plain or async) until truthy and return it; fail naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")
        await asyncio.sleep(0.1)


# ---- an OCPI partner ------------------------------------------------------------------------------


class Partner:
    """An eMSP's sessions and CDRs receivers on loopback: records every push it is sent.
    `fail_first` pushes are answered 503 (a partner that is down for a while)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.got: list[tuple[str, str, Any]] = []
        self.refused = 0
        self.fail_first = fail_first
        self.port = 0

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def receive(request: Request) -> JSONResponse:
            if self.refused < self.fail_first:
                self.refused += 1
                return JSONResponse({"status_code": 3000}, status_code=503)
            self.got.append((request.method, request.url.path, await request.json()))
            return JSONResponse({"status_code": 1000, "timestamp": "2030-01-01T00:00:00Z"})

        return Starlette(routes=[Route("/{rest:path}", receive, methods=["PUT", "PATCH", "POST"])])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pushes(self, method: str, path_part: str = "") -> list[Any]:
        return [body for m, path, body in self.got if m == method and path_part in path]


async def register_partner(database_url: str, partner: Partner, cards: Iterable[str]) -> int:
    """A registered eMSP (NL-ABC) with sessions and CDRs receivers, and cards of its drivers,
    written as an operator's set-up would (the service function, then the token row)."""
    from datetime import UTC, datetime

    from sqlalchemy.ext.asyncio import async_sessionmaker

    from stekker.bus import InProcessBus
    from stekker.db.engine import make_engine
    from stekker.db.models import Token
    from stekker.services import ocpi_partners
    from stekker.services.context import ServiceContext
    from tests.conftest import make_settings

    engine = make_engine(database_url)
    try:
        ctx = ServiceContext(
            settings=make_settings(database_url), db=async_sessionmaker(engine), bus=InProcessBus()
        )
        partner_id = await ocpi_partners.add_registered_partner(
            ctx, name="ABC Mobility", country_code="NL", party_id="ABC", token="abc-token",
            endpoints={
                "sessions:RECEIVER": f"{partner.base}/sessions", "cdrs:RECEIVER": f"{partner.base}/cdrs"
            },
            outgoing_token="to-abc",
        )  # fmt: skip
        async with ctx.db() as db, db.begin():
            for n, card in enumerate(cards, 1):
                db.add(
                    Token(
                        uid=card, type="RFID", contract_id=f"NL-ABC-C{n:08d}-X", country_code="NL",
                        party_id="ABC", status="active", ocpi_partner_id=partner_id, whitelist="ALLOWED",
                        ocpi_last_updated=datetime.now(UTC),
                    )
                )  # fmt: skip
        return partner_id
    finally:
        await engine.dispose()


async def exited(node: Node, timeout: float = READY_TIMEOUT) -> int:
    """The exit code of a process that must end by itself (a refused start)."""
    deadline = time.monotonic() + timeout
    while node.alive and time.monotonic() < deadline:  # noqa: ASYNC110 (a process, no event)
        await asyncio.sleep(0.05)
    if node.alive:
        kill_9(node)
        raise AssertionError(f"{node.name} was expected to exit but kept running:\n{node.tail()}")
    code = node.returncode
    assert code is not None
    return code


async def by_gateway(cluster: Cluster, ids: Iterable[str], timeout: float = 20.0) -> dict[str, list[str]]:
    """Node id → the stations it holds, once every one of `ids` is in the registry."""
    wanted = set(ids)

    def held() -> dict[str, str] | None:
        owners = cluster.owners()
        return owners if wanted <= owners.keys() else None

    owners = await until(held, timeout, f"{sorted(wanted)} registered")
    result: dict[str, list[str]] = {}
    for station in sorted(wanted):
        result.setdefault(owners[station], []).append(station)
    return result


async def assert_each_push_once(cluster: Cluster, partner: Partner, session_ids: Iterable[int]) -> None:
    """The partner received exactly the pushes the outbox holds, all delivered (none twice, none
    left behind); each session: one CDR built and POSTed once, its last state pushed COMPLETED
    (a session may be PUT in full again instead of PATCHed: OCPI allows it, it is its own push)."""
    from collections import Counter
    from urllib.parse import urlsplit

    outbox = await cluster.database.rows("SELECT method, url, status FROM ocpi_outbox ORDER BY id")
    assert all(r["status"] == "delivered" for r in outbox), outbox
    queued = Counter((r["method"], urlsplit(r["url"]).path) for r in outbox)
    received = Counter((method, path) for method, path, _ in partner.got)
    assert received == queued, (received, queued)
    for session_id in session_ids:
        assert (
            await cluster.database.value("SELECT count(*) FROM cdrs WHERE session_id = $1", session_id) == 1
        )
        posts = [p for p in partner.pushes("POST", "/cdrs") if p["session_id"] == str(session_id)]
        assert len(posts) == 1, (session_id, partner.got)
        # in order: the session's pushes end COMPLETED (an ACTIVE never arrives after it), and
        # its CDR comes after the last of them
        pushes = [
            (n, body.get("status"))
            for n, (method, path, body) in enumerate(partner.got)
            if path.endswith(f"/sessions/NL/STK/{session_id}") and method in ("PUT", "PATCH")
        ]
        states = [state for _, state in pushes if state is not None]
        in_order = bool(states) and states[-1] == "COMPLETED"
        if not in_order or "ACTIVE" in states[states.index("COMPLETED") :]:
            rows = await cluster.database.rows(
                "SELECT id, method, attempts, created_at, delivered_at, body->>'status' AS status "
                "FROM ocpi_outbox WHERE key = $1 ORDER BY id",
                f"session:{session_id}",
            )
            raise AssertionError(
                f"session {session_id}: pushes out of order {states}; its outbox rows: {rows}"
            )
        cdr_at = next(
            n
            for n, (m, _, body) in enumerate(partner.got)
            if m == "POST" and body["session_id"] == str(session_id)
        )
        assert cdr_at > pushes[-1][0], (session_id, [(m, p) for m, p, _ in partner.got])
