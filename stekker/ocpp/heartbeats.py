"""The gateway's heartbeat watch: notices connected stations that stop talking (requirement 96)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from stekker.domain.health import OVERDUE_AFTER_INTERVALS, missed_heartbeats, overdue_since
from stekker.ocpp.connection import StationConnection
from stekker.services import connection_health
from stekker.services.connection_health import Gap, Silence
from stekker.services.context import ServiceContext
from stekker.services.outage import OutageLog

log = logging.getLogger(__name__)


class HeartbeatWatch:
    """Every quarter heartbeat interval (at most 15 s), looks at when each connection last
    carried a frame. A station silent for over two intervals gets a `heartbeat_overdue`
    event (and bus event) once; when it speaks again, or disconnects, the gap is recorded as
    `heartbeat_missed` with the number of intervals missed. A WebSocket ping proves the
    socket; this proves the station's controller still sends OCPP messages."""

    def __init__(self, ctx: ServiceContext, connections: Mapping[str, StationConnection]) -> None:
        self._ctx = ctx
        self._connections = connections
        self._gaps: list[Gap] = []

    @property
    def period(self) -> float:
        return max(0.05, min(self._ctx.settings.heartbeat_interval / 4, 15.0))

    def resumed(self, connection: StationConnection, now: datetime) -> None:
        """Called by a connection whose silence ends; written with the next check."""
        since = connection.silent_since
        if since is None:
            return
        missed = missed_heartbeats((now - since).total_seconds(), self._ctx.settings.heartbeat_interval)
        self._gaps.append(Gap(connection.station_id, since, now, max(1, missed)))

    def missed_so_far(self, connection: StationConnection, now: datetime) -> int:
        """Heartbeats missed by a connection that is still silent (0 when it is not)."""
        if connection.silent_since is None:
            return 0
        seconds = (now - connection.silent_since).total_seconds()
        return max(1, missed_heartbeats(seconds, self._ctx.settings.heartbeat_interval))

    async def check(self) -> None:
        now = self._ctx.now()
        interval = self._ctx.settings.heartbeat_interval
        limit = OVERDUE_AFTER_INTERVALS * interval
        silences = []
        for c in list(self._connections.values()):
            if c.silent_since is None and not c.closed and (now - c.last_frame_at).total_seconds() > limit:
                c.silent_since = c.last_frame_at
                silences.append(
                    Silence(c.station_id, c.last_frame_at, overdue_since(c.last_frame_at, interval))
                )
        gaps, self._gaps = self._gaps, []
        if silences or gaps:
            await connection_health.record_heartbeat_health(self._ctx, silences, gaps)

    async def run(self) -> None:
        outage = OutageLog("heartbeat watch", log)
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.check()
                outage.ok()
            except Exception as exc:
                outage.failed_or_log(exc, "heartbeat watch failed")
