"""Starting a process of a cluster, and refusing what cannot work, before anything is written.

A second process on a database another one uses without Redis would contradict its truth (the
stations it holds): it is refused with one line, and the first one's stations stay online.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from websockets.asyncio.client import ClientConnection

from tests.observe import eventually
from tests.redis_server import RedisServer, free_port
from tests.test_shutdown_signal import answered, station_connects, stored
from tests.test_startup import names_in, serve_env, start_serve, station_online, stop_serve


async def refused_with(cwd: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """A `stekker serve ARGS` that must not start: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stekker.cli", "serve", *args,
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:  # it started after all: the assertions say so
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def test_a_role_without_redis_is_refused_naming_the_setting(tmp_path: Path) -> None:
    env = serve_env(None, free_port(), free_port())
    code, out, err = await refused_with(tmp_path, env, "--role", "gateway")
    assert code == 2, (out, err)
    assert err.startswith("stekker cannot start: --role gateway needs STEKKER_REDIS_URL"), err
    assert err.count("\n") == 1 and "Traceback" not in out + err
    assert names_in(tmp_path) == []  # no SQLite file made


async def test_an_unknown_role_lists_the_roles(tmp_path: Path) -> None:
    code, _, err = await refused_with(
        tmp_path, serve_env(None, free_port(), free_port()), "--role", "api,boss"
    )
    assert code == 2
    assert (
        err == "stekker cannot start: --role 'boss' is not a role; choose from gateway, api, worker "
        "(a comma list combines them)\n"
    )


async def test_redis_with_sqlite_is_refused(tmp_path: Path) -> None:
    env = serve_env(None, free_port(), free_port(), STEKKER_REDIS_URL="redis://127.0.0.1:1/0")
    code, _, err = await refused_with(tmp_path, env)
    assert code == 2
    assert err.startswith("stekker cannot start: STEKKER_REDIS_URL (cluster mode) needs PostgreSQL"), err
    assert names_in(tmp_path) == []


async def test_unreachable_redis_is_one_line_without_its_password(tmp_path: Path, pg_database: str) -> None:
    port = free_port()  # nothing listens there
    env = serve_env(
        pg_database, free_port(), free_port(), STEKKER_REDIS_URL=f"redis://:s3cret@127.0.0.1:{port}/0"
    )
    code, out, err = await refused_with(tmp_path, env, "--role", "worker")
    assert code == 2, (out, err)
    assert err.startswith(
        f"stekker cannot start: STEKKER_REDIS_URL=redis://:***@127.0.0.1:{port}/0 cannot be"
    ), err
    assert "s3cret" not in out + err and err.count("\n") == 1


async def test_second_single_process_on_one_database_is_refused_and_the_first_keeps_its_stations(
    tmp_path: Path, database_url: str
) -> None:
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    ocpp_port = free_port()
    first = await start_serve(first_dir, serve_env(database_url, ocpp_port, free_port()))
    ws: ClientConnection | None = None
    try:
        ws = await station_connects(f"ws://127.0.0.1:{ocpp_port}/ocpp/CLAIM1", first)
        await answered(ws, "b1", "BootNotification", {"chargePointVendor": "Raw", "chargePointModel": "R1"})
        await eventually(lambda: station_online(database_url, "CLAIM1"))

        # other ports, the same database, no Redis: refused once it sees the first one's claim
        code, out, err = await refused_with(second_dir, serve_env(database_url, free_port(), free_port()))
        assert code == 2, (out, err)
        assert err.startswith("stekker cannot start: another stekker process uses "), err
        assert "STEKKER_REDIS_URL" in err or "SQLite" in err
        assert err.count("\n") == 1

        assert await station_online(database_url, "CLAIM1")
        events = await stored(database_url, "SELECT kind FROM station_events WHERE station_id = 'CLAIM1'")
        assert "disconnected" not in [kind for (kind,) in events], events
        await answered(ws, "h1", "Heartbeat", {})
    finally:
        if ws is not None:
            await ws.close()
        await stop_serve(first)


async def test_a_cluster_node_next_to_a_single_process_is_refused(tmp_path: Path, pg_database: str) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first = await start_serve(first_dir, serve_env(pg_database, free_port(), free_port()))
    try:
        await eventually(lambda: _listening(first), timeout=60)
        env = serve_env(pg_database, free_port(), free_port(), STEKKER_REDIS_URL=redis.url)
        code, out, err = await refused_with(second_dir, env, "--role", "api")
        assert code == 2, (out, err)
        assert err.startswith(
            "stekker cannot start: a stekker process without STEKKER_REDIS_URL uses this"
        ), err
    finally:
        redis.stop()
        await stop_serve(first)


async def _listening(process: asyncio.subprocess.Process) -> bool:
    """The single process logged that it is up (it holds its claim by then)."""
    assert process.returncode is None, "the first server exited"
    assert process.stderr is not None
    try:
        line = await asyncio.wait_for(process.stderr.readline(), 1)
    except TimeoutError:
        return False
    return b"stekker up" in line
