"""Charging sessions from the station's messages: start, meter values, stop. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingSession, MeterValue, RemoteStart, SessionStatus
from stekker.db.writer import defer
from stekker.domain.authorization import AuthDecision, AuthStatus
from stekker.domain.metering import SampledValue, advance_readings, session_energy_wh
from stekker.domain.session_closure import SUPERSEDED, correctable
from stekker.services.audit import station_event
from stekker.services.authorization import TokenVerdict, judge_token
from stekker.services.context import ServiceContext
from stekker.services.errors import Invalid
from stekker.services.stations import ensure_evse
from stekker.services.tokens import stamp_energy_contract

# Samples stamped slightly before the start still belong to the session (clock skew).
_START_TOLERANCE = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class StartRequest:
    """A station reports that a transaction started (1.6 StartTransaction, 2.0.1 Started)."""

    evse_number: int
    connector_number: int
    token_uid: str
    timestamp: datetime
    meter_start_wh: int | None
    transaction_id: str | None = None  # station-chosen (2.0.1); None: we assign one (1.6)
    reservation_id: int | None = None
    remote_start_id: int | None = None


@dataclass(frozen=True, slots=True)
class StartResult:
    session_id: int
    transaction_id: str
    verdict: TokenVerdict
    duplicate: bool

    @property
    def decision(self) -> AuthDecision:
        return self.verdict.decision


def _start_key(req: StartRequest) -> str:
    """What makes two start messages the same start: the station's transaction id (2.0.1),
    or for 1.6 everything the station sends (a retry carries identical content)."""
    if req.transaction_id is not None:
        return f"tx|{req.transaction_id}"
    return "|".join(
        [
            str(req.evse_number),
            str(req.connector_number),
            req.token_uid,
            req.timestamp.isoformat(),
            str(req.meter_start_wh),
        ]
    )


async def start(ctx: ServiceContext, station_id: str, req: StartRequest) -> StartResult:
    """Open a session, or return the one a retransmission of the same start opened."""
    key = _start_key(req)
    try:
        result, superseded = await _start_once(ctx, station_id, req, key)
    except IntegrityError:
        # a concurrent copy of the same start won the race: answer as it did
        result, superseded = await _start_once(ctx, station_id, req, key)
    if not result.duplicate:
        for old in superseded:
            await ctx.bus.publish(Event("session.stopped", {"session_id": old, "station_id": station_id}))
        await ctx.bus.publish(
            Event(
                "session.started",
                {
                    "session_id": result.session_id,
                    "station_id": station_id,
                    "evse_number": req.evse_number,
                    "auth_status": result.decision.status.value,
                },
            )
        )
    return result


async def _existing_start(db: AsyncSession, station_id: str, key: str) -> ChargingSession | None:
    return (
        await db.execute(
            select(ChargingSession).where(
                ChargingSession.station_id == station_id, ChargingSession.start_key == key
            )
        )
    ).scalar_one_or_none()


async def _start_once(
    ctx: ServiceContext, station_id: str, req: StartRequest, key: str
) -> tuple[StartResult, list[int]]:
    async def job(db: AsyncSession) -> tuple[StartResult, list[int]]:
        existing = await _existing_start(db, station_id, key)
        if existing is not None:
            decision = AuthDecision(AuthStatus(existing.auth_status), "retransmitted start")
            verdict = TokenVerdict(decision, existing.token_id, None, None)
            return StartResult(existing.id, existing.transaction_id or str(existing.id), verdict, True), []
        superseded = await close_stale_sessions(db, ctx, station_id, req.evse_number, req.timestamp)
        evse = await ensure_evse(db, ctx, station_id, req.evse_number)
        session = ChargingSession(
            station_id=station_id,
            evse_pk=evse.id,
            evse_number=req.evse_number,
            connector_number=req.connector_number,
            transaction_id=req.transaction_id,
            start_key=key,
            token_uid=req.token_uid,
            auth_status="Pending",
            status=SessionStatus.ACTIVE,
            start_time=req.timestamp,
            meter_start_wh=req.meter_start_wh,
            meter_last_wh=req.meter_start_wh,
            reservation_id=req.reservation_id,
            remote_start_id=req.remote_start_id,
        )
        db.add(session)
        await db.flush()
        if session.transaction_id is None:
            session.transaction_id = str(session.id)
        verdict = await judge_token(
            db,
            ctx,
            station_id=station_id,
            uid=req.token_uid,
            connector_number=req.evse_number,
            kind="StartTransaction",
            starting=True,
            session_id=session.id,
        )
        session.auth_status = verdict.decision.status.value
        await link_remote_start(
            db, station_id, session, req.token_uid, req.timestamp, req.evse_number, req.remote_start_id
        )
        session.token_id = verdict.token_id
        await stamp_energy_contract(db, session, verdict.token_id)
        result = StartResult(session.id, session.transaction_id, verdict, False)
        return result, superseded

    return await ctx.write(job)


# A 1.6 station echoes no id: its start for the same token within this window, after our
# request (allowing for its clock running a little ahead), is the one we asked for.
_REMOTE_START_WINDOW = timedelta(minutes=10)
_REMOTE_START_SKEW = timedelta(minutes=2)


async def link_remote_start(
    db: AsyncSession,
    station_id: str,
    session: ChargingSession,
    token_uid: str,
    started_at: datetime,
    evse_number: int,
    remote_start_id: int | None,
) -> None:
    """Link the session to the remote start request that caused it: by the echoed
    remoteStartId (2.0.1), else by token, EVSE and time (1.6 echoes nothing)."""
    query = select(RemoteStart).where(RemoteStart.station_id == station_id, RemoteStart.session_id.is_(None))
    if remote_start_id is not None:
        query = query.where(RemoteStart.id == remote_start_id)
    else:
        query = (
            query.where(
                RemoteStart.token_uid == token_uid,
                RemoteStart.requested_at >= started_at - _REMOTE_START_WINDOW,
                RemoteStart.requested_at <= started_at + _REMOTE_START_SKEW,
                RemoteStart.answer.is_(None) | (RemoteStart.answer == "Accepted"),
                RemoteStart.evse_number.is_(None) | (RemoteStart.evse_number == evse_number),
            )
            .order_by(RemoteStart.requested_at.desc())
            .limit(1)
        )
    request = (await db.execute(query)).scalar_one_or_none()
    if request is not None:
        request.session_id = session.id
        session.remote_start_id = request.id


async def close_stale_sessions(
    db: AsyncSession,
    ctx: ServiceContext,
    station_id: str,
    evse_number: int,
    started_at: datetime,
    keep_transaction_id: str | None = None,
) -> list[int]:
    """A new start on a connector that still has a running session means the station lost
    the stop (power loss, reboot). Close the old one with what we know, and say so."""
    stale = (
        (
            await db.execute(
                select(ChargingSession).where(
                    ChargingSession.station_id == station_id,
                    ChargingSession.evse_number == evse_number,
                    ChargingSession.status == SessionStatus.ACTIVE,
                    ChargingSession.start_time <= started_at,
                    ChargingSession.transaction_id.is_distinct_from(keep_transaction_id),
                )
            )
        )
        .scalars()
        .all()
    )
    for old in stale:
        old.status = SessionStatus.COMPLETED
        old.stop_reason = SUPERSEDED
        old.stop_time = started_at
        old.meter_stop_wh = old.meter_last_wh
        old.energy_wh = session_energy_wh(old.meter_start_wh, old.meter_last_wh)
        station_event(
            db,
            station_id,
            "session_superseded",
            ctx.now(),
            session_id=old.id,
            evse_number=evse_number,
            reason="a new transaction started on the same EVSE",
        )
    return [old.id for old in stale]


@dataclass(frozen=True, slots=True)
class StopRequest:
    """A station reports that a transaction ended (1.6 StopTransaction, 2.0.1 Ended)."""

    transaction_id: str
    timestamp: datetime
    meter_stop_wh: int | None
    reason: str
    token_uid: str | None = None
    samples: list[SampledValue] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StopResult:
    session_id: int | None
    decision: AuthDecision | None
    duplicate: bool


async def stop(ctx: ServiceContext, station_id: str, req: StopRequest) -> StopResult:
    """Close a session. A stop for a transaction we do not know is kept as a station event
    (with its meter values) and answered normally: the station must not retry forever."""

    async def job(db: AsyncSession) -> tuple[StopResult, int | None]:
        session = await find_session(db, station_id, req.transaction_id)
        decision = None
        if req.token_uid:
            verdict = await judge_token(
                db,
                ctx,
                station_id=station_id,
                uid=req.token_uid,
                connector_number=None if session is None else session.evse_number,
                kind="StopTransaction",
                starting=False,
                session_id=None if session is None else session.id,
            )
            decision = verdict.decision
        if session is None:
            station_event(
                db,
                station_id,
                "stop_for_unknown_transaction",
                ctx.now(),
                transaction_id=req.transaction_id,
                meter_stop_wh=req.meter_stop_wh,
                reason=req.reason,
                timestamp=req.timestamp.isoformat(),
            )
            defer_samples(db, station_id, None, 0, 0, req.samples)
            return StopResult(None, decision, False), None
        if session.status == SessionStatus.COMPLETED and not correctable(session.stop_reason):
            return StopResult(session.id, decision, True), None
        if session.status == SessionStatus.COMPLETED:
            late_stop_corrects(db, ctx, session, req.reason, req.timestamp)
        defer_samples(db, station_id, session.id, session.evse_number, session.connector_number, req.samples)
        _apply_readings(session, req.samples)
        session.status = SessionStatus.COMPLETED
        session.stop_time = req.timestamp
        session.stop_reason = req.reason
        session.stop_token_uid = req.token_uid
        if req.meter_stop_wh is not None:
            session.meter_stop_wh = req.meter_stop_wh
            session.meter_last_wh = req.meter_stop_wh
        else:
            session.meter_stop_wh = session.meter_last_wh
        settle_energy(db, ctx, session)
        return StopResult(session.id, decision, False), session.energy_wh

    result, energy = await ctx.write(job)
    if result.session_id is not None and not result.duplicate:
        await ctx.bus.publish(
            Event(
                "session.stopped",
                {"session_id": result.session_id, "station_id": station_id, "energy_wh": energy},
            )
        )
    return result


def late_stop_corrects(
    db: AsyncSession, ctx: ServiceContext, session: ChargingSession, reason: str, stopped_at: datetime
) -> None:
    """The station's own stop of a session we had closed without it: the timeline says what we
    had assumed, before the stop's real end and reading replace it."""
    station_event(
        db,
        session.station_id,
        "session_stop_reported_late",
        ctx.now(),
        session_id=session.id,
        evse_number=session.evse_number,
        closed_as=session.stop_reason,
        assumed_stop=None if session.stop_time is None else session.stop_time.isoformat(),
        reported_stop=stopped_at.isoformat(),
        reason=reason,
    )


