"""What a helpdesk agent looks up while a driver is on the phone: the session (by station,
EVSE id on the sticker, connector or card number) and the station's recent timeline.

Read-only and fast: every query is bounded by a limit and goes through an index (sessions by
station and by token uid, status history, station events and OCPP messages by station and
time). The small inventory tables (stations, EVSEs, tokens) may be scanned for the suffix
matches a sticker or a card needs; meter values are never read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import (
    AuditEntry,
    ChargingSession,
    ChargingStation,
    Connector,
    Evse,
    OcppMessage,
    SessionStatus,
    StationEvent,
    StatusHistory,
    Token,
)
from stekker.domain.metering import session_energy_wh

MAX_QUERY = 64
MAX_LIMIT = 100
MAX_TIMELINE_HOURS = 72
MAX_TIMELINE_ITEMS = 1000
# A card number or sticker part shorter than this matches too much to be useful.
MIN_SUFFIX = 4
# What a station id, an EVSE id, a connector reference or a card number is made of.
_QUERY_CHARS = re.compile(r"^[A-Za-z0-9*\-_.:/# ]+$")
_CONNECTOR_REF = re.compile(r"^(?P<station>[A-Za-z0-9*\-_.:]+?)\s*[/# :]\s*(?P<number>\d{1,3})$")
# Connector states in which the cable is still held by a session.
BUSY_STATUSES = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE"})


class BadQuery(ValueError):
    """The search text or window cannot be used; the message says why."""


def mask_uid(uid: str | None) -> str | None:
    """A card number as the helpdesk may read it aloud: only its last four characters."""
    if uid is None:
        return None
    return "****" + uid[-4:] if len(uid) > 4 else "****"


def normalise_evse_id(text: str) -> str:
    """EVSE ids are printed as NL*STK*E0001*1, NL-STK-E0001-1 or nlstk e0001 1: compare them
    upper-case with `*` as the only separator."""
    return re.sub(r"[\s\-]+", "*", text.strip().upper())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def check_query(q: str) -> str:
    q = q.strip()
    if not q:
        raise BadQuery("q is empty: give a station id, an EVSE id, a connector (STATION/2) or a card number")
    if len(q) > MAX_QUERY:
        raise BadQuery(f"q is longer than {MAX_QUERY} characters")
    if not _QUERY_CHARS.match(q):
        raise BadQuery("q may contain only letters, digits, spaces and * - _ . : / #")
    return q


@dataclass
class Matches:
    """What a query text matched, per kind of key, before sessions are looked up."""

    stations: dict[str, str] = field(default_factory=dict)  # station id -> how it matched
    evses: dict[tuple[str, int], str] = field(default_factory=dict)  # (station, evse number) -> how
    token_uids: dict[str, str] = field(default_factory=dict)  # uid -> how

    def how(self, session: ChargingSession) -> str:
        for key, how in (
            (session.token_uid, self.token_uids.get(session.token_uid or "")),
            (
                (session.station_id, session.evse_number),
                self.evses.get((session.station_id, session.evse_number)),
            ),
            (session.station_id, self.stations.get(session.station_id)),
        ):
            if key is not None and how is not None:
                return how
        return "station"


async def match(db: AsyncSession, q: str, limit: int) -> Matches:
    """Read `q` as every kind of key at once; a text may be both a station prefix and a card."""
    found = Matches()
    upper = q.upper()
    compact = q.replace(" ", "")
    # station id: exact, or the beginning of one (case-insensitive: people read ids aloud)
    rows = await db.execute(
        select(ChargingStation.id)
        .where(
            or_(
                ChargingStation.id == q,
                func.upper(ChargingStation.id).like(_like_escape(upper) + "%", escape="\\"),
            )
        )
        .order_by(ChargingStation.id)
        .limit(limit)
    )
    for (station_id,) in rows:
        found.stations[station_id] = "station id" if station_id.upper() == upper else "station id prefix"
    exact_ids = {s: how for s, how in found.stations.items() if how == "station id"}
    if exact_ids:  # "ST42" means ST42, not also ST420..ST429
        found.stations = exact_ids
    # EVSE id, whole or its last segment(s) as printed on the sticker ("E0001*1", "E0001"; the
    # leading E of the outlet part is often read as decoration and left out)
    evse = normalise_evse_id(q)
    if len(evse.replace("*", "")) >= 2:
        stored = func.upper(func.replace(Evse.evse_id, "-", "*"))
        short = evse.strip("*")
        tails = [short] if short.startswith("E") else [short, "E" + short]
        conditions = [stored == evse]
        for tail in tails:
            pattern = "%*" + _like_escape(tail)
            conditions += [stored.like(pattern, escape="\\"), stored.like(pattern + "*%", escape="\\")]
        evse_rows = await db.execute(
            select(Evse.station_id, Evse.evse_number, Evse.evse_id)
            .where(Evse.evse_id.is_not(None), or_(*conditions))
            .limit(limit)
        )
        for station_id, number, evse_id in evse_rows:
            exact = normalise_evse_id(evse_id or "") == evse
            found.evses[(station_id, number)] = "EVSE id" if exact else "EVSE id on the sticker"
    # connector: "SIM001/2", "SIM001 2", "SIM001#2"
    ref = _CONNECTOR_REF.match(q)
    if ref is not None:
        station = await db.scalar(
            select(ChargingStation.id).where(func.upper(ChargingStation.id) == ref["station"].upper())
        )
        if station is not None:
            found.evses[(station, int(ref["number"]))] = "connector"
    # token: the whole uid as sessions hold it, or the last digits of a card we issued
    for uid in {q, compact, upper, compact.upper()}:
        found.token_uids.setdefault(uid, "card number")
    digits = re.sub(r"[\s\-]+", "", q).upper()
    if len(digits) >= MIN_SUFFIX:
        pattern = "%" + _like_escape(digits)

        def bare(column: Any) -> Any:  # printed numbers come with spaces and dashes
            return func.upper(func.replace(func.replace(column, " ", ""), "-", ""))

        token_rows = await db.execute(
            select(Token.uid)
            .where(
                or_(
                    bare(Token.uid).like(pattern, escape="\\"),
                    bare(Token.visual_number).like(pattern, escape="\\"),
                    bare(Token.contract_id).like(pattern, escape="\\"),
                )
            )
            .limit(limit)
        )
        for (uid,) in token_rows:
            found.token_uids.setdefault(uid, "last digits of a card")
    return found


@dataclass(frozen=True, slots=True)
class ConnectorState:
    evse_number: int
    connector_number: int
    evse_id: str | None
    status: str | None
    error_code: str | None
    status_at: datetime | None


@dataclass(frozen=True, slots=True)
class StationHit:
    """A station a query matched, with what the agent needs to know about it right now."""

    station_id: str
    online: bool
    status: str | None
    last_seen: datetime | None
    disconnected_at: datetime | None
    ocpp_version: str | None
    connectors: list[ConnectorState]
    matched_by: str


@dataclass(frozen=True, slots=True)
class SessionHit:
    """A session a query matched, with the live state of its station and connector."""

    session_id: int
    status: str
    station_id: str
    station_online: bool
    evse_number: int
    connector_number: int
    evse_id: str | None
    connector_status: str | None
    token_uid: str | None
    token_uid_masked: str | None
    start_time: datetime
    stop_time: datetime | None
    energy_wh: int | None
    stop_reason: str | None
    matched_by: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    sessions: list[SessionHit]
    stations: list[StationHit]


async def _connectors(
    db: AsyncSession, station_ids: list[str]
) -> dict[tuple[str, int], list[ConnectorState]]:
    if not station_ids:
        return {}
    rows = await db.execute(
        select(Evse.station_id, Evse.evse_number, Evse.evse_id, Connector)
        .join(Connector, Connector.evse_id == Evse.id, isouter=True)
        .where(Evse.station_id.in_(station_ids))
        .order_by(Evse.station_id, Evse.evse_number, Connector.connector_number)
    )
    out: dict[tuple[str, int], list[ConnectorState]] = {}
    for station_id, number, evse_id, connector in rows:
        out.setdefault((station_id, number), []).append(
            ConnectorState(
                number,
                connector.connector_number if connector is not None else 1,
                evse_id,
                connector.status if connector is not None else None,
                connector.error_code if connector is not None else None,
                connector.status_at if connector is not None else None,
            )
        )
    return out


async def search(
    db: AsyncSession,
    q: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
    full_uids: bool = False,
    cards: bool = True,
) -> SearchResult:
    """Sessions and stations matching `q`, running sessions first, then the most recent.
    `since`/`until` keep sessions that overlap that window. Card numbers are masked to their
    last four characters unless `full_uids`. `cards=False` leaves card numbers (whole or their
    last digits) out of the search: for roles that see pseudonyms, which search by those."""
    q = check_query(q)
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit must be between 1 and {MAX_LIMIT}")
    if since is not None and until is not None and until < since:
        raise BadQuery("the window ends before it starts (to < from)")
    found = await match(db, q, limit)
    keys = []
    if found.stations:
        keys.append(ChargingSession.station_id.in_(list(found.stations)))
    if found.evses:
        keys.append(tuple_(ChargingSession.station_id, ChargingSession.evse_number).in_(list(found.evses)))
    if found.token_uids and cards:
        keys.append(ChargingSession.token_uid.in_(list(found.token_uids)))
    sessions: list[ChargingSession] = []
    if keys:
        statement = select(ChargingSession).where(or_(*keys))
        if until is not None:
            statement = statement.where(ChargingSession.start_time <= until)
        if since is not None:
            statement = statement.where(
                or_(ChargingSession.stop_time.is_(None), ChargingSession.stop_time >= since)
            )
        running_first = case((ChargingSession.status == SessionStatus.ACTIVE, 0), else_=1)
        statement = statement.order_by(running_first, ChargingSession.start_time.desc()).limit(limit)
        sessions = list((await db.execute(statement)).scalars())
    station_ids = sorted({*found.stations, *(s for s, _ in found.evses), *(s.station_id for s in sessions)})
    stations = {
        s.id: s
        for s in (
            await db.execute(select(ChargingStation).where(ChargingStation.id.in_(station_ids)))
        ).scalars()
    }
    connectors = await _connectors(db, list(stations))
    hits = []
    for s in sessions:
        station = stations.get(s.station_id)
        states = connectors.get((s.station_id, s.evse_number), [])
        state = next((c for c in states if c.connector_number == s.connector_number), None)
        state = state or (states[0] if states else None)
        energy = s.energy_wh
        if s.status == SessionStatus.ACTIVE:
            energy = session_energy_wh(s.meter_start_wh, s.meter_last_wh)
        hits.append(
            SessionHit(
                session_id=s.id,
                status=s.status,
                station_id=s.station_id,
                station_online=bool(station and station.online),
                evse_number=s.evse_number,
                connector_number=s.connector_number,
                evse_id=state.evse_id if state else None,
                connector_status=state.status if state else None,
                token_uid=s.token_uid if full_uids else None,
                token_uid_masked=mask_uid(s.token_uid),
                start_time=s.start_time,
                stop_time=s.stop_time,
                energy_wh=energy,
                stop_reason=s.stop_reason,
                matched_by=found.how(s),
            )
        )
    station_hits = []
    for station_id in station_ids[:limit]:
        station = stations.get(station_id)
        if station is None:
            continue
        how = found.stations.get(station_id) or next(
            (h for (sid, _), h in found.evses.items() if sid == station_id), "session"
        )
        states = [c for (sid, _), cs in sorted(connectors.items()) if sid == station_id for c in cs]
        station_hits.append(
            StationHit(
                station_id=station.id,
                online=station.online,
                status=station.status,
                last_seen=station.last_seen,
                disconnected_at=None if station.online else station.disconnected_at,
                ocpp_version=station.ocpp_version,
                connectors=states,
                matched_by=how,
            )
        )
    return SearchResult(q, hits, station_hits)


# ------------------------------------------------------------------------------------------------
# Timeline
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One thing that happened at a station, in plain words, with its raw detail."""

    at: datetime
    kind: str  # status, session, event, message, action
    summary: str
    detail: dict[str, Any]
    #: what it is, as a code the console words in the reader's language (`stekker.web.words`):
    #: status, session_started, session_stopped, event, action or message
    what: str = ""


