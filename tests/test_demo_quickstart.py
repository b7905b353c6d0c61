"""The README's quick start, run verbatim against a real `stekker demo`, and a demo restart.

The demo runs as a user starts it (a process of its own, on its own SQLite file, on free
ports); the commands are read from README.md's quick-start block, so this test breaks when
the README changes in a way that no longer works. After a crash of the demo (SIGKILL: no
clean stop of its sessions) a new demo on the same database closes the sessions of the
previous run: its simulated stations boot fresh.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.observe import eventually
from tests.test_shutdown_signal import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
STEKKER = ".venv/bin/stekker"


def quick_start_commands() -> list[list[str]]:
    """The commands of the README's quick start: the shell block of "Two commands" that the
    reader runs in a second shell, without their comments."""
    text = README.read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    [block] = [b for b in blocks if "session start" in b]
    commands = [shlex.split(line, comments=True) for line in block.splitlines()]
    return [c for c in commands if c]


def demo_env(tmp_path: Path, ocpp_port: int, http_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEKKER_")}
    env.update(
        STEKKER_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        STEKKER_HOST="127.0.0.1",
        STEKKER_OCPP_PORT=str(ocpp_port),
        STEKKER_HTTP_PORT=str(http_port),
        STEKKER_FILES_DIR=str(tmp_path / "files"),
        STEKKER_API_URL=f"http://127.0.0.1:{http_port}",
        COLUMNS="200",
    )
    return env


@asynccontextmanager
async def running_demo(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """`stekker demo` until its three stations are online; stopped with Ctrl-C (SIGINT) at the end
    unless the test killed it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stekker.cli", "demo",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            output.append(line.decode(errors="replace"))

    reader = asyncio.create_task(read())
    try:
        async with httpx.AsyncClient(base_url=env["STEKKER_API_URL"], timeout=30) as api:

            async def all_online() -> bool:
                assert process.returncode is None, "stekker demo exited:\n" + "".join(output)
                try:
                    stations = (await api.get("/api/stations")).json()
                except httpx.TransportError:
                    return False
                return sorted(s["id"] for s in stations if s["online"]) == ["SIM001", "SIM002", "SIM003"]

            await eventually(all_online, timeout=120)
        assert any("Stekker is running" in line for line in output)
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()
        await reader


async def run(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    assert command[0] == STEKKER, f"the quick start runs {STEKKER}, not {command[0]}"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stekker.cli", *command[1:],
        cwd=Path(env["STEKKER_FILES_DIR"]).parent, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


async def sessions(env: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=env["STEKKER_API_URL"], timeout=30) as api:
        rows: list[dict[str, Any]] = (await api.get("/api/sessions", params={"limit": 1000, **params})).json()
        return rows


async def run_quick_start(env: dict[str, str]) -> dict[str, Any]:
    """Every command of the quick start, verbatim; each must succeed, the station must accept the
    remote start and stop. Returns the reader's session, stopped."""
    known = {s["id"] for s in await sessions(env, station_id="SIM002")}
    for command in quick_start_commands():
        code, out = await run(command, env)
        assert code == 0, f"{shlex.join(command)} failed ({code}):\n{out}"
        if command[1:3] in (["session", "start"], ["session", "stop"]):
            assert "answered Accepted" in out, out
    [reader] = [
        s
        for s in await sessions(env, station_id="SIM002")
        if s["id"] not in known and s["token_uid"] == "DEMO-0002"
    ]
    assert (reader["evse_number"], reader["auth_status"]) == (1, "Accepted")

    async def stopped() -> dict[str, Any] | None:
        rows = await sessions(env, station_id="SIM002")
        row = next(s for s in rows if s["id"] == reader["id"])
        return row if row["status"] == "completed" else None

    done = await eventually(stopped, timeout=60)
    assert done["stop_reason"] == "Remote"
    return done


async def test_the_readme_quick_start_works_verbatim_against_the_demo(tmp_path: Path) -> None:
    assert [c[1:3] for c in quick_start_commands()] == [
        ["session", "list"],
        ["station", "list"],
        ["session", "start"],
        ["session", "stop"],
    ]
    env = demo_env(tmp_path, free_port(), free_port())
    async with running_demo(tmp_path, env):
        first = await run_quick_start(env)
        again = await run_quick_start(env)  # every time, not once
        assert again["id"] != first["id"]
        # the simulation never makes a session the central system must refuse
        everything = await sessions(env)
        assert everything and all(s["auth_status"] == "Accepted" for s in everything), everything


async def test_a_restarted_demo_closes_the_sessions_of_the_run_before(tmp_path: Path) -> None:
    env = demo_env(tmp_path, free_port(), free_port())
    async with running_demo(tmp_path, env) as demo:
        code, out = await run(
            [STEKKER, "session", "start", "SIM002", "--token", "DEMO-0002", "--evse", "1"], env
        )
        assert code == 0, out

        async def both_running() -> list[dict[str, Any]] | None:
            rows = await sessions(env, status="active")
            where = {(s["station_id"], s["evse_number"]) for s in rows}
            return rows if {("SIM001", 1), ("SIM002", 1)} <= where else None

        before = await eventually(both_running, timeout=60)
        demo.kill()  # a crash or power cut: nothing is stopped cleanly
        await demo.wait()
    left_open = {s["id"] for s in before}
    async with running_demo(tmp_path, env):

        async def all_closed() -> list[dict[str, Any]] | None:
            rows = [s for s in await sessions(env) if s["id"] in left_open]
            return rows if all(s["status"] == "completed" for s in rows) else None

        closed = await eventually(all_closed, timeout=60)
        assert {s["stop_reason"] for s in closed} == {"station_rebooted"}, closed
        async with httpx.AsyncClient(base_url=env["STEKKER_API_URL"], timeout=30) as api:

            async def billed() -> bool:
                cdrs = (await api.get("/api/cdrs", params={"limit": 1000})).json()
                return left_open <= {c["session_id"] for c in cdrs}

            await eventually(billed, timeout=60)
        await run_quick_start(env)  # and the quick start works after the restart too