def settle_energy(db: AsyncSession, ctx: ServiceContext, session: ChargingSession) -> None:
    """A finished session's energy from its registers; a register that ran backwards (a
    swapped or reset meter) gives none, and the operator's timeline says why."""
    session.energy_wh = session_energy_wh(session.meter_start_wh, session.meter_stop_wh)
    if session.energy_wh is None and session.meter_stop_wh is not None:
        station_event(
            db,
            session.station_id,
            "meter_anomaly",
            ctx.now(),
            session_id=session.id,
            meter_start_wh=session.meter_start_wh,
            meter_stop_wh=session.meter_stop_wh,
        )


async def find_session(db: AsyncSession, station_id: str, transaction_id: str) -> ChargingSession | None:
    return (
        await db.execute(
            select(ChargingSession).where(
                ChargingSession.station_id == station_id,
                ChargingSession.transaction_id == transaction_id,
            )
        )
    ).scalar_one_or_none()


# Hot-path statements, built once: a MeterValues message costs two or three of them.
_S = ChargingSession
_SESSIONS = cast(Table, ChargingSession.__table__)
_LIGHT = (
    _S.id,
    _S.evse_number,
    _S.connector_number,
    _S.status,
    _S.stop_time,
    _S.meter_start_wh,
    _S.meter_last_wh,
)
_SESSION_BY_TX = select(*_LIGHT).where(
    _S.station_id == bindparam("b_station"), _S.transaction_id == bindparam("b_tx")
)
_SESSION_AT = (
    select(*_LIGHT)
    .where(
        _S.station_id == bindparam("b_station"),
        _S.evse_number == bindparam("b_evse"),
        _S.start_time <= bindparam("b_at"),
    )
    .order_by(_S.start_time.desc())
    .limit(1)
)
_UPDATE_READINGS = (
    _SESSIONS.update()
    .where(_SESSIONS.c.id == bindparam("b_id"))
    .values(meter_start_wh=bindparam("b_start"), meter_last_wh=bindparam("b_last"))
)
# A retransmitted sample hits ux_meter_values_sample and is skipped, also when two writers
# insert it at once; one statement per dialect, as each spells ON CONFLICT DO NOTHING itself.
_METER_VALUES = cast(Table, MeterValue.__table__)
_INSERT_METER_VALUES = {
    "postgresql": postgresql_insert(_METER_VALUES).on_conflict_do_nothing(),
    "sqlite": sqlite_insert(_METER_VALUES).on_conflict_do_nothing(),
}


