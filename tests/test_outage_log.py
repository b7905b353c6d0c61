"""A database outage is one log line when it starts and one when it ends, in every loop that
retries (the OCPI outbox, housekeeping chores, the heartbeat watch, open data), not a traceback
per round; a failure that is not an outage keeps its traceback."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy.exc import OperationalError

from stekker.app import Stekker
from stekker.services.outage import OutageLog
from tests.test_gateway_hostile import database_unreachable


def test_an_outage_is_two_lines_and_a_bug_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog("some loop", logging.getLogger("stekker.test"))
    down = OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "Connection refused"))
    with caplog.at_level(logging.INFO, logger="stekker.test"):
        for _ in range(100):
            outage.failed_or_log(down, "round failed")
        outage.ok()
        outage.ok()  # nothing to say: no outage
        outage.failed_or_log(ValueError("a bug"), "round failed")
    lines = [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines[0][:1] == (logging.WARNING,) and "some loop: the database is unavailable" in lines[0][1]
    assert "back after" in lines[1][1] and "100 operations failed" in lines[1][1]
    assert lines[2] == (logging.ERROR, "round failed", True)
    assert len(lines) == 3


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_background_loops_log_an_outage_once(
    server: Stekker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="stekker"):
        async with database_unreachable(server):
            for _ in range(5):  # rounds of the outbox (woken, else every second)
                server.ocpi_outbox.wake()
                await asyncio.sleep(0.3)
        server.ocpi_outbox.wake()
        await asyncio.sleep(0.5)
    texts = [r.getMessage() for r in caplog.records]
    tracebacks = [t for r, t in zip(caplog.records, texts, strict=True) if r.exc_info]
    assert tracebacks == [], tracebacks
    assert sum("OCPI outbox: the database is unavailable" in t for t in texts) == 1, texts
    assert sum("OCPI outbox: the database is back" in t for t in texts) == 1, texts
