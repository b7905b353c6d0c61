"""Connection health (requirement 96): heartbeat gaps as the gateway notices them, and the
views operators read: who is offline and since when, who reconnects too often, who is
connected but silent, and one station's recent connections."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingStation, StationEvent
from stekker.domain.health import missed_heartbeats, offline_since, overdue_since, reconnects
from stekker.services.audit import station_event
from stekker.services.context import ServiceContext

WINDOW = timedelta(hours=24)  # "recent" for reconnects and missed heartbeats

# ---- heartbeat gaps, written by the gateway's watch ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Silence:
    """A connected station went quiet: nothing since `last_frame_at`, overdue from `overdue_at`."""

    station_id: str
    last_frame_at: datetime
    overdue_at: datetime


@dataclass(frozen=True, slots=True)
class Gap:
    """A silence that ended because the station spoke again at `until`."""

    station_id: str
    since: datetime
    until: datetime
    missed: int


async def record_heartbeat_health(ctx: ServiceContext, silences: list[Silence], gaps: list[Gap]) -> None:
    """One transaction for what one pass of the watch found; an event per station for alerts."""

    async def job(db: AsyncSession) -> None:
        for s in silences:
            station_event(
                db,
                s.station_id,
                "heartbeat_overdue",
                s.overdue_at,
                last_seen=s.last_frame_at.isoformat(),
                interval_s=ctx.settings.heartbeat_interval,
            )
        for g in gaps:
            station_event(
                db,
                g.station_id,
                "heartbeat_missed",
                g.until,
                missed=g.missed,
                silent_since=g.since.isoformat(),
                silent_s=round((g.until - g.since).total_seconds(), 3),
                ended_by="traffic",
            )

    await ctx.write(job)
    for s in silences:
        await ctx.bus.publish(
            Event(
                "station.heartbeat_overdue",
                {"station_id": s.station_id, "last_seen": s.last_frame_at.isoformat()},
            )
        )
    for g in gaps:
        await ctx.bus.publish(
            Event("station.heartbeat_resumed", {"station_id": g.station_id, "missed": g.missed})
        )


# ---- views --------------------------------------------------------------------------------------

_S = ChargingStation
# Since when an offline station is away, in SQL (the rule of `domain.health.offline_since`).
_OFFLINE_SINCE = case(
    (_S.disconnected_at >= _S.connected_at, _S.disconnected_at),
    else_=func.coalesce(_S.last_seen, _S.connected_at),
)


@dataclass(frozen=True, slots=True)
class OfflineStation:
    station_id: str
    offline_since: datetime
    last_seen: datetime | None
    connected_at: datetime | None


@dataclass(frozen=True, slots=True)
class NeverConnected:
    station_id: str
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class OfflineReport:
    offline: list[OfflineStation]
    never_connected: list[NeverConnected]


async def offline_longer_than(ctx: ServiceContext, seconds: float, limit: int) -> OfflineReport:
    """Stations (not retired) offline for at least `seconds`, longest first; stations that
    never connected at all are listed apart, oldest registration first."""
    cutoff = ctx.now() - timedelta(seconds=seconds)
    active = _S.retired_at.is_(None)
    async with ctx.db() as db:
        offline = (
            await db.execute(
                select(_S.id, _OFFLINE_SINCE.label("since"), _S.last_seen, _S.connected_at)
                .where(active, _S.online.is_(False), _S.connected_at.is_not(None), _OFFLINE_SINCE <= cutoff)
                .order_by(_OFFLINE_SINCE, _S.id)
                .limit(limit)
            )
        ).all()
        never = (
            await db.execute(
                select(_S.id, _S.created_at)
                .where(active, _S.connected_at.is_(None), _S.online.is_(False))
                .order_by(_S.created_at, _S.id)
                .limit(limit)
            )
        ).all()
    return OfflineReport(
        [OfflineStation(r.id, r.since, r.last_seen, r.connected_at) for r in offline],
        [NeverConnected(r.id, r.created_at) for r in never],
    )


@dataclass(frozen=True, slots=True)
class Overdue:
    station_id: str
    last_seen: datetime
    overdue_since: datetime
    missed_heartbeats: int


@dataclass(frozen=True, slots=True)
class Reconnecting:
    station_id: str
    online: bool
    reconnects: int


@dataclass(frozen=True, slots=True)
class ConnectionsSummary:
    as_of: datetime
    stations: int
    online: int
    offline: int
    never_connected: int
    overdue: list[Overdue]
    reconnecting: list[Reconnecting]


async def summary(ctx: ServiceContext, reconnects_above: int, limit: int) -> ConnectionsSummary:
    """Counts per state, stations connected but silent past their heartbeat, and stations
    that reconnected more than `reconnects_above` times in the last 24 h."""
    now = ctx.now()
    interval = ctx.settings.heartbeat_interval
    active = _S.retired_at.is_(None)
    async with ctx.db() as db:
        counts = (
            await db.execute(
                select(
                    func.count(),
                    func.count().filter(_S.online.is_(True)),
                    func.count().filter(_S.online.is_(False), _S.connected_at.is_(None)),
                ).where(active)
            )
        ).one()
        silent = (
            await db.execute(
                select(_S.id, _S.last_seen)
                .where(active, _S.online.is_(True), _S.last_seen < now - timedelta(seconds=2 * interval))
                .order_by(_S.last_seen, _S.id)
                .limit(limit)
            )
        ).all()
        connects = (
            await db.execute(
                select(StationEvent.station_id, func.count())
                .where(StationEvent.kind == "connected", StationEvent.occurred_at >= now - WINDOW)
                .group_by(StationEvent.station_id)
                .having(func.count() > reconnects_above)
            )
        ).all()
        in_window = {sid: int(n) for sid, n in connects}
        stations = (
            (
                await db.execute(
                    select(_S.id, _S.online, _S.reconnect_count).where(active, _S.id.in_(list(in_window)))
                )
            ).all()
            if in_window
            else []
        )
    reconnecting = [
        Reconnecting(sid, bool(online), n)
        for sid, online, ever in stations
        # connected in the window, so connections ever are the reconnects plus the first
        if (n := reconnects(in_window[sid], ever + 1)) > reconnects_above
    ]
    reconnecting.sort(key=lambda r: (-r.reconnects, r.station_id))
    total, online, never = (int(n) for n in counts)
    return ConnectionsSummary(
        as_of=now,
        stations=total,
        online=online,
        offline=total - online,
        never_connected=never,
        overdue=[
            Overdue(
                sid,
                seen,
                overdue_since(seen, interval),
                missed_heartbeats((now - seen).total_seconds(), interval),
            )
            for sid, seen in silent
            if seen is not None
        ],
        reconnecting=reconnecting[:limit],
    )


@dataclass(frozen=True, slots=True)
class ConnectionSpell:
    """One WebSocket of a station: from its connect to its end (None: still open)."""

    connected_at: datetime
    disconnected_at: datetime | None
    duration_s: float
    protocol: str | None
    remote: str | None
    transport: str | None
    cause: str | None = None
    code: int | None = None
    reason: str | None = None
    missed_heartbeats: int = 0


@dataclass(frozen=True, slots=True)
class StationHealth:
    station_id: str
    online: bool
    connected_at: datetime | None
    disconnected_at: datetime | None
    offline_since: datetime | None
    last_seen: datetime | None
    heartbeat_overdue: bool
    overdue_since: datetime | None
    missed_heartbeats: int
    missed_heartbeats_24h: int
    reconnect_count: int
    reconnects_24h: int
    connections: list[ConnectionSpell] = field(default_factory=list)


class UnknownStationHealth(LookupError):
    """No such station."""


_CONNECTION_KINDS = ("connected", "disconnected", "connection_replaced", "heartbeat_missed")


async def station_health(ctx: ServiceContext, station_id: str, limit: int) -> StationHealth:
    """A station's connection state now and its last `limit` connections, newest first."""
    now = ctx.now()
    interval = ctx.settings.heartbeat_interval
    async with ctx.db() as db:
        station = await db.get(ChargingStation, station_id)
        if station is None:
            raise UnknownStationHealth(f"no station {station_id!r}")
        # enough events for `limit` connections: a connect, a disconnect, and a few gaps each
        events = list(
            (
                await db.execute(
                    select(StationEvent)
                    .where(StationEvent.station_id == station_id, StationEvent.kind.in_(_CONNECTION_KINDS))
                    .order_by(StationEvent.occurred_at.desc(), StationEvent.id.desc())
                    .limit(4 * limit + 4)
                )
            ).scalars()
        )[::-1]
        recent = (
            await db.execute(
                select(StationEvent.kind, StationEvent.detail).where(
                    StationEvent.station_id == station_id,
                    StationEvent.kind.in_(("connected", "heartbeat_missed")),
                    StationEvent.occurred_at >= now - WINDOW,
                )
            )
        ).all()
    silence = None if station.last_seen is None else (now - station.last_seen).total_seconds()
    missing_now = missed_heartbeats(silence, interval) if station.online and silence is not None else 0
    connects_24h = sum(1 for kind, _ in recent if kind == "connected")
    missed_24h = sum(_int(detail.get("missed")) for kind, detail in recent if kind == "heartbeat_missed")
    return StationHealth(
        station_id=station.id,
        online=station.online,
        connected_at=station.connected_at,
        disconnected_at=station.disconnected_at,
        offline_since=offline_since(
            station.online, station.connected_at, station.disconnected_at, station.last_seen
        ),
        last_seen=station.last_seen,
        heartbeat_overdue=missing_now > 0,
        overdue_since=overdue_since(station.last_seen, interval)
        if missing_now and station.last_seen
        else None,
        missed_heartbeats=missing_now,
        missed_heartbeats_24h=missed_24h + missing_now,
        reconnect_count=station.reconnect_count,
        reconnects_24h=reconnects(
            connects_24h, station.reconnect_count + (1 if station.connected_at is not None else 0)
        ),
        connections=_spells(events, now)[:limit],
    )


