"""Edges of running as a cluster that one process can show: the answer when cluster messaging is
away, and a disconnect that lost the race against the station's reconnect elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from stekker.app import Stekker
from stekker.db.models import ChargingStation
from stekker.services import inventory, stations
from stekker.services.ports import ClusterUnavailable, StationCommand


class _RedisAway:
    """The command port of an api node whose Redis is gone: the station is held elsewhere."""

    def is_connected(self, station_id: str) -> bool:
        return True

    def connected_stations(self) -> list[str]:
        return ["FAR1"]

    def protocol(self, station_id: str) -> str | None:
        return "ocpp1.6"

    async def send(
        self, station_id: str, command: StationCommand, timeout: float | None = None
    ) -> dict[str, Any]:
        raise ClusterUnavailable("redis at 127.0.0.1:1 refused the connection")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_command_while_cluster_messaging_is_away_is_503_not_500(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    await inventory.register_station(
        server.ctx, "test", inventory.StationInput("FAR1", no_authentication=True)
    )
    server.ctx.commands = _RedisAway()
    response = await api.post("/api/stations/FAR1/functions/get_configuration", json={"args": {}})
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "cluster_unavailable"
    assert "cluster messaging unavailable" in body["detail"]


async def test_a_late_disconnect_leaves_a_newer_connection_online(server: Stekker) -> None:
    ctx = server.ctx
    await inventory.register_station(ctx, "test", inventory.StationInput("RACE1", no_authentication=True))
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    second = first + timedelta(milliseconds=30)
    await stations.connected(ctx, "RACE1", "ocpp1.6", "10.0.0.1", at=first)  # on gateway A
    await stations.connected(ctx, "RACE1", "ocpp1.6", "10.0.0.2", at=second)  # reconnected on B
    # A's disconnect of the first connection commits last
    await stations.disconnected(ctx, "RACE1", 1006, "", connected_at=first)
    async with ctx.db() as db:
        station = await db.get(ChargingStation, "RACE1")
        assert station is not None and station.online is True

    # the newer connection's own end does take it offline
    await stations.disconnected(ctx, "RACE1", 1000, "", connected_at=second)
    async with ctx.db() as db:
        station = await db.get(ChargingStation, "RACE1")
        assert station is not None and station.online is False
