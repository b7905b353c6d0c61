"""Remote start and stop by an operator (requirement 75): intent audited, the station's answer returned."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import model_validator
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingSession, ChargingStation, RemoteStart, SessionStatus
from stekker.services.audit import audit, record_audit
from stekker.services.authorization import judge_token
from stekker.services.context import ServiceContext
from stekker.services.functions import ChargingProfile
from stekker.services.ports import CommandError, StationCommand, StationOffline


class RemoteStartProfile(ChargingProfile):
    """A charging profile sent with a remote start (1.6 RemoteStartTransaction.chargingProfile,
    2.0.1 RequestStartTransaction.chargingProfile), in the neutral shape of
    `set_charging_profile`. OCPP wants a TxProfile there, without a transaction id: the
    transaction does not exist yet."""

    @model_validator(mode="after")
    def _for_the_coming_transaction(self) -> RemoteStartProfile:
        if self.purpose != "TxProfile":
            raise ValueError("a remote start carries a TxProfile only (OCPP), not " + self.purpose)
        if self.transaction_id is not None:
            raise ValueError("a remote start's profile has no transaction_id: the station assigns it")
        return self


class RemoteRefused(Exception):
    """We refuse before asking the station; the message says why."""


class NotFound(Exception):
    """The station or session does not exist."""


@dataclass(frozen=True, slots=True)
class RemoteOutcome:
    """What the station said: Accepted or Rejected (the session itself follows its messages).
    `remote_start_id` is the recorded request of a remote start (see `RemoteStartState`)."""

    status: str
    station_id: str
    session_id: int | None = None
    remote_start_id: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteStartState:
    """A remote start as it stands: who asked, for which token and EVSE, what the station
    answered (None while it has not, or the error when the call failed), and the session it led
    to once the station began one (1.6 StartTransaction, 2.0.1 TransactionEvent)."""

    id: int
    station_id: str
    evse_number: int | None
    token_uid: str
    actor: str
    requested_at: datetime
    answer: str | None
    session_id: int | None


async def remote_start(
    ctx: ServiceContext,
    actor: str,
    station_id: str,
    token_uid: str,
    evse_number: int | None,
    *,
    vouched_by_emsp: bool = False,
    profile: RemoteStartProfile | None = None,
) -> RemoteOutcome:
    """Ask a station to start charging for a token. The token is checked first, so a blocked
    card is refused here with a reason rather than by the station without one.
    `vouched_by_emsp`: the token's own eMSP asked (OCPI START_SESSION), which is its real-time
    authorization of a token we may not decide on ourselves (whitelist NEVER).
    `profile`: the charging profile the station applies to the transaction it starts."""
    assert ctx.commands is not None
    commands = ctx.commands

    async def job(db: AsyncSession) -> tuple[bool, str | None, int | None, str | None]:
        station = await db.get(ChargingStation, station_id)
        if station is None:
            raise NotFound(f"no station {station_id!r}")
        verdict = await judge_token(
            db,
            ctx,
            station_id=station_id,
            uid=token_uid,
            connector_number=evse_number,
            kind="RemoteStart",
            starting=True,
            vouched=vouched_by_emsp,
        )
        refused = None if verdict.decision.accepted else f"token {token_uid}: {verdict.decision.reason}"
        if refused is None and not commands.is_connected(station_id):
            refused = f"station {station_id} is offline"
        audit(
            db,
            actor=actor,
            action="session.remote_start.requested",
            object_type="station",
            object_id=station_id,
            at=ctx.now(),
            result="refused" if refused else "sent",
            token_uid=token_uid,
            evse_number=evse_number,
            reason=refused,
            profile_id=None if profile is None else profile.id,
        )
        if refused is not None:
            return verdict.decision.accepted, refused, None, None
        request = RemoteStart(
            station_id=station_id,
            evse_number=evse_number,
            token_uid=token_uid,
            actor=actor,
            requested_at=ctx.now(),
        )
        db.add(request)
        await db.flush()
        return True, None, request.id, verdict.token_type

    accepted, refused, request_id, token_type = await ctx.write(job)
    if refused is not None:
        if not accepted:
            raise RemoteRefused(refused)
        raise StationOffline(refused)
    args: dict[str, Any] = {
        "id_tag": token_uid,
        "token_type": token_type,
        "evse_number": evse_number,
        "remote_start_id": request_id,
    }
    if profile is not None:
        args["profile"] = profile.model_dump(exclude_none=True)
    try:
        status = await _send_and_audit(
            ctx,
            actor,
            "session.remote_start",
            "station",
            station_id,
            station_id,
            StationCommand("remote_start", args),
        )
    except CommandError as exc:
        await _record_answer(ctx, request_id, type(exc).__name__)
        raise
    await _record_answer(ctx, request_id, status)
    return RemoteOutcome(status, station_id, remote_start_id=request_id)


async def remote_start_state(ctx: ServiceContext, remote_start_id: int) -> RemoteStartState:
    """The remote start with this id, and the session it led to so far."""
    async with ctx.db() as db:
        request = await db.get(RemoteStart, remote_start_id)
        if request is None:
            raise NotFound(f"no remote start {remote_start_id}")
        return RemoteStartState(
            id=request.id,
            station_id=request.station_id,
            evse_number=request.evse_number,
            token_uid=request.token_uid,
            actor=request.actor,
            requested_at=request.requested_at,
            answer=request.answer,
            session_id=request.session_id,
        )


# How often the wait looks at the database besides being woken by a session event: a 2.0.1
# session that began before its remoteStartId arrived is linked by a later event that
# announces no new session.
_SESSION_LOOK_INTERVAL = 0.25


async def wait_for_session(
    ctx: ServiceContext, remote_start_id: int, station_id: str, seconds: float
) -> int | None:
    """The session an accepted remote start led to, waiting at most `seconds` for the station to
    begin it; None when it has not begun by then (the station may still begin it later: the
    remote start's state says so). Woken by the station's session events, and looking every
    quarter second, so a session linked by any path is seen."""
    woken = asyncio.Event()

    async def on_session(event: Event) -> None:
        if event.data.get("station_id") == station_id:
            woken.set()

    unsubscribe = ctx.bus.subscribe("session.", on_session)  # before the first look: none is missed
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            state = await remote_start_state(ctx, remote_start_id)
            if state.session_id is not None:
                return state.session_id
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            woken.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(remaining, _SESSION_LOOK_INTERVAL))
    finally:
        unsubscribe()


async def _record_answer(ctx: ServiceContext, request_id: int | None, answer: str) -> None:
    async def job(db: AsyncSession) -> None:
        await db.execute(update(RemoteStart).where(RemoteStart.id == request_id).values(answer=answer[:32]))

    await ctx.write(job)


async def remote_stop(ctx: ServiceContext, actor: str, session_id: int) -> RemoteOutcome:
    """Ask the station running a session to stop it."""

    async def job(db: AsyncSession) -> tuple[str, str | None]:
        session = await db.get(ChargingSession, session_id)
        if session is None:
            raise NotFound(f"no session {session_id}")
        if session.status != SessionStatus.ACTIVE:
            raise RemoteRefused(f"session {session_id} is not running (it is {session.status})")
        audit(
            db,
            actor=actor,
            action="session.remote_stop.requested",
            object_type="session",
            object_id=session_id,
            at=ctx.now(),
            result="sent",
            station_id=session.station_id,
        )
        return session.station_id, session.transaction_id

    station_id, transaction_id = await ctx.write(job)
    command = StationCommand("remote_stop", {"transaction_id": transaction_id})
    status = await _send_and_audit(
        ctx, actor, "session.remote_stop", "session", session_id, station_id, command
    )
    return RemoteOutcome(status, station_id, session_id)


async def _send_and_audit(
    ctx: ServiceContext,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    station_id: str,
    command: StationCommand,
) -> str:
    assert ctx.commands is not None
    try:
        reply = await ctx.commands.send(station_id, command)
    except CommandError as exc:
        await record_audit(
            ctx,
            actor=actor,
            action=f"{action}.failed",
            object_type=object_type,
            object_id=object_id,
            result=type(exc).__name__,
            error=str(exc),
        )
        raise
    status = str(reply["status"])
    await record_audit(
        ctx,
        actor=actor,
        action=f"{action}.{status.lower()}",
        object_type=object_type,
        object_id=object_id,
        result=status,
    )
    return status
