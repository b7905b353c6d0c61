"""Issue 17 item 20: list and show commands print full values when piped, `--output json|csv`
for programs, and local times to the second on a terminal. Against a running server."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from stekker import clikit
from stekker.app import Stekker
from tests.peers import ocpp_station

# one database is enough: what is tested is the CLI's output
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# a name with everything that breaks naive CSV and line-based tools
HOSTILE_NAME = 'Dam, "Noord"\nhal 2; kolom\t3'
LONG_NAME = "Parkeergarage Bijlmer ArenA, laadplein oost, niveau -2, vak 101 tot en met 148 " * 2
FORMULA_NAME = '=HYPERLINK("http://example.invalid")'


async def add_location(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    body = {"name": name, "address": "Dam 1", "city": "Amsterdam", "latitude": "52.37", "longitude": "4.89"}
    response = await api.post("/api/locations", json=body)
    assert response.status_code == 201, response.text
    location: dict[str, Any] = response.json()
    return location


async def piped(server: Stekker, *args: str) -> tuple[int, str, str]:
    """`stekker ARGS | ...`: a real process whose stdout is a pipe, not a terminal."""
    env = {k: v for k, v in os.environ.items() if k not in ("TTY_COMPATIBLE", "FORCE_COLOR", "COLUMNS")}
    env["STEKKER_API_URL"] = f"http://127.0.0.1:{server.http_port}"
    env.pop("STEKKER_API_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stekker.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@SQLITE
async def test_piped_tables_keep_every_value_whole(api: httpx.AsyncClient, server: Stekker) -> None:
    await add_location(api, LONG_NAME)
    await add_location(api, HOSTILE_NAME)
    code, out, err = await piped(server, "location", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["id", "name", "city", "stations", "retired"]  # no title, no "…"
    assert not any(ch in out for ch in "…─│┃━")  # no frame, nothing cut
    assert any(LONG_NAME.strip() in line for line in lines[1:])
    # a newline in a value does not split its row: one line per row
    assert len(lines) == 3 and 'Dam, "Noord"\\nhal 2' in out


@SQLITE
async def test_piped_times_are_the_apis_own(api: httpx.AsyncClient, server: Stekker, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-T"})
    async with ocpp_station(ocpp_url, "CP-TIME") as cp:
        await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag="CARD-T", meter_start=0, timestamp="2026-07-01T10:00:00.123456Z"
            )
        )
        api_start = (await api.get("/api/sessions")).json()[0]["start_time"]
        code, out, err = await piped(server, "session", "list")
    assert code == 0, err
    header, row = out.splitlines()[:2]
    assert "start_time" in header.split() and "stop_reason" in header.split()
    assert api_start.startswith("2026-07-01T10:00:00.123456") and api_start in row.split()


@pytest.fixture
def amsterdam() -> Iterator[None]:
    """The local time zone of the machine, for the terminal's local times."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Amsterdam"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = before
        time.tzset()


@SQLITE
async def test_a_terminal_shows_local_times_to_the_second(
    cli: Any, api: httpx.AsyncClient, ocpp_url: str, monkeypatch: pytest.MonkeyPatch, amsterdam: None
) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-L"})
    async with ocpp_station(ocpp_url, "CP-LOCAL") as cp:
        started = await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag="CARD-L", meter_start=0, timestamp="2026-07-01T10:00:00.123456Z"
            )
        )
        monkeypatch.setenv("TTY_COMPATIBLE", "1")  # what rich sees on a terminal
        monkeypatch.setenv("COLUMNS", "200")
        monkeypatch.setenv("TERM", "xterm-256color")  # CI has none or "dumb": rich then uses 80
        # pytest-xdist's workers start with COLUMNS=80, which rich fixed as the console's width
        # when stekker.clikit was imported; a real `stekker` process reads its own terminal
        monkeypatch.setattr(clikit.console, "_width", None)
        listed = await cli("session", "list")
        shown = await cli("session", "show", str(started.transaction_id))
    for result in (listed, shown):
        assert result.exit_code == 0, result.output
        assert "2026-07-01 12:00:00" in result.output  # CEST, to the second
        assert "10:00:00" not in result.output and ".123456" not in result.output
    assert "CP-LOCAL" in shown.output and "started_remotely_by" in shown.output


@SQLITE
async def test_json_output_is_the_apis_objects(cli: Any, api: httpx.AsyncClient) -> None:
    location = await add_location(api, HOSTILE_NAME)
    await add_location(api, LONG_NAME)
    listed = await cli("location", "list", "--output", "json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == (await api.get("/api/locations", params={"limit": 1000})).json()
    shown = await cli("location", "show", str(location["id"]), "-o", "JSON")
    assert json.loads(shown.stdout) == location and json.loads(shown.stdout)["name"] == HOSTILE_NAME


@SQLITE
async def test_csv_output_parses_back_whatever_the_names_hold(cli: Any, api: httpx.AsyncClient) -> None:
    hostile = await add_location(api, HOSTILE_NAME)
    formula = await add_location(api, FORMULA_NAME)
    group = (await api.post("/api/groups", json={"name": "west", "description": HOSTILE_NAME})).json()
    listed = await cli("location", "list", "--output", "csv")
    assert listed.exit_code == 0, listed.output
    rows = list(csv.DictReader(io.StringIO(listed.stdout, newline="")))
    assert list(rows[0]) == ["id", "name", "city", "stations", "retired"]
    by_id = {int(row["id"]): row for row in rows}
    assert by_id[hostile["id"]]["name"] == HOSTILE_NAME
    # as in the exports: a spreadsheet shows it, it does not run it
    assert by_id[formula["id"]]["name"] == "'" + FORMULA_NAME
    groups = await cli("group", "list", "-o", "csv")
    (row,) = list(csv.DictReader(io.StringIO(groups.stdout, newline="")))
    assert row == {"id": str(group["id"]), "name": "west", "member_count": "0", "description": HOSTILE_NAME}


@SQLITE
async def test_with_json_or_csv_stdout_holds_the_data_alone(cli: Any) -> None:
    report = await cli("report", "suppliers", "--from", "2026-11-01", "--to", "2026-11-02", "-o", "json")
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout) == []  # the total line went to stderr
    assert "total 0.000 kWh" in report.stderr
    missing = await cli("session", "show", "999", "-o", "csv")
    assert missing.exit_code == 1 and missing.stdout == ""
    assert "404" in missing.stderr and "no session 999" in missing.stderr


@SQLITE
async def test_an_unknown_output_form_is_refused(cli: Any) -> None:
    result = await cli("station", "list", "--output", "xml")
    assert result.exit_code == 2 and "xml" in result.output


def test_every_list_and_show_command_takes_the_output_option() -> None:
    from typer.main import get_command

    from stekker.cli import app

    def commands(group: Any, path: str) -> Iterator[tuple[str, Any]]:
        for name, command in getattr(group, "commands", {}).items():
            yield f"{path} {name}", command
            yield from commands(command, f"{path} {name}")

    found = [
        (path, c) for path, c in commands(get_command(app), "stekker") if path.split()[-1] in ("list", "show")
    ]
    assert len(found) >= 12
    for path, command in found:
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        assert {"--output", "-o"} <= options, path


@SQLITE
async def test_problem_reports_list_as_data(cli: Any, api: httpx.AsyncClient) -> None:
    listed = await cli("problem", "list", "--all", "-o", "json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == (await api.get("/api/problem-reports?state=all")).json()
    as_csv = await cli("problem", "list", "-o", "csv")
    assert as_csv.stdout.splitlines()[0].startswith("id,reported_at,evse_uid,problem,message")