async def _light_session_at(db: AsyncSession, station_id: str, evse_number: int, at: datetime) -> Any:
    """The session that ran on an EVSE at a given time: the running one, or a finished one
    whose period covers it (offline-queued values arrive after the stop)."""
    params = {"b_station": station_id, "b_evse": evse_number, "b_at": at + _START_TOLERANCE}
    row = (await db.execute(_SESSION_AT, params)).first()
    if row is None:
        return None
    if row.status == SessionStatus.ACTIVE or (row.stop_time is not None and at <= row.stop_time):
        return row
    return None


def defer_samples(
    db: AsyncSession,
    station_id: str,
    session_id: int | None,
    evse_number: int,
    connector_number: int,
    samples: list[SampledValue],
) -> None:
    """Queue the samples for the batch's one executemany INSERT (the hot path: no ORM objects);
    samples already stored (a retransmission) are skipped."""
    if not samples:
        return
    rows = [
        {
            "station_id": station_id,
            "session_id": session_id,
            "evse_number": evse_number,
            "connector_number": connector_number,
            "timestamp": s.timestamp,
            "measurand": s.measurand,
            "phase": s.phase,
            "unit": s.unit,
            "context": s.context,
            "location": s.location,
            "format": s.format,
            "value": s.value,
        }
        for s in samples
    ]
    defer(db, _INSERT_METER_VALUES[db.get_bind().dialect.name], rows)


