"""OCPP message log and connection health (requirement 96): read-only views for every role."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from stekker.api import paging as api_paging
from stekker.api.deps import READ, Caller, allow, get_ctx
from stekker.api.params import IsoAwareDateTime
from stekker.db.models import ChargingStation
from stekker.services import connection_health, message_log, paging
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/api", tags=["health"])

# Any id the gateway accepts (printable, at most 48 characters), so every station can be looked up.
STATION_ID = r"^[^\x00-\x1f\x7f]{1,48}$"
_MAX_ID = 2**63 - 1  # the widest id column (PostgreSQL BIGINT)
_ACTION = r"^[A-Za-z0-9_]{1,64}$"
_TYPE_NAMES = {0: "unreadable", 2: "CALL", 3: "CALLRESULT", 4: "CALLERROR", 5: "CALLRESULTERROR", 6: "SEND"}


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HTTPException(422, f"{name} is out of range once converted to UTC") from None


async def _known_station(ctx: ServiceContext, station_id: str) -> None:
    async with ctx.db() as db:
        found = (
            await db.execute(select(ChargingStation.id).where(ChargingStation.id == station_id))
        ).scalar_one_or_none()
    if found is None:
        raise HTTPException(404, f"no station {station_id!r}")


# ---- message log --------------------------------------------------------------------------------


class MessageOut(BaseModel):
    id: int
    direction: Literal["in", "out"] = Field(description="in: station → us; out: us → station.")
    message_type: int = Field(description="OCPP-J: 2 CALL, 3 CALLRESULT, 4 CALLERROR; 0: not a frame.")
    message_type_name: str
    message_id: str
    action: str | None = Field(description="The CALL's action; for a reply, that of the CALL it answers.")
    frame: str = Field(description="The text as on the wire (cut when `truncated`).")
    size: int = Field(description="Length of the whole frame in characters.")
    truncated: bool
    occurred_at: datetime


class MessagePage(BaseModel):
    station_id: str
    messages: list[MessageOut] = Field(description="Newest first.")
    next_before_id: int | None = Field(
        description="Pass as before_id for the next (older) page; null: no more."
    )


@router.get("/stations/{station_id}/messages", response_model=MessagePage, responses=api_paging.LINK)
async def station_messages(
    request: Request,
    response: Response,
    station_id: str = Path(pattern=STATION_ID),
    since: IsoAwareDateTime | None = Query(None, alias="from", description="Oldest time, with offset."),
    until: IsoAwareDateTime | None = Query(None, alias="to", description="Newest time, with offset."),
    action: str | None = Query(None, pattern=_ACTION, description="e.g. StartTransaction"),
    direction: Literal["in", "out"] | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
    after: int | None = api_paging.after_id(),
    before_id: int | None = Query(None, ge=1, le=_MAX_ID, description="The same as `after` (older clients)."),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> MessagePage:
    """The OCPP frames a station sent and we sent it, newest first (keyset pages)."""
    start, end = _utc(since, "from"), _utc(until, "to")
    if start is not None and end is not None and start > end:
        raise HTTPException(422, "from is after to")
    if after is not None and before_id is not None and after != before_id:
        raise HTTPException(422, "give after or before_id (the same cursor), not both")
    cursor = after if after is not None else before_id
    await _known_station(ctx, station_id)
    query = message_log.MessageFilter(start, end, action, direction, cursor, limit + paging.PEEK)
    try:
        page = paging.cut(await message_log.messages(ctx, station_id, query), limit, lambda m: m.id)
    except message_log.UnknownCursor as exc:
        raise HTTPException(422, str(exc)) from None
    api_paging.link_next(request, response, page)
    return MessagePage(
        station_id=station_id,
        messages=[
            MessageOut(
                id=m.id,
                direction="in" if m.direction == "in" else "out",
                message_type=m.message_type,
                message_type_name=_TYPE_NAMES.get(m.message_type, str(m.message_type)),
                message_id=m.message_id,
                action=m.action,
                frame=m.frame,
                size=m.size,
                truncated=m.truncated,
                occurred_at=m.occurred_at,
            )
            for m in page.rows
        ],
        next_before_id=None if page.next_after is None else int(page.next_after),
    )


# ---- connection health --------------------------------------------------------------------------


class OfflineOut(BaseModel):
    station_id: str
    offline_since: datetime
    offline_for_s: int
    last_seen: datetime | None
    connected_at: datetime | None = Field(description="Start of its last connection.")


class NeverConnectedOut(BaseModel):
    station_id: str
    registered_at: datetime


class OfflineListOut(BaseModel):
    as_of: datetime
    longer_than_s: int
    offline: list[OfflineOut] = Field(description="Longest offline first.")
    never_connected: list[NeverConnectedOut] = Field(description="Registered, but never connected.")


@router.get("/monitoring/offline", response_model=OfflineListOut)
async def offline_stations(
    longer_than: int = Query(900, ge=0, le=10 * 365 * 86400, description="Seconds offline, at least."),
    limit: int = Query(1000, ge=1, le=10_000),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> OfflineListOut:
    """Stations offline for longer than a threshold, with since when and their last sign of life."""
    report = await connection_health.offline_longer_than(ctx, longer_than, limit)
    now = ctx.now()
    return OfflineListOut(
        as_of=now,
        longer_than_s=longer_than,
        offline=[
            OfflineOut(
                station_id=s.station_id,
                offline_since=s.offline_since,
                offline_for_s=int((now - s.offline_since).total_seconds()),
                last_seen=s.last_seen,
                connected_at=s.connected_at,
            )
            for s in report.offline
        ],
        never_connected=[
            NeverConnectedOut(station_id=s.station_id, registered_at=s.registered_at)
            for s in report.never_connected
        ],
    )


class OverdueOut(BaseModel):
    station_id: str
    last_seen: datetime
    overdue_since: datetime
    missed_heartbeats: int


class ReconnectingOut(BaseModel):
    station_id: str
    online: bool
    reconnects_24h: int


class MessageLogStats(BaseModel):
    enabled: bool
    retention_days: int
    pending: int = Field(description="Frames buffered, not yet written.")
    written: int = Field(description="Frames written since this process started.")
    dropped: int = Field(description="Frames shed because the database could not keep up.")
    lost: int = Field(description="Frames in batches the database refused.")


class ConnectionsOut(BaseModel):
    as_of: datetime
    stations: int = Field(description="Not retired.")
    online: int
    offline: int
    never_connected: int = Field(description="Included in offline.")
    heartbeat_interval_s: int
    heartbeat_overdue: list[OverdueOut] = Field(description="Connected, silent over two intervals.")
    reconnects_above: int
    frequent_reconnects: list[ReconnectingOut] = Field(description="Most reconnects in 24 h first.")
    message_log: MessageLogStats | None = Field(
        description="This process's log writer; null: no gateway here."
    )


@router.get("/monitoring/connections", response_model=ConnectionsOut)
async def connections(
    reconnects_above: int = Query(3, ge=0, le=1_000_000, description="List stations with more."),
    limit: int = Query(1000, ge=1, le=10_000),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> ConnectionsOut:
    """How the fleet's connections are doing: counts, silent stations, stations that keep reconnecting."""
    s = await connection_health.summary(ctx, reconnects_above, limit)
    log = getattr(ctx.commands, "message_log", None)
    stats = (
        MessageLogStats(
            enabled=ctx.settings.message_log_enabled,
            retention_days=ctx.settings.message_log_retention_days,
            pending=log.pending,
            written=log.written,
            dropped=log.dropped,
            lost=log.lost,
        )
        if isinstance(log, message_log.MessageLog)
        else None
    )
    return ConnectionsOut(
        as_of=s.as_of,
        stations=s.stations,
        online=s.online,
        offline=s.offline,
        never_connected=s.never_connected,
        heartbeat_interval_s=ctx.settings.heartbeat_interval,
        heartbeat_overdue=[
            OverdueOut(
                station_id=o.station_id,
                last_seen=o.last_seen,
                overdue_since=o.overdue_since,
                missed_heartbeats=o.missed_heartbeats,
            )
            for o in s.overdue
        ],
        reconnects_above=reconnects_above,
        frequent_reconnects=[
            ReconnectingOut(station_id=r.station_id, online=r.online, reconnects_24h=r.reconnects)
            for r in s.reconnecting
        ],
        message_log=stats,
    )