def _spells(events: list[StationEvent], now: datetime) -> list[ConnectionSpell]:
    """Pair each connect with the disconnect after it (oldest first in), newest first out."""
    spells: list[ConnectionSpell] = []
    open_: StationEvent | None = None
    missed: defaultdict[int, int] = defaultdict(int)  # by the connect event's id
    for e in events:
        if e.kind == "connected":
            if open_ is not None:  # its end was never recorded
                spells.append(_spell(open_, None, e.occurred_at, missed[open_.id]))
            open_ = e
        elif e.kind == "heartbeat_missed" and open_ is not None:
            missed[open_.id] += _int(e.detail.get("missed"))
        elif e.kind in ("disconnected", "connection_replaced") and open_ is not None:
            spells.append(_spell(open_, e, e.occurred_at, missed[open_.id]))
            open_ = None
    if open_ is not None:
        spells.append(_spell(open_, None, now, missed[open_.id], still_open=True))
    return spells[::-1]


def _spell(
    start: StationEvent, end: StationEvent | None, until: datetime, missed: int, still_open: bool = False
) -> ConnectionSpell:
    d: dict[str, Any] = start.detail or {}
    e: dict[str, Any] = end.detail if end is not None else {}
    return ConnectionSpell(
        connected_at=start.occurred_at,
        disconnected_at=None if still_open else until,
        duration_s=round(max(0.0, (until - start.occurred_at).total_seconds()), 3),
        protocol=_str(d.get("protocol")),
        remote=_str(d.get("remote")),
        transport=_str(d.get("transport")),
        cause=_str(e.get("cause")) if end is not None else (None if still_open else "unrecorded"),
        code=e.get("code") if isinstance(e.get("code"), int) else None,
        reason=_str(e.get("reason")),
        missed_heartbeats=missed,
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