def _apply_readings(session: ChargingSession, samples: list[SampledValue]) -> None:
    session.meter_start_wh, session.meter_last_wh = advance_readings(
        session.meter_start_wh, session.meter_last_wh, samples
    )


@dataclass(frozen=True, slots=True)
class MeterReport:
    """A MeterValues message, version-neutral."""

    evse_number: int
    connector_number: int
    transaction_id: str | None
    samples: list[SampledValue]


async def record_meter_values(ctx: ServiceContext, station_id: str, report: MeterReport) -> int | None:
    """Store every sampled value and link it to its session; returns the session id if any."""

    async def job(db: AsyncSession) -> tuple[int, int | None] | None:
        session: Any = None
        if report.transaction_id is not None:
            session = (
                await db.execute(
                    select(*_LIGHT).where(
                        _S.station_id == station_id, _S.transaction_id == report.transaction_id
                    )
                )
            ).first()
        if session is None and report.evse_number > 0 and report.samples:
            at = min(s.timestamp for s in report.samples)
            session = await _light_session_at(db, station_id, report.evse_number, at)
        if session is None:
            defer_samples(db, station_id, None, report.evse_number, report.connector_number, report.samples)
            return None
        defer_samples(
            db, station_id, session.id, session.evse_number, session.connector_number, report.samples
        )
        start, last = session.meter_start_wh, session.meter_last_wh
        if session.status == SessionStatus.ACTIVE:
            start, last = advance_readings(start, last, report.samples)
            if (start, last) != (session.meter_start_wh, session.meter_last_wh):
                defer(db, _UPDATE_READINGS, [{"b_id": session.id, "b_start": start, "b_last": last}])
        return session.id, session_energy_wh(start, last)

    linked = await ctx.write(job)
    if linked is None:
        return None
    session_id, energy = linked
    await ctx.bus.publish(
        Event("session.meter", {"session_id": session_id, "station_id": station_id, "energy_wh": energy})
    )
    return session_id


async def meter_values_of(
    ctx: ServiceContext, session_id: int, limit: int, *, after: int | None = None
) -> list[MeterValue]:
    """A session's meter values as the station sent them, oldest first (station time, then id),
    at most `limit`; `after` (a meter value id of this session) continues a key-set page."""
    async with ctx.db() as db:
        query = select(MeterValue).where(MeterValue.session_id == session_id)
        if after is not None:
            at = (
                await db.execute(
                    select(MeterValue.timestamp).where(
                        MeterValue.id == after, MeterValue.session_id == session_id
                    )
                )
            ).scalar_one_or_none()
            if at is None:
                raise Invalid(f"after {after} is not a meter value of session {session_id}")
            query = query.where(
                or_(MeterValue.timestamp > at, and_(MeterValue.timestamp == at, MeterValue.id > after))
            )
        query = query.order_by(MeterValue.timestamp, MeterValue.id).limit(limit)
        return list((await db.execute(query)).scalars())