class ConnectionSpellOut(BaseModel):
    connected_at: datetime
    disconnected_at: datetime | None = Field(description="null: still connected.")
    duration_s: float
    protocol: str | None
    remote: str | None
    transport: str | None
    cause: str | None = Field(
        description="closed_by_station, closed_by_server, ping_timeout, connection_lost, replaced, "
        "server_shutdown, gateway_restart; null while connected."
    )
    code: int | None = Field(description="Close code the station sent (1006: none).")
    reason: str | None
    missed_heartbeats: int


class StorageUsageOut(BaseModel):
    window_start: datetime = Field(description="The hour the counts are for.")
    budget_bytes: int = Field(description="STEKKER_OCPP_STATION_STORAGE_PER_HOUR; 0: no limit.")
    used_bytes: int = Field(description="Of station events and message log frames.")
    events_not_stored: int = Field(description="Station events counted, not stored: over the budget.")
    frames_not_stored: int = Field(description="Message log frames counted, not stored: over the budget.")


class StationConnectionOut(BaseModel):
    station_id: str
    online: bool
    connected_at: datetime | None
    disconnected_at: datetime | None
    offline_since: datetime | None
    last_seen: datetime | None
    heartbeat_interval_s: int
    heartbeat_overdue: bool
    overdue_since: datetime | None
    missed_heartbeats: int = Field(description="In the current silence (0 when talking).")
    missed_heartbeats_24h: int
    reconnect_count: int = Field(description="Reconnects ever: connections after the first.")
    reconnects_24h: int
    connections: list[ConnectionSpellOut] = Field(description="Newest first.")
    message_log_dropped: int = Field(
        description="This station's frames the message log could not keep since this process started "
        "(shed under overload or a database outage, or refused by the database)."
    )
    storage: StorageUsageOut = Field(
        description="What the station made us store this hour, against its budget."
    )


