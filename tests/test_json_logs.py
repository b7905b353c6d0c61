"""Issue 18 point 8: logs as JSON lines (STEKKER_LOG_FORMAT=json) for a log collector: one object
per line with time, level, logger, message, node id, and the station id and correlation id when
known. A line never fails, whatever the code logged."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest

from stekker.logconfig import CORRELATION_ID, STATION_ID, CorrelateRequests, JsonFormatter, setup_logging
from stekker.services.partner_http import correlated
from tests.observe import eventually
from tests.peers import raw_station


@contextmanager
def json_lines(logger_name: str, node_id: str = "node-7") -> Iterator[io.StringIO]:
    """What `logger_name` logs (at INFO and up) while inside, as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(node_id))
    logger = logging.getLogger(logger_name)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # pytest's own capture would raise on the malformed records
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]  # each line one whole object


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")

    def __repr__(self) -> str:
        raise RuntimeError("not this either")


def test_every_line_is_one_json_object_whatever_was_logged() -> None:
    log = logging.getLogger("test.json.lines")
    with json_lines("test.json.lines") as stream:
        log.warning("plain %s", "words")
        log.warning("multi\nline \x00 text with \"quotes\" and 'ünïcode' ✓")
        log.warning("%d stations", "many")  # a wrong format: the words are kept
        log.warning("%s and %s", "one")  # too few arguments
        log.warning("an object %s", Unprintable())
        log.warning("extras", extra={"station_count": 3, "odd": object(), "bad": Unprintable()})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("it failed")
    lines = parsed(stream)
    assert len(lines) == 7
    first = lines[0]
    assert first["msg"] == "plain words" and first["level"] == "WARNING"
    assert first["logger"] == "test.json.lines" and first["node_id"] == "node-7"
    assert first["ts"].endswith("Z")
    assert datetime.fromisoformat(first["ts"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    assert "station_id" not in first and "correlation_id" not in first
    assert lines[1]["msg"].startswith("multi\nline \x00")
    assert "many" in lines[2]["msg"] and "stations" in lines[2]["msg"]
    assert "one" in lines[3]["msg"]
    assert lines[4]["msg"].startswith("an object") or "unprintable" in lines[4]["msg"]
    assert lines[5]["station_count"] == 3 and "object" in lines[5]["odd"]
    assert "unprintable" in lines[5]["bad"]
    assert "ValueError: boom" in lines[6]["exc_info"] and "Traceback" in lines[6]["exc_info"]


def test_station_and_correlation_come_from_the_context() -> None:
    log = logging.getLogger("test.json.context")
    with json_lines("test.json.context") as stream:
        station = STATION_ID.set("NL*ABC*S1")
        request = CORRELATION_ID.set("req-42")
        try:
            log.warning("in a connection, for a request")
        finally:
            CORRELATION_ID.reset(request)
            STATION_ID.reset(station)
        with correlated("ocpi-7"):  # the OCPI edge's own correlation id
            log.warning("for a partner's request")
        log.warning("outside")
    inside, partner, outside = parsed(stream)
    assert inside["station_id"] == "NL*ABC*S1" and inside["correlation_id"] == "req-42"
    assert partner["correlation_id"] == "ocpi-7"
    assert "station_id" not in outside and "correlation_id" not in outside


def test_setup_logging_keeps_its_old_form_and_takes_json() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging("info")  # as every caller did before
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.INFO
        setup_logging("warning", "json", node_id="gw-1")
        formatter = root.handlers[0].formatter
        assert isinstance(formatter, JsonFormatter) and formatter.node_id == "gw-1"
        with pytest.raises(ValueError, match="text or json"):
            setup_logging("info", "xml")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


async def test_a_stations_lines_carry_its_id(ocpp_url: str) -> None:
    with json_lines("stekker.ocpp.connection") as stream:
        async with raw_station(ocpp_url, "JSONLOG1") as station:
            reply = await station.call("NoSuchAction", {})
            assert reply[0] == 4
            await eventually(lambda: "NoSuchAction" in stream.getvalue(), timeout=10)
    [line] = [line for line in parsed(stream) if "NoSuchAction" in line["msg"]]
    assert line["station_id"] == "JSONLOG1"
    assert line["logger"] == "stekker.ocpp.connection" and line["node_id"] == "node-7"


async def test_each_api_request_gets_a_correlation_id() -> None:
    seen: list[str | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(CORRELATION_ID.get())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=CorrelateRequests(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        await client.get("/api/stations", headers={"X-Correlation-ID": "op-ticket-1234"})
        await asyncio.gather(client.get("/api/stations"), client.get("/api/stations"))
        for hostile in (b"a b", b"x" * 500, "ünï".encode(), b"", b"tab\there"):
            await client.get("/api/sessions", headers={"X-Correlation-ID": hostile})
        await client.get("/ocpi/versions", headers={"X-Correlation-ID": "partner-own"})
    assert seen[0] == "op-ticket-1234"
    made = seen[1:8]
    assert all(isinstance(c, str) and len(c) == 32 for c in made)  # new ids, not the hostile ones
    assert len(set(made)) == 7
    assert seen[8] is None  # /ocpi keeps the partner's ids itself (its own middleware)
    assert CORRELATION_ID.get() is None  # nothing leaks out of a request
