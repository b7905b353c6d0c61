"""Starting `stekker serve` as an operator does, in real processes: a settings file with a typo
or a syntax error, an unknown variable, and ports already taken end in one line that names
what to change, a non-zero exit code and no traceback; a second server on a running one's
ports and database changes nothing in that database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from websockets.asyncio.client import ClientConnection

from tests.observe import eventually
from tests.test_shutdown_signal import answered, free_port, station_connects, stored


def serve_env(database_url: str | None, ocpp_port: int, http_port: int, **extra: str) -> dict[str, str]:
    """The environment of a `stekker serve` on loopback, without any STEKKER_* of the test run."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("STEKKER_")}
    env.update(
        STEKKER_HOST="127.0.0.1",
        STEKKER_OCPP_PORT=str(ocpp_port),
        STEKKER_HTTP_PORT=str(http_port),
        STEKKER_UNKNOWN_STATIONS="accept",
        STEKKER_CONFIGURE_STATIONS_ON_BOOT="false",
        STEKKER_SHUTDOWN_TIMEOUT="10",
        COLUMNS="200",
        **extra,
    )
    if database_url is not None:
        env["STEKKER_DATABASE_URL"] = database_url
    return env


def names_in(directory: Path) -> list[str]:
    """What a refused start left in its working directory (it must leave nothing)."""
    return sorted(p.name for p in directory.iterdir())


async def start_serve(cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stekker.cli", "serve",
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def stop_serve(process: asyncio.subprocess.Process) -> None:
    """SIGTERM a `stekker serve` still running, then SIGKILL if it takes longer than 30 s."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.communicate(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def refused(cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run a `stekker serve` that must not start: its exit code, stdout and stderr."""
    process = await start_serve(cwd, env)
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:  # it started after all: the assertion below says so
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def test_misspelt_key_in_settings_file_stops_the_start_naming_key_file_and_nearest(
    tmp_path: Path,
) -> None:
    settings_file = tmp_path / "stekker.toml"
    settings_file.write_text('host = "127.0.0.1"\ndatabse_url = "sqlite+aiosqlite:///production.db"\n')
    code, out, err = await refused(tmp_path, serve_env(None, free_port(), free_port()))
    assert code == 2, (out, err)
    assert err == (
        f"stekker cannot start: {settings_file}: unknown setting 'databse_url' "
        "(did you mean 'database_url'?)\n"
    )
    assert "Traceback" not in out + err
    # it did not start on a fresh database beside the real one
    assert names_in(tmp_path) == ["stekker.toml"]


async def test_key_nothing_resembles_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / "stekker.toml").write_text('colour = "blue"\nhttp_port = 8191\n')
    code, _, err = await refused(tmp_path, serve_env(None, free_port(), free_port()))
    assert code == 2
    assert "unknown setting 'colour' (the README lists every setting)" in err
    assert err.count("\n") == 1


async def test_toml_syntax_error_names_file_and_line_without_a_traceback(tmp_path: Path) -> None:
    settings_file = tmp_path / "stekker.toml"
    settings_file.write_text('host = "127.0.0.1"\nocpp_port = 8190\nhttp_port = \n')
    code, out, err = await refused(tmp_path, serve_env(None, free_port(), free_port()))
    assert code == 2
    assert err.startswith(f"stekker cannot start: {settings_file} is not valid TOML: ")
    assert "line 3" in err and err.count("\n") == 1
    assert "Traceback" not in out + err


async def test_invalid_values_name_the_variable_or_the_file_they_came_from(tmp_path: Path) -> None:
    (tmp_path / "stekker.toml").write_text("heartbeat_interval = 0\n")
    env = serve_env(None, free_port(), free_port())
    env["STEKKER_OCPP_PORT"] = "seventy"
    code, _, err = await refused(tmp_path, env)
    assert code == 2 and err.count("\n") == 1, err
    assert "STEKKER_OCPP_PORT: Input should be a valid integer" in err and "(got 'seventy')" in err
    assert "heartbeat_interval in stekker.toml: Input should be greater than or equal to 1 (got 0)" in err


async def test_secret_values_are_not_repeated_in_the_refusal(tmp_path: Path) -> None:
    env = serve_env(None, free_port(), free_port(), STEKKER_PSEUDONYM_KEY="hunter2")
    code, out, err = await refused(tmp_path, env)
    assert code == 2 and "STEKKER_PSEUDONYM_KEY: " in err
    assert "hunter2" not in out + err


