"""A hostile or broken station against the real gateway (loopback, SQLite and PostgreSQL): its
fair share of the gateway, the storage it may use, handshake floods and password guessing.

Tests assert what stations and operators see (answers, close codes, events, stored bytes),
never how long something took.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from stekker.app import Stekker
from stekker.domain.token_bucket import TokenBucket
from tests.peers import raw_station

RATE, BURST = 20.0, 10


def padded_heartbeat(n: int, pad: int = 1_000) -> str:
    """A valid Heartbeat CALL made longer with JSON whitespace."""
    return f'[2, "hb{n}", "Heartbeat", {{}}' + " " * pad + "]"


async def events(api: httpx.AsyncClient, station_id: str, kind: str) -> list[dict[str, Any]]:
    response = await api.get(f"/api/stations/{station_id}/events")
    assert response.status_code == 200, response.text
    return [e for e in response.json() if e["kind"] == kind]


async def wait_for_events(
    api: httpx.AsyncClient, station_id: str, kind: str, count: int = 1
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(100):
        found = await events(api, station_id, kind)
        if len(found) >= count:
            break
        await asyncio.sleep(0.05)
    return found


# ---- the token bucket -----------------------------------------------------------------------


def test_token_bucket_burst_then_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(rate=10.0, burst=3, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)  # the 4th waits for one token
    assert bucket.reserve() == pytest.approx(0.2)  # and the 5th for the next
    now[0] += 0.2  # the caller waited: both borrowed tokens are paid back
    assert bucket.reserve() == pytest.approx(0.1)
    now[0] += 60  # a quiet minute refills only up to the burst
    assert bucket.tokens == pytest.approx(3.0)
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)


# ---- per-station rate limit -----------------------------------------------------------------


class TestFairShare:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            "ocpp_station_rate": RATE,
            "ocpp_station_burst": BURST,
            "ocpp_station_backlog": 8,
            "ocpp_flood_seconds": 600,
            "message_log_enabled": False,
        }

    async def test_a_flooder_is_slowed_and_another_station_is_answered(
        self, ocpp_url: str, server: Stekker
    ) -> None:
        total = 5_000
        sent = 0
        async with raw_station(ocpp_url, "FLOOD", boot=False, close_timeout=0.2) as flooder:
            connected_at = time.monotonic()  # the bucket starts full when the socket opens

            async def flood() -> None:
                nonlocal sent
                with contextlib.suppress(ConnectionClosed):
                    for n in range(total):
                        await flooder.ws.send(padded_heartbeat(n))
                        sent += 1

            sender = asyncio.create_task(flood())
            try:
                await asyncio.sleep(0.5)
                async with raw_station(ocpp_url, "CALM", boot=False) as calm:
                    frame = await calm.call("Heartbeat", {})
                    assert frame[0] == 3, frame
                    # answered while the flooder still has frames waiting for theirs
                    assert flooder.replies.qsize() < sent
                elapsed = time.monotonic() - connected_at
                answered = flooder.replies.qsize()
                assert BURST <= answered <= BURST + RATE * elapsed + 1, (answered, elapsed)
                answers = [flooder.replies.get_nowait() for _ in range(answered)]
                assert [a[:2] for a in answers] == [[3, f"hb{n}"] for n in range(answered)]
                # nothing is dropped: later frames are answered later, in order
                more = await asyncio.wait_for(flooder.replies.get(), 5)
                assert more[:2] == [3, f"hb{answered}"]
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
        connection_throttled = server.gateway.connections.get("FLOOD")
        assert connection_throttled is None or connection_throttled.throttled > 0


class TestFlooding:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            "ocpp_station_rate": RATE,
            "ocpp_station_burst": 5,
            "ocpp_station_backlog": 4,
            "ocpp_flood_seconds": 0.3,
            "message_log_enabled": False,
        }

    async def test_a_station_that_keeps_flooding_is_disconnected(
        self, ocpp_url: str, api: httpx.AsyncClient
    ) -> None:
        async with raw_station(ocpp_url, "FLOOD2", close_timeout=0.2) as flooder:

            async def flood() -> None:
                with contextlib.suppress(ConnectionClosed):
                    for n in range(2_000):  # pipelined: 100 s of frames at the rate
                        await flooder.ws.send(padded_heartbeat(n, 1_000))

            sender = asyncio.create_task(flood())
            try:
                await asyncio.wait_for(flooder.ws.wait_closed(), 10)
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            assert flooder.ws.close_code == 1008
            assert (flooder.ws.close_reason or "").startswith("flooding")
        found = await wait_for_events(api, "FLOOD2", "flooding")
        assert len(found) == 1, found
        assert found[0]["detail"]["backlog"] == 4 and found[0]["detail"]["throttled"] > 0

    async def test_a_station_that_waits_for_its_answers_is_never_flooding(
        self, ocpp_url: str, api: httpx.AsyncClient
    ) -> None:
        """OCPP's one CALL at a time, however fast: slowed to the rate, never disconnected."""
        async with raw_station(ocpp_url, "REPLAY") as station:
            for _ in range(30):  # 30 > burst 5: most wait for a token
                assert (await station.call("Heartbeat", {}))[0] == 3
            assert station.ws.close_code is None
        assert await events(api, "REPLAY", "flooding") == []


