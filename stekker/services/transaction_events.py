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
- an echoed remoteStartId links the session to our remote start, and when the station
  leaves the idToken out (2.0.1 F02 allows it) the remote start's token is the driver;
- only the newest event (highest seqNo) sets the charging state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingSession, RemoteStart, SessionStatus, TransactionEvent
from stekker.db.writer import defer
from stekker.domain.authorization import AuthDecision, AuthStatus
from stekker.domain.metering import SampledValue, advance_readings, latest_register_wh, session_energy_wh
from stekker.domain.session_closure import correctable
from stekker.services.authorization import TokenVerdict, find_token, judge_token
from stekker.services.context import ServiceContext
from stekker.services.stations import ensure_evse
from stekker.services.tokens import stamp_energy_contract
from stekker.services.transactions import (
    close_stale_sessions,
    defer_samples,
    find_session,
    late_stop_corrects,
    link_remote_start,
    settle_energy,
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
    if report.event_type == UPDATED and report.token_uid is None and report.reservation_id is None:
        outcome = await _apply_update(db, ctx, station_id, report)
        if outcome is not None:
            return outcome
    outcome = _Outcome(TransactionEventResult(0, False, None, False))
    highest_seq = None
    session = await find_session(db, station_id, report.transaction_id)
    if session is None:  # every stored event belongs to a session: this is the first one
        session = await _open_session(db, ctx, station_id, report)
        outcome.created = True
    else:
        facts = (await db.execute(_SEQ_FACTS, _seq_params(station_id, report))).one()
        if facts.seen:
            return _Outcome(await _retransmission(db, session.id, report))
        highest_seq = facts.highest_seq
        # a late Started (or any earlier event) moves the start back
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

    if report.remote_start_id is not None and session.remote_start_id is None:
        await _link_echoed_remote_start(db, station_id, session, report)
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
    # a session we closed without the station's word (Superseded, station_rebooted, ...) takes its real end
    reopenable = session.status == SessionStatus.ACTIVE or correctable(session.stop_reason)
    if report.event_type == ENDED and reopenable:
        if session.status == SessionStatus.COMPLETED:
            late_stop_corrects(db, ctx, session, report.stopped_reason or "Local", report.timestamp)
        session.status = SessionStatus.COMPLETED
        session.stop_time = report.timestamp
        session.stop_reason = report.stopped_reason or "Local"
        # the station's end reading is the end, even below what we saw (a swapped meter)
        end = latest_register_wh([s for s in report.samples if s.context == "Transaction.End"])
        if end is not None:
            session.meter_last_wh = end[1]
        session.meter_stop_wh = session.meter_last_wh
        outcome.ended = True
    if outcome.ended:
        settle_energy(db, ctx, session)
    elif session.status == SessionStatus.COMPLETED:  # a late event may have moved the start
        session.energy_wh = session_energy_wh(session.meter_start_wh, session.meter_stop_wh)
    outcome.energy_wh = session_energy_wh(session.meter_start_wh, session.meter_last_wh)

    _defer_event(db, ctx, station_id, session.id, report)
    refused = (
        verdict is not None
        and session.stop_token_uid is None
        and session.token_uid == report.token_uid
        and not verdict.decision.accepted
        and session.status == SessionStatus.ACTIVE
    )
    outcome.result = TransactionEventResult(session.id, False, verdict, refused)
    return outcome


async def _link_echoed_remote_start(
    db: AsyncSession, station_id: str, session: ChargingSession, report: TransactionEventReport
) -> None:
    """The echoed remoteStartId names our request whether or not the event carries a token.
    Without a token (2.0.1 F02: the station may leave it out after RequestStartTransaction)
    the request's token is the driver, Accepted as it was when we sent the remote start;
    otherwise the session has no driver, no party and a CDR no eMSP receives."""
    await link_remote_start(
        db,
        station_id,
        session,
        report.token_uid or "",
        session.start_time,
        session.evse_number,
        report.remote_start_id,
    )
    if session.remote_start_id is None or session.token_uid is not None or report.token_uid is not None:
        return  # not ours, or the token is known (or judged below from this event)
    request = await db.get(RemoteStart, session.remote_start_id)
    assert request is not None
    token = await find_token(db, request.token_uid)
    session.token_uid = request.token_uid
    session.token_id = None if token is None else token.id
    session.auth_status = AuthStatus.ACCEPTED.value
    await stamp_energy_contract(db, session, session.token_id)


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
        await stamp_energy_contract(db, session, verdict.token_id)
        session.id_token_type = report.token_type
        session.auth_status = verdict.decision.status.value
    return verdict


def _readings(
    start: int | None, last: int | None, samples: list[SampledValue]
) -> tuple[int | None, int | None]:
    """Move the registers forward; the station's Transaction.Begin reading is the start,
    also when an Updated arrived before it and provisionally set one."""
    start, last = advance_readings(start, last, samples)
    begin = latest_register_wh([s for s in samples if s.context == "Transaction.Begin"])
    return (start if begin is None else begin[1]), last


def _merge_readings(session: ChargingSession, report: TransactionEventReport) -> None:
    start, last = _readings(session.meter_start_wh, session.meter_last_wh, report.samples)
    session.meter_start_wh = start
    if session.status == SessionStatus.COMPLETED and not correctable(session.stop_reason):
        # a late event of a finished session: its end reading stays, unless it never had one
        # (one we closed without the station's word keeps counting until the station's Ended)
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


# ---- the hot path: an Updated event of a running session, without a token ------------------
# It is most of what a 2.0.1 fleet sends (one every TxUpdatedInterval per charging EVSE), so
# it costs one round trip: the session's readings, the highest seqNo so far and whether this
# seqNo was seen, in one SELECT; the writes ride the batch's executemany.

_S = ChargingSession
_E = TransactionEvent
_EVENTS = cast(Table, TransactionEvent.__table__)
_SESSIONS = cast(Table, ChargingSession.__table__)
_SEQ_FACTS = select(
    func.max(_E.seq_no).label("highest_seq"),
    func.count(case((_E.seq_no == bindparam("b_seq"), 1))).label("seen"),
).where(_E.station_id == bindparam("b_station"), _E.transaction_id == bindparam("b_tx"))


def _seq_params(station_id: str, report: TransactionEventReport) -> dict[str, Any]:
    return {"b_station": station_id, "b_tx": report.transaction_id, "b_seq": report.seq_no}


_RUNNING_UPDATE = select(
    _S.id,
    _S.evse_pk,
    _S.evse_number,
    _S.connector_number,
    _S.status,
    _S.meter_start_wh,
    _S.meter_last_wh,
    _S.charging_state,
    _S.offline,
    select(func.max(_E.seq_no))
    .where(_E.station_id == _S.station_id, _E.transaction_id == _S.transaction_id)
    .scalar_subquery()
    .label("highest_seq"),
    select(func.count())
    .where(
        _E.station_id == _S.station_id,
        _E.transaction_id == _S.transaction_id,
        _E.seq_no == bindparam("b_seq"),
    )
    .scalar_subquery()
    .label("seen"),
).where(_S.station_id == bindparam("b_station"), _S.transaction_id == bindparam("b_tx"))
_SET_RUNNING = (
    _SESSIONS.update()
    .where(_SESSIONS.c.id == bindparam("b_id"))
    .values(
        meter_start_wh=bindparam("b_start"),
        meter_last_wh=bindparam("b_last"),
        charging_state=bindparam("b_state"),
        offline=bindparam("b_offline"),
        updated_at=bindparam("b_now"),
    )
)
_INSERT_EVENT = insert(_EVENTS)


def _defer_event(
    db: AsyncSession, ctx: ServiceContext, station_id: str, session_id: int, report: TransactionEventReport
) -> None:
    row = {
        "station_id": station_id,
        "transaction_id": report.transaction_id,
        "seq_no": report.seq_no,
        "event_type": report.event_type,
        "trigger_reason": report.trigger_reason,
        "timestamp": report.timestamp,
        "offline": report.offline,
        "session_id": session_id,
        "payload": report.payload,
        "received_at": ctx.now(),
    }
    defer(db, _INSERT_EVENT, [row])


async def _apply_update(
    db: AsyncSession, ctx: ServiceContext, station_id: str, report: TransactionEventReport
) -> _Outcome | None:
    """The Updated event applied without the ORM; None when it needs the general path
    (no such session yet, a finished one, or an EVSE still to be learnt)."""
    row = (await db.execute(_RUNNING_UPDATE, _seq_params(station_id, report))).first()
    if row is None or row.status != SessionStatus.ACTIVE or (report.evse_number and row.evse_pk is None):
        return None
    if row.seen:
        return _Outcome(TransactionEventResult(row.id, True, None, False))
    start, last = _readings(row.meter_start_wh, row.meter_last_wh, report.samples)
    state = row.charging_state
    if row.highest_seq is None or report.seq_no > row.highest_seq:
        state = report.charging_state or state
    offline = bool(row.offline or report.offline)
    if (start, last, state, offline) != (
        row.meter_start_wh,
        row.meter_last_wh,
        row.charging_state,
        row.offline,
    ):
        values = {"b_id": row.id, "b_start": start, "b_last": last, "b_state": state, "b_offline": offline}
        defer(db, _SET_RUNNING, [{**values, "b_now": ctx.now()}])
    defer_samples(db, station_id, row.id, row.evse_number, row.connector_number, report.samples)
    _defer_event(db, ctx, station_id, row.id, report)
    outcome = _Outcome(TransactionEventResult(row.id, False, None, False))
    outcome.energy_wh = session_energy_wh(start, last)
    return outcome