async def test_unknown_variable_is_warned_about_with_the_nearest_setting(tmp_path: Path) -> None:
    taken = socket.create_server(("127.0.0.1", 0))  # so the process ends right after its warnings
    with taken:
        env = serve_env(None, taken.getsockname()[1], free_port(), STEKKER_DATABSE_URL="x")
        env["STEKKER_API_URL"] = "http://127.0.0.1:1"  # read by the CLI: not unknown
        code, _, err = await refused(tmp_path, env)
    assert code == 2
    warnings = [line for line in err.splitlines() if " WARNING " in line]
    assert len(warnings) == 1, err
    assert warnings[0].endswith(
        "stekker.config: STEKKER_DATABSE_URL is not a Stekker setting and is ignored; "
        "did you mean STEKKER_DATABASE_URL?"
    )


async def test_http_and_ocpp_on_one_port_is_refused_before_binding(tmp_path: Path) -> None:
    port = free_port()
    code, _, err = await refused(tmp_path, serve_env(None, port, port))
    assert code == 2
    assert err == f"stekker cannot start: http_port and ocpp_port are both {port}: use two ports\n"


async def test_host_that_is_not_ours_is_named(tmp_path: Path) -> None:
    env = serve_env(None, free_port(), free_port())
    env["STEKKER_HOST"] = "192.0.2.1"  # TEST-NET-1: never an address of this machine; nothing is sent
    code, _, err = await refused(tmp_path, env)
    assert code == 2 and err.startswith("stekker cannot start: STEKKER_HOST=192.0.2.1 is not an address")
    assert err.count("\n") == 1


async def station_online(database_url: str, station_id: str) -> bool:
    rows = await stored(database_url, f"SELECT online FROM charging_stations WHERE id = '{station_id}'")
    return bool(rows and rows[0][0])


async def test_second_server_on_taken_ports_exits_in_one_line_and_changes_nothing(
    tmp_path: Path, database_url: str
) -> None:
    ocpp_port, http_port = free_port(), free_port()
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first = await start_serve(first_dir, serve_env(database_url, ocpp_port, http_port))
    ws: ClientConnection | None = None
    try:
        ws = await station_connects(f"ws://127.0.0.1:{ocpp_port}/ocpp/TAKEN1", first)
        await answered(ws, "b1", "BootNotification", {"chargePointVendor": "Raw", "chargePointModel": "R1"})
        await eventually(lambda: station_online(database_url, "TAKEN1"))

        # the same ports and database: the OCPP port is found taken first
        code, out, err = await refused(second_dir, serve_env(database_url, ocpp_port, http_port))
        assert code == 2, (out, err)
        assert err == (
            f"stekker cannot start: STEKKER_OCPP_PORT={ocpp_port} is in use on 127.0.0.1 "
            "(another process listens there)\n"
        )
        assert "Traceback" not in out

        # a free OCPP port but the taken HTTP one: refused as well, the OCPP port given back
        other_ocpp = free_port()
        code, out, err = await refused(second_dir, serve_env(database_url, other_ocpp, http_port))
        assert (code, err) == (
            2,
            f"stekker cannot start: STEKKER_HTTP_PORT={http_port} is in use on 127.0.0.1 "
            "(another process listens there)\n",
        )
        socket.create_server(("127.0.0.1", other_ocpp)).close()  # not left bound by the refused one

        # the first server's station is still online, in its database and to the station
        assert await station_online(database_url, "TAKEN1")
        events = await stored(database_url, "SELECT kind FROM station_events WHERE station_id = 'TAKEN1'")
        assert "disconnected" not in [kind for (kind,) in events], events
        await answered(ws, "h1", "Heartbeat", {})
        assert names_in(second_dir) == []  # no SQLite file, no files directory: nothing written
    finally:
        if ws is not None:
            await ws.close()
        await stop_serve(first)
    assert first.returncode == 0


async def test_database_that_cannot_be_opened_is_one_line_with_its_password_hidden(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://stekker:s3cret-pw@127.0.0.1:{closed}/stekker"
    code, out, err = await refused(tmp_path, serve_env(url, free_port(), free_port()))
    assert code == 2
    assert err == (
        f"stekker cannot start: STEKKER_DATABASE_URL=postgresql+asyncpg://stekker:***@127.0.0.1:{closed}"
        "/stekker cannot be opened: Connection refused\n"
    )
    assert "s3cret-pw" not in out + err and "Traceback" not in out + err

    missing = tmp_path / "no-such-folder" / "stekker.db"
    env = serve_env(f"sqlite+aiosqlite:///{missing}", free_port(), free_port())
    code, _, err = await refused(tmp_path, env)
    assert code == 2 and err.count("\n") == 1
    assert err.endswith(f"sqlite+aiosqlite:///{missing} cannot be opened: unable to open database file\n")
