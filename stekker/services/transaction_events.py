"""OCPP 2.0.1/2.1 TransactionEvents applied to the same sessions as 1.6 Start/StopTransaction.

A 2.0.1 transaction is a stream of events (Started, Updated..., Ended) keyed by the
station's transaction id and numbered by seqNo. Each event is stored as sent, once: a
retransmission (same station, transaction and seqNo) changes nothing. Events may arrive
out of order or long after the fact (an offline queue), so every event is merged into the
session rather than assumed to follow the previous one:

- the session exists from the first event that arrives, whichever it is;
- the start time is the earliest event time, the begin register the station's
  Transaction.Begin reading (never 0), the end the Ended event's;
- the token is the first idToken seen; a later, different one (or any in Ended) is the
  token that stopped it;
- only the newest event (highest seqNo) sets the charging state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingSession, SessionStatus, TransactionEvent
from stekker.domain.authorization import AuthDecision, AuthStatus
from stekker.domain.metering import SampledValue, advance_readings, latest_register_wh, session_energy_wh
from stekker.services.audit import station_event
from stekker.services.authorization import TokenVerdict, judge_token
from stekker.services.context import ServiceContext
from stekker.services.stations import ensure_evse
from stekker.services.transactions import (
    close_stale_sessions,
    defer_samples,
    find_session,
    link_remote_start,
)

STARTED = "Started"
UPDATED = "Updated"
ENDED = "Ended"

# Trigger reasons with which a station reports the token that ends a transaction.
_STOP_TRIGGERS = frozenset({"StopAuthorized"})


@dataclass(frozen=True, slots=True)
class TransactionEventReport:
    """One TransactionEvent, with the fields the domain uses read out of the payload."""

    event_type: str
    transaction_id: str
    seq_no: int
    trigger_reason: str
    timestamp: datetime
    offline: bool = False
    evse_number: int | None = None
    connector_number: int | None = None
    token_uid: str | None = None
    token_type: str | None = None
    remote_start_id: int | None = None
    reservation_id: int | None = None
    charging_state: str | None = None
    stopped_reason: str | None = None
    samples: list[SampledValue] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TransactionEventResult:
    """What to answer: the decision on the event's idToken (if it carried one), and whether
    a running session now rests on a token we refused (the station must stop it)."""

    session_id: int
    duplicate: bool
    verdict: TokenVerdict | None
    refused_while_running: bool


@dataclass(slots=True)
class _Outcome:
    result: TransactionEventResult
    created: bool = False
    ended: bool = False
    energy_wh: int | None = None
    superseded: list[int] = field(default_factory=list)


async def apply_event(
    ctx: ServiceContext, station_id: str, report: TransactionEventReport
) -> TransactionEventResult:
    """Store the event and merge it into its session, in one transaction."""

    async def job(db: AsyncSession) -> _Outcome:
        return await _apply(db, ctx, station_id, report)

    outcome = await ctx.write(job)
    result = outcome.result
    if result.duplicate:
        return result
    for old in outcome.superseded:
        await ctx.bus.publish(Event("session.stopped", {"session_id": old, "station_id": station_id}))
    if outcome.created:
        await ctx.bus.publish(
            Event(
                "session.started",
                {
                    "session_id": result.session_id,
                    "station_id": station_id,
                    "evse_number": report.evse_number,
                    "auth_status": None if result.verdict is None else result.verdict.decision.status.value,
                },
            )
        )
    if outcome.ended:
        await ctx.bus.publish(
            Event(
                "session.stopped",
                {"session_id": result.session_id, "station_id": station_id, "energy_wh": outcome.energy_wh},
            )
        )
    elif report.samples:
        await ctx.bus.publish(
            Event(
                "session.meter",
                {"session_id": result.session_id, "station_id": station_id, "energy_wh": outcome.energy_wh},
            )
        )
    return result


async def _apply(
    db: AsyncSession, ctx: ServiceContext, station_id: str, report: TransactionEventReport
) -> _Outcome:
    stored = (
        await db.execute(
            select(TransactionEvent.session_id).where(
                TransactionEvent.station_id == station_id,
                TransactionEvent.transaction_id == report.transaction_id,
                TransactionEvent.seq_no == report.seq_no,
            )
        )
    ).first()
    if stored is not None and stored.session_id is not None:
        return _Outcome(await _retransmission(db, stored.session_id, report))

    highest_seq = (
        await db.execute(
            select(func.max(TransactionEvent.seq_no)).where(
                TransactionEvent.station_id == station_id,
                TransactionEvent.transaction_id == report.transaction_id,
            )
        )
    ).scalar_one()
    outcome = _Outcome(TransactionEventResult(0, False, None, False))
    session = await find_session(db, station_id, report.transaction_id)
    if session is None:
        session = await _open_session(db, ctx, station_id, report)
        outcome.created = True
    elif report.event_type == STARTED or report.timestamp < session.start_time:
        session.start_time = min(session.start_time, report.timestamp)
    if report.evse_number and session.evse_pk is None:
        evse = await ensure_evse(db, ctx, station_id, report.evse_number)
        session.evse_pk, session.evse_number = evse.id, report.evse_number
        session.connector_number = report.connector_number or 1
    if report.event_type == STARTED and session.evse_number:
        outcome.superseded = await close_stale_sessions(
            db,
            ctx,
            station_id,
            session.evse_number,
            report.timestamp,
            keep_transaction_id=session.transaction_id,
        )
    session.offline = session.offline or report.offline
    if report.reservation_id is not None:
        session.reservation_id = report.reservation_id
    if highest_seq is None or report.seq_no > highest_seq:
        session.charging_state = report.charging_state or session.charging_state

    verdict = await _judge_event_token(db, ctx, station_id, session, report)
    if report.token_uid is not None and session.remote_start_id is None:
        await link_remote_start(
            db,
            station_id,
            session,
            report.token_uid,
            session.start_time,
            session.evse_number,
            report.remote_start_id,
        )

    defer_samples(db, station_id, session.id, session.evse_number, session.connector_number, report.samples)
    _merge_readings(session, report)
    reopenable = session.status == SessionStatus.ACTIVE or session.stop_reason == "Superseded"
    if report.event_type == ENDED and reopenable:
        session.status = SessionStatus.COMPLETED
        session.stop_time = report.timestamp
        session.stop_reason = report.stopped_reason or "Local"
        # the station's end reading is the end, even below what we saw (a swapped meter)
        end = latest_register_wh([s for s in report.samples if s.context == "Transaction.End"])
        if end is not None:
            session.meter_last_wh = end[1]
        session.meter_stop_wh = session.meter_last_wh
        outcome.ended = True
    if session.status == SessionStatus.COMPLETED:
        session.energy_wh = session_energy_wh(session.meter_start_wh, session.meter_stop_wh)
        if outcome.ended and session.energy_wh is None and session.meter_stop_wh is not None:
            station_event(
                db,
                station_id,
                "meter_anomaly",
                ctx.now(),
                session_id=session.id,
                meter_start_wh=session.meter_start_wh,
                meter_stop_wh=session.meter_stop_wh,
            )
    outcome.energy_wh = session_energy_wh(session.meter_start_wh, session.meter_last_wh)

    db.add(
        TransactionEvent(
            station_id=station_id,
            transaction_id=report.transaction_id,
            seq_no=report.seq_no,
            event_type=report.event_type,
            trigger_reason=report.trigger_reason,
            timestamp=report.timestamp,
            offline=report.offline,
            session_id=session.id,
            payload=report.payload,
            received_at=ctx.now(),
        )
    )
    refused = (
        verdict is not None
        and session.stop_token_uid is None
        and session.token_uid == report.token_uid
        and not verdict.decision.accepted
        and session.status == SessionStatus.ACTIVE
    )
    outcome.result = TransactionEventResult(session.id, False, verdict, refused)
    return outcome


async def _open_session(
    db: AsyncSession, ctx: ServiceContext, station_id: str, report: TransactionEventReport
) -> ChargingSession:
    """The session, created by whichever of its events arrives first. Without an EVSE (an
    Updated overtaking its Started) it waits for the EVSE rather than losing the event."""
    evse_pk = None
    if report.evse_number:
        evse_pk = (await ensure_evse(db, ctx, station_id, report.evse_number)).id
    session = ChargingSession(
        station_id=station_id,
        evse_pk=evse_pk,
        evse_number=report.evse_number or 0,
        connector_number=report.connector_number or (1 if report.evse_number else 0),
        transaction_id=report.transaction_id,
        start_key=f"tx|{report.transaction_id}",
        auth_status="Pending",
        status=SessionStatus.ACTIVE,
        start_time=report.timestamp,
        offline=report.offline,
    )
    db.add(session)
    await db.flush()
    return session


async def _judge_event_token(
    db: AsyncSession,
    ctx: ServiceContext,
    station_id: str,
    session: ChargingSession,
    report: TransactionEventReport,
) -> TokenVerdict | None:
    """Decide on the event's idToken: the session's start token the first time one is seen,
    otherwise the token that ends it."""
    uid = report.token_uid
    if uid is None:
        return None
    stopping = (
        report.event_type == ENDED
        or report.trigger_reason in _STOP_TRIGGERS
        or (session.token_uid is not None and session.token_uid != uid)
    )
    if not stopping and session.token_uid == uid and session.auth_status != "Pending":
        # the same token again (e.g. in Updated events): our decision stands
        return TokenVerdict(
            AuthDecision(AuthStatus(session.auth_status), "decided earlier in this transaction"),
            session.token_id,
            None,
            None,
        )
    verdict = await judge_token(
        db,
        ctx,
        station_id=station_id,
        uid=uid,
        connector_number=session.evse_number or None,
        kind="TransactionEvent",
        starting=not stopping,
        session_id=session.id,
    )
    if stopping:
        if session.token_uid is None:  # the start token never reached us: this is the best we know
            session.token_uid = uid
        session.stop_token_uid = uid
    else:
        session.token_uid = uid
        session.token_id = verdict.token_id
        session.id_token_type = report.token_type
        session.auth_status = verdict.decision.status.value
    return verdict


def _merge_readings(session: ChargingSession, report: TransactionEventReport) -> None:
    """Move the registers forward; the station's Transaction.Begin reading is the start,
    also when an Updated arrived before it and provisionally set one."""
    start, last = advance_readings(session.meter_start_wh, session.meter_last_wh, report.samples)
    begin = latest_register_wh([s for s in report.samples if s.context == "Transaction.Begin"])
    if begin is not None:
        start = begin[1]
    session.meter_start_wh = start
    if session.status == SessionStatus.COMPLETED:
        # a late event of a finished session: its end reading stays, unless it never had one
        if session.meter_stop_wh is None and last is not None:
            session.meter_stop_wh = session.meter_last_wh = last
        return
    session.meter_last_wh = last


async def _retransmission(
    db: AsyncSession, session_id: int, report: TransactionEventReport
) -> TransactionEventResult:
    """The same event again: answer as before, change nothing."""
    session = await db.get(ChargingSession, session_id)
    assert session is not None
    verdict = None
    if report.token_uid is not None:
        status = session.auth_status if session.token_uid == report.token_uid else "Accepted"
        known = status in AuthStatus.__members__.values()
        decision = AuthDecision(AuthStatus(status) if known else AuthStatus.INVALID, "retransmitted event")
        verdict = TokenVerdict(decision, session.token_id, None, None)
    return TransactionEventResult(session_id, True, verdict, False)
