"""Issue 16 item 10: in a boot storm a handshake is answered. Admission reads the station with a
pooled read, never queued behind the writer (busy with the set-up of stations already in), and
when it still cannot decide in time the station gets 503 with Retry-After, not a reset."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from stekker.app import Stekker


@asynccontextmanager
async def busy_writer(server: Stekker, jobs: int) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Every writer worker held by a job that waits until the test lets it go."""
    release = asyncio.Event()

    async def hold(db: AsyncSession) -> None:
        await db.execute(text("SELECT 1"))
        await release.wait()

    held = [asyncio.create_task(server.ctx.write(hold)) for _ in range(jobs)]
    await asyncio.sleep(0.2)  # the jobs are taken by the workers
    try:
        yield held
    finally:
        release.set()
        await asyncio.gather(*held)


async def register(api: httpx.AsyncClient, station_id: str) -> None:
    created = await api.post("/api/stations", json={"id": station_id, "authentication": "none"})
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_known_station_is_admitted_while_the_writer_is_busy(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await register(api, "STORM-1")
    # more held jobs than the writer has workers: the queue behind them does not move
    async with busy_writer(server, jobs=8) as held:
        async with connect(f"{ocpp_url}/STORM-1", subprotocols=["ocpp1.6"], open_timeout=20) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "ocpp1.6"
            assert not any(task.done() for task in held)  # admitted while the writer was stuck


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("settings_overrides", [{"ocpp_admission_timeout": 0.3}])
async def test_an_admission_that_cannot_finish_in_time_is_503_with_retry_after(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await register(api, "STORM-2")
    with caplog.at_level(logging.WARNING, logger="stekker.ocpp"):
        # SQLite's one pooled connection held: the admission's read cannot start
        async with server.ctx.db() as db:
            await db.execute(text("SELECT 1"))
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"{ocpp_url}/STORM-2", subprotocols=["ocpp1.6"], open_timeout=20):  # type: ignore[list-item]
                    pass
    response: Any = refused.value.response
    assert response.status_code == 503
    assert 5 <= int(response.headers["Retry-After"]) <= 30
    assert b"retry in" in response.body
    assert any("could not admit" in r.getMessage() for r in caplog.records)
    assert server.gateway.admissions_late == 1
    # the database free again, the same station is admitted
    async with connect(f"{ocpp_url}/STORM-2", subprotocols=["ocpp1.6"], open_timeout=20) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "ocpp1.6"