@router.get("/stations/{station_id}/connection", response_model=StationConnectionOut)
async def station_connection(
    station_id: str = Path(pattern=STATION_ID),
    limit: int = Query(20, ge=1, le=500, description="How many past connections."),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> StationConnectionOut:
    """A station's connection health now, and its last connections with how each ended."""
    try:
        h = await connection_health.station_health(ctx, station_id, limit)
    except connection_health.UnknownStationHealth as exc:
        raise HTTPException(404, str(exc)) from None
    usage = ctx.storage.usage(station_id, ctx.now())
    log = getattr(ctx.commands, "message_log", None)
    dropped = log.dropped_by_station[station_id] if isinstance(log, message_log.MessageLog) else 0
    return StationConnectionOut(
        station_id=h.station_id,
        online=h.online,
        connected_at=h.connected_at,
        disconnected_at=h.disconnected_at,
        offline_since=h.offline_since,
        last_seen=h.last_seen,
        heartbeat_interval_s=ctx.settings.heartbeat_interval,
        heartbeat_overdue=h.heartbeat_overdue,
        overdue_since=h.overdue_since,
        missed_heartbeats=h.missed_heartbeats,
        missed_heartbeats_24h=h.missed_heartbeats_24h,
        reconnect_count=h.reconnect_count,
        reconnects_24h=h.reconnects_24h,
        connections=[
            ConnectionSpellOut(
                connected_at=c.connected_at,
                disconnected_at=c.disconnected_at,
                duration_s=c.duration_s,
                protocol=c.protocol,
                remote=c.remote,
                transport=c.transport,
                cause=c.cause,
                code=c.code,
                reason=c.reason,
                missed_heartbeats=c.missed_heartbeats,
            )
            for c in h.connections
        ],
        message_log_dropped=dropped,
        storage=StorageUsageOut(
            window_start=usage.window_start,
            budget_bytes=ctx.settings.ocpp_station_storage_per_hour,
            used_bytes=usage.used_bytes,
            events_not_stored=usage.events_not_stored,
            frames_not_stored=usage.frames_not_stored,
        ),
    )
