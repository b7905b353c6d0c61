"""The open-data rate limit and the pure pieces behind the feeds (stream resume, bbox, gzip)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from stekker.app import Stekker
from stekker.opendata.geojson import BadBox, Box, parse_box, summary
from stekker.opendata.ratelimit import TokenBuckets
from stekker.opendata.stream import ChangeStream
from tests.observe import eventually


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if "rate" in request.function.__name__:
        return {"opendata_burst": 3, "opendata_requests_per_minute": 6}
    return {"opendata_burst": 1000, "opendata_streams_per_client": 1}


async def test_a_client_over_its_rate_gets_429_with_retry_after(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    answers = [(await api.get("/opendata/geojson")).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    refused = await api.get("/opendata/ocpi/locations")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "6 requests a minute" in refused.json()["detail"]
    # the operator's own API is not open data: not limited
    assert (await api.get("/health")).status_code == 200
    assert (await api.get("/api/stations")).status_code == 200


async def test_one_stream_per_client_when_so_configured(api: httpx.AsyncClient, server: Stekker) -> None:
    async with api.stream("GET", "/opendata/stream") as first:
        assert first.status_code == 200
        second = await api.get("/opendata/stream")
        assert second.status_code == 429
        assert "at most 1 open streams" in second.json()["detail"]

    # the first one closed: a new one may open (the server notices the close at its next write)
    async def opens() -> bool:
        async with api.stream("GET", "/opendata/stream") as again:
            return again.status_code == 200

    for _ in range(100):
        if await opens():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the closed stream was never released")


# --- pure pieces ------------------------------------------------------------------------------


def test_token_buckets_refill_with_time() -> None:
    now = [0.0]
    buckets = TokenBuckets(per_minute=60, burst=2, clock=lambda: now[0])
    assert buckets.take("a") == 0 and buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(1.0)  # one a second
    assert buckets.take("b") == 0  # each client its own bucket
    now[0] = 1.0
    assert buckets.take("a") == 0
    now[0] = 100.0
    assert buckets.take("a") == 0 and buckets.take("a") == 0 and buckets.take("a") > 0  # never above burst


def test_bbox_parsing() -> None:
    assert parse_box("4.7,52.3,5.0,52.4") == Box(4.7, 52.3, 5.0, 52.4)
    across = parse_box("170,-20,-170,-10")  # west > east: over the antimeridian
    assert across.holds(175, -15) and across.holds(-175, -15) and not across.holds(0, -15)
    assert not parse_box("4,52,5,53").holds(4.5, 53.5)
    for bad in ("", "1,2,3", "1,2,3,4,5", "x,1,2,3", "inf,1,2,3", "-181,0,0,1", "0,-91,1,0", "0,2,1,1"):
        with pytest.raises(BadBox):
            parse_box(bad)


def test_location_summary_is_the_best_a_driver_can_hope_for() -> None:
    assert summary(["CHARGING", "AVAILABLE"]) == "AVAILABLE"
    assert summary(["OUTOFORDER", "CHARGING"]) == "CHARGING"
    assert summary([]) == "UNKNOWN"


async def test_stream_resume_rules() -> None:
    stream = ChangeStream(backlog=3, epoch=42)
    assert stream.resume_point(None).reset_reason is None
    for n in range(5):
        stream.publish("status", {"n": n})
    # 5 changes, 3 kept (seq 3, 4, 5): resuming after 2, 3 or 4 misses nothing
    assert stream.resume_point("42-2").after == 2 and stream.resume_point("42-2").reset_reason is None
    assert [c.seq for c in stream.since(2)] == [3, 4, 5]
    assert "older than the backlog" in str(stream.resume_point("42-1").reset_reason)
    assert "restarted" in str(stream.resume_point("41-4").reset_reason)
    assert "never sent" in str(stream.resume_point("42-9").reset_reason)
    assert "not one of ours" in str(stream.resume_point("42-x").reset_reason)
    assert "not one of ours" in str(stream.resume_point("4" * 50).reset_reason)

    frames = stream.frames(stream.resume_point("42-3"), frozenset({"status"}), keepalive=0.05)
    assert (await anext(frames)).startswith(b"retry:")
    assert await anext(frames) == b'id: 42-4\nevent: status\ndata: {"n":3}\n\n'
    assert await anext(frames) == b'id: 42-5\nevent: status\ndata: {"n":4}\n\n'
    assert await anext(frames) == b": keepalive\n\n"
    stream.publish("price", {"n": 5})  # not asked for: skipped
    stream.publish("status", {"n": 6})
    assert await anext(frames) == b'id: 42-7\nevent: status\ndata: {"n":6}\n\n'
    stream.close()
    with pytest.raises(StopAsyncIteration):
        await anext(frames)


async def test_a_slow_reader_is_told_it_missed_changes() -> None:
    stream = ChangeStream(backlog=2, epoch=7)
    frames = stream.frames(stream.resume_point(None), frozenset({"status"}), keepalive=5)
    assert (await anext(frames)).startswith(b"retry:")
    for n in range(5):
        stream.publish("status", {"n": n})
    assert (await anext(frames)).startswith(b"event: reset\n")
    assert await anext(frames) == b'id: 7-4\nevent: status\ndata: {"n":3}\n\n'


async def test_feeds_say_503_while_the_cache_cannot_be_built_and_recover(
    api: httpx.AsyncClient, server: Stekker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stekker.opendata import feeds
    from stekker.opendata.cache import OpenDataCache

    real = OpenDataCache._reload_everything

    async def database_down(self: OpenDataCache) -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(feeds, "FIRST_BUILD_WAIT", 0.5)
    monkeypatch.setattr(OpenDataCache, "_reload_everything", database_down)
    refused = await api.get("/opendata/ocpi/locations")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "10"
    assert "retry shortly" in refused.json()["detail"]
    monkeypatch.setattr(OpenDataCache, "_reload_everything", real)  # the database is back

    async def served() -> bool:
        return (await api.get("/opendata/ocpi/locations")).status_code == 200

    await eventually(served)
