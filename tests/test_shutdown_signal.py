"""SIGTERM (as systemd, Docker and Kubernetes send it) runs our orderly shutdown in a real
`stekker serve` process: the station sees 1001 "server restarting", every answered frame is
in the message log, the disconnect is recorded as server_shutdown, and the process exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from stekker.db.engine import make_engine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def station_connects(url: str, process: asyncio.subprocess.Process) -> ClientConnection:
    for _ in range(300):  # the process imports, migrates and listens: a few seconds at most
        assert process.returncode is None, "stekker serve exited at start"
        try:
            return await connect(url, subprotocols=[Subprotocol("ocpp1.6")])
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("stekker serve did not listen")


async def answered(ws: ClientConnection, msg_id: str, action: str, payload: dict[str, object]) -> None:
    await ws.send(json.dumps([2, msg_id, action, payload]))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert reply[:2] == [3, msg_id], reply


async def stored(database_url: str, query: str) -> list[Any]:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as db:
            return list((await db.execute(text(query))).all())
    finally:
        await engine.dispose()


async def test_sigterm_closes_stations_with_1001_and_loses_nothing(tmp_path: Path, database_url: str) -> None:
    ocpp_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "STEKKER_DATABASE_URL": database_url,
        "STEKKER_HOST": "127.0.0.1",
        "STEKKER_OCPP_PORT": str(ocpp_port),
        "STEKKER_HTTP_PORT": str(http_port),
        "STEKKER_UNKNOWN_STATIONS": "accept",
        "STEKKER_CONFIGURE_STATIONS_ON_BOOT": "false",
        "STEKKER_FILES_DIR": str(tmp_path / "files"),
        "STEKKER_SHUTDOWN_TIMEOUT": "10",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stekker.cli", "serve",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        ws = await station_connects(f"ws://127.0.0.1:{ocpp_port}/ocpp/SIGCP", process)
        await answered(ws, "b1", "BootNotification", {"chargePointVendor": "Raw", "chargePointModel": "R1"})
        await answered(ws, "h1", "Heartbeat", {})
        status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        await answered(ws, "s1", "StatusNotification", status)

        # frames in flight when the signal comes: whatever gets answered must be in the log
        sample = {"value": "1000", "measurand": "Energy.Active.Import.Register"}
        reading = {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [sample]}
        meter = {"connectorId": 1, "meterValue": [reading]}
        for n in range(3):
            await ws.send(json.dumps([2, f"m{n}", "MeterValues", meter]))
        process.send_signal(signal.SIGTERM)
        late_answers = []
        try:
            while True:  # until the close frame
                late_answers.append(json.loads(await asyncio.wait_for(ws.recv(), 15))[1])
        except ConnectionClosed:
            pass
        assert (ws.close_code, ws.close_reason) == (1001, "server restarting")
        output, _ = await asyncio.wait_for(process.communicate(), 15)
        assert process.returncode == 0, output.decode(errors="replace")[-3000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    frames = await stored(
        database_url, "SELECT direction, message_id FROM ocpp_messages WHERE station_id = 'SIGCP' ORDER BY id"
    )
    events = await stored(
        database_url, "SELECT kind, detail FROM station_events WHERE station_id = 'SIGCP' ORDER BY id"
    )
    pairs = [tuple(row) for row in frames]
    for msg_id in ("b1", "h1", "s1", *late_answers):
        assert ("in", msg_id) in pairs and ("out", msg_id) in pairs, pairs
    kind, detail = events[-1]
    detail = detail if isinstance(detail, dict) else json.loads(detail)
    assert kind == "disconnected", events
    assert (detail["cause"], detail["code"]) == ("server_shutdown", 1001)