@dataclass(frozen=True, slots=True)
class Timeline:
    station_id: str
    since: datetime
    until: datetime
    items: list[TimelineItem]
    truncated: bool


def _where(evse_number: int, connector_number: int) -> str:
    if evse_number == 0:
        return "station"
    return f"EVSE {evse_number}" + (f" connector {connector_number}" if connector_number > 1 else "")


def _event_summary(kind: str, detail: dict[str, Any]) -> str:
    if kind == "connected":
        return f"connected ({detail.get('protocol', '?')})"
    if kind == "disconnected":
        reason = detail.get("reason")
        return "disconnected" + (f": {reason}" if reason else "")
    if kind == "boot":
        reason = detail.get("reason")
        return f"booted ({detail.get('status', '?')}" + (f", {reason})" if reason else ")")
    words = kind.replace("_", " ")
    return f"{words}: {detail['reason']}" if detail.get("reason") else words


_FRAME_TYPES = {2: "call", 3: "reply", 4: "error reply"}
_MAX_FRAME_SHOWN = 2000


async def timeline(
    db: AsyncSession,
    station_id: str,
    *,
    until: datetime,
    hours: float = 6,
    include_messages: bool = False,
    limit: int = 500,
    full_uids: bool = False,
) -> Timeline:
    """Everything at `station_id` in the `hours` before `until`, oldest first: status changes,
    sessions starting and stopping, connection events, actions by people, and (on request) the
    OCPP frames. Each source is capped at `limit`; `truncated` says when one was."""
    if not 0 < hours <= MAX_TIMELINE_HOURS:
        raise BadQuery(f"hours must be more than 0 and at most {MAX_TIMELINE_HOURS}")
    if not 1 <= limit <= MAX_TIMELINE_ITEMS:
        raise BadQuery(f"limit must be between 1 and {MAX_TIMELINE_ITEMS}")
    since = until - timedelta(hours=hours)
    items: list[TimelineItem] = []
    truncated = False

    def capped(rows: list[Any]) -> list[Any]:
        nonlocal truncated
        if len(rows) > limit:
            truncated = True
            return rows[-limit:]
        return rows

    # newest `limit + 1` of each source, so a cap keeps the most recent part
    statuses = capped(
        list(
            (
                await db.execute(
                    select(StatusHistory)
                    .where(
                        StatusHistory.station_id == station_id,
                        StatusHistory.timestamp >= since,
                        StatusHistory.timestamp <= until,
                    )
                    .order_by(StatusHistory.timestamp.desc(), StatusHistory.id.desc())
                    .limit(limit + 1)
                )
            ).scalars()
        )[::-1]
    )
    for st in statuses:
        error = f" ({st.error_code})" if st.error_code and st.error_code != "NoError" else ""
        items.append(
            TimelineItem(
                st.timestamp,
                "status",
                f"{_where(st.evse_number, st.connector_number)}: {st.status}{error}",
                {
                    "evse_number": st.evse_number,
                    "connector_number": st.connector_number,
                    "status": st.status,
                    "error_code": st.error_code,
                    "info": st.info,
                    "vendor_error_code": st.vendor_error_code,
                    "received_at": st.received_at.isoformat(),
                },
                "status",
            )
        )
    sessions = capped(
        list(
            (
                await db.execute(
                    select(ChargingSession)
                    .where(
                        ChargingSession.station_id == station_id,
                        ChargingSession.start_time <= until,
                        or_(ChargingSession.stop_time.is_(None), ChargingSession.stop_time >= since),
                    )
                    .order_by(ChargingSession.start_time.desc())
                    .limit(limit + 1)
                )
            ).scalars()
        )[::-1]
    )
    for s in sessions:
        card = s.token_uid if full_uids else mask_uid(s.token_uid)
        detail = {
            "session_id": s.id,
            "evse_number": s.evse_number,
            "connector_number": s.connector_number,
            "token_uid": card,
            "transaction_id": s.transaction_id,
            "status": s.status,
        }
        if since <= s.start_time <= until:
            items.append(
                TimelineItem(
                    s.start_time,
                    "session",
                    f"session {s.id} started on {_where(s.evse_number, s.connector_number)} with card {card}",
                    detail,
                    "session_started",
                )
            )
        if s.stop_time is not None and since <= s.stop_time <= until:
            kwh = f", {s.energy_wh / 1000:.2f} kWh" if s.energy_wh is not None else ""
            items.append(
                TimelineItem(
                    s.stop_time,
                    "session",
                    f"session {s.id} stopped ({s.stop_reason or 'no reason given'}{kwh})",
                    {**detail, "stop_reason": s.stop_reason, "energy_wh": s.energy_wh},
                    "session_stopped",
                )
            )
    events = capped(
        list(
            (
                await db.execute(
                    select(StationEvent)
                    .where(
                        StationEvent.station_id == station_id,
                        StationEvent.occurred_at >= since,
                        StationEvent.occurred_at <= until,
                    )
                    .order_by(StationEvent.occurred_at.desc(), StationEvent.id.desc())
                    .limit(limit + 1)
                )
            ).scalars()
        )[::-1]
    )
    for ev in events:
        items.append(
            TimelineItem(
                ev.occurred_at,
                "event",
                _event_summary(ev.kind, ev.detail),
                {"kind": ev.kind, **ev.detail},
                "event",
            )
        )
    # Actions by people on the station, or on its sessions in the window. The audit log has no
    # index on the object: the time condition and the limit keep this bounded.
    session_ids = [str(s.id) for s in sessions]
    on_station = (AuditEntry.object_type == "station") & (AuditEntry.object_id == station_id)
    on_sessions = (AuditEntry.object_type == "session") & AuditEntry.object_id.in_(session_ids)
    audits = capped(
        list(
            (
                await db.execute(
                    select(AuditEntry)
                    .where(
                        or_(on_station, on_sessions) if session_ids else on_station,
                        AuditEntry.occurred_at >= since,
                        AuditEntry.occurred_at <= until,
                    )
                    .order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
                    .limit(limit + 1)
                )
            ).scalars()
        )[::-1]
    )
    for a in audits:
        target = "" if a.object_type == "station" else f" on {a.object_type} {a.object_id}"
        items.append(
            TimelineItem(
                a.occurred_at,
                "action",
                f"{a.actor}: {a.action}{target} → {a.result}",
                {
                    "actor": a.actor,
                    "action": a.action,
                    "result": a.result,
                    **a.detail,
                    "object_type": a.object_type,
                    "object_id": a.object_id,
                },
                "action",
            )
        )
    if include_messages:
        messages = capped(
            list(
                (
                    await db.execute(
                        select(OcppMessage)
                        .where(
                            OcppMessage.station_id == station_id,
                            OcppMessage.occurred_at >= since,
                            OcppMessage.occurred_at <= until,
                        )
                        .order_by(OcppMessage.occurred_at.desc(), OcppMessage.id.desc())
                        .limit(limit + 1)
                    )
                ).scalars()
            )[::-1]
        )
        for m in messages:
            arrow = "station →" if m.direction == "in" else "→ station"
            what = _FRAME_TYPES.get(m.message_type, str(m.message_type))
            frame = m.frame if len(m.frame) <= _MAX_FRAME_SHOWN else m.frame[:_MAX_FRAME_SHOWN] + "…"
            items.append(
                TimelineItem(
                    m.occurred_at,
                    "message",
                    f"{arrow} {m.action or ''} {what}".replace("  ", " "),
                    {
                        "direction": m.direction,
                        "message_type": m.message_type,
                        "message_id": m.message_id,
                        "action": m.action,
                        "frame": frame,
                    },
                    "message",
                )
            )
    items.sort(key=lambda item: item.at)
    return Timeline(station_id, since, until, items, truncated)
