"""When a station (re)connects, learn which of the sessions we think are running really run.

A restart of Stekker, a power cut at a station or a lost StopTransaction leaves sessions
"active" that ended long ago. So each time a station connects with sessions open here:

- it boots (BootNotification): an OCPP 1.6 station's transactions ended with the reboot, so
  they are closed at once (`station_rebooted`), before the boot is answered, so that the stops
  it then sends from its offline queue come after and correct them; a 2.0.1 station may resume
  its transactions, so it is asked (GetTransactionStatus) once the boot is answered;
- it reconnects without booting (none within `reconcile_boot_wait` seconds): a 2.0.1 station
  is asked GetTransactionStatus for each open transaction; a 1.6 station is asked to send the
  StatusNotification of each connector with an open session (TriggerMessage), and the state it
  reports says whether the transaction runs (`stekker.domain.session_closure`).

What is not running is closed (`not_reported_by_station` without a boot) at the last moment we
know it ran (its latest meter value, else its start) with its last reading, the station's
timeline says so (`session_reconciled`), and its CDR follows as for any stop. A transaction the
station still runs, or whose end it still has queued, is left alone; so is every session when
the station cannot be asked (offline, no answer, an answer that says nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingSession, MeterValue, SessionStatus, StatusHistory
from stekker.domain.metering import session_energy_wh
from stekker.domain.session_closure import ClosedBecause, connector_runs_transaction, transaction_has_ended
from stekker.services.audit import station_event
from stekker.services.context import ServiceContext
from stekker.services.ports import CommandError, StationCommand
from stekker.services.reboots import wait_for_boot

log = logging.getLogger(__name__)

OCPP16 = "ocpp1.6"

# How often we look for the StatusNotification a TriggerMessage asked for (the status event
# wakes us sooner; it only fires when the status changed).
_STATUS_POLL = 0.2


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A session we think runs at a station: what we need to ask the station about it."""

    id: int
    transaction_id: str | None
    evse_number: int


async def open_sessions(ctx: ServiceContext, station_id: str) -> list[OpenSession]:
    """The station's sessions that are active here, oldest first."""
    async with ctx.db() as db:
        rows = await db.execute(
            select(ChargingSession.id, ChargingSession.transaction_id, ChargingSession.evse_number)
            .where(ChargingSession.station_id == station_id, ChargingSession.status == SessionStatus.ACTIVE)
            .order_by(ChargingSession.id)
        )
        return [OpenSession(r.id, r.transaction_id, r.evse_number) for r in rows]


async def _last_sign_of_life(db: AsyncSession, session: ChargingSession) -> datetime:
    """When we last knew the session ran: its latest meter value, else its start."""
    latest = await db.scalar(
        select(func.max(MeterValue.timestamp)).where(MeterValue.session_id == session.id)
    )
    return session.start_time if latest is None or latest < session.start_time else latest


async def close_not_running(
    ctx: ServiceContext,
    station_id: str,
    session_ids: list[int],
    reason: ClosedBecause,
    **evidence: Any,
) -> list[int]:
    """Close the sessions (those still active) as not running, for `reason`; returns the ids closed."""
    if not session_ids:
        return []
    now = ctx.now()

    async def job(db: AsyncSession) -> list[int]:
        closed = []
        for session_id in session_ids:
            session = await db.get(ChargingSession, session_id)
            if session is None or session.station_id != station_id or session.status != SessionStatus.ACTIVE:
                continue  # its own stop came meanwhile
            session.status = SessionStatus.COMPLETED
            session.stop_reason = reason.value
            session.stop_time = await _last_sign_of_life(db, session)
            session.meter_stop_wh = session.meter_last_wh
            session.energy_wh = session_energy_wh(session.meter_start_wh, session.meter_last_wh)
            station_event(
                db,
                station_id,
                "session_reconciled",
                now,
                session_id=session.id,
                evse_number=session.evse_number,
                transaction_id=session.transaction_id,
                reason=reason.value,
                assumed_stop=session.stop_time.isoformat(),
                **evidence,
            )
            closed.append(session.id)
        return closed

    closed = await ctx.write(job)
    for session_id in closed:
        log.info("%s: session %s closed: %s", station_id, session_id, reason.value)
        await ctx.bus.publish(Event("session.stopped", {"session_id": session_id, "station_id": station_id}))
    return closed


async def station_booted(
    ctx: ServiceContext, station_id: str, protocol: str
) -> Callable[[], Awaitable[None]] | None:
    """A station booted. 1.6: its open sessions ended with the reboot and are closed now (before
    the boot is answered). 2.0.1 and later: the work that asks it, to run once the boot is answered."""
    sessions = await open_sessions(ctx, station_id)
    if not sessions:
        return None
    if protocol == OCPP16:
        await close_not_running(
            ctx,
            station_id,
            [s.id for s in sessions],
            ClosedBecause.STATION_REBOOTED,
            evidence="BootNotification",
        )
        return None

    async def ask() -> None:
        await check_transactions(ctx, station_id, ClosedBecause.STATION_REBOOTED)

    return ask


async def after_connect(
    ctx: ServiceContext, station_id: str, protocol: str, connected_at: datetime, boot_wait: float
) -> None:
    """A station connected: if sessions are open here and it does not boot within `boot_wait`
    seconds (a boot is handled by `station_booted`), ask it what still runs."""
    if not await open_sessions(ctx, station_id):
        return
    if await wait_for_boot(ctx, station_id, connected_at, boot_wait):
        return
    if protocol == OCPP16:
        await check_connectors(ctx, station_id)
    else:
        await check_transactions(ctx, station_id, ClosedBecause.NOT_REPORTED_BY_STATION)


async def _ask(ctx: ServiceContext, station_id: str, command: StationCommand) -> dict[str, Any] | None:
    assert ctx.commands is not None
    try:
        return await ctx.commands.send(station_id, command)
    except CommandError as exc:
        log.info("%s: cannot reconcile its sessions now (%s: %s)", station_id, command.name, exc)
        return None


async def check_transactions(ctx: ServiceContext, station_id: str, reason: ClosedBecause) -> list[int]:
    """2.0.1: GetTransactionStatus for each open transaction; close those the station says are
    over with nothing of them left in its queue. Returns the ids closed."""
    closed: list[int] = []
    for session in await open_sessions(ctx, station_id):
        if session.transaction_id is None:
            continue
        reply = await _ask(
            ctx,
            station_id,
            StationCommand("get_transaction_status", {"transaction_id": session.transaction_id}),
        )
        if reply is None:
            return closed  # offline or not answering: the next connect asks again
        if transaction_has_ended(reply.get("ongoing"), bool(reply.get("messages_in_queue"))):
            closed += await close_not_running(
                ctx, station_id, [session.id], reason, evidence="GetTransactionStatus", ongoing=False
            )
    return closed


async def check_connectors(ctx: ServiceContext, station_id: str) -> list[int]:
    """1.6 without a boot: the state of each connector with an open session, fresh from the
    station (TriggerMessage StatusNotification); close the sessions of connectors whose state has
    no transaction running. Returns the ids closed."""
    by_connector: dict[int, list[int]] = {}
    for session in await open_sessions(ctx, station_id):
        by_connector.setdefault(session.evse_number, []).append(session.id)
    closed: list[int] = []
    for connector, session_ids in sorted(by_connector.items()):
        status = await _fresh_status(ctx, station_id, connector)
        if status is None or connector_runs_transaction(status) is not False:
            continue
        closed += await close_not_running(
            ctx,
            station_id,
            session_ids,
            ClosedBecause.NOT_REPORTED_BY_STATION,
            evidence="StatusNotification",
            connector_status=status,
        )
    return closed


async def _fresh_status(ctx: ServiceContext, station_id: str, connector: int) -> str | None:
    """The status the connector reports after we ask for it; None when it does not within the
    call timeout (or refuses to)."""
    asked_at = ctx.now()
    woke = asyncio.Event()

    async def on_status(event: Event) -> None:
        if event.data.get("station_id") == station_id and event.data.get("evse_number") == connector:
            woke.set()

    unsubscribe = ctx.bus.subscribe("station.status", on_status)
    try:
        reply = await _ask(
            ctx,
            station_id,
            StationCommand("trigger_message", {"message": "StatusNotification", "evse_number": connector}),
        )
        if reply is None or reply.get("status") != "Accepted":
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ctx.settings.call_timeout
        while True:
            woke.clear()
            status = await _status_since(ctx, station_id, connector, asked_at)
            if status is not None:
                return status
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woke.wait(), min(remaining, _STATUS_POLL))
    finally:
        unsubscribe()


async def _status_since(ctx: ServiceContext, station_id: str, connector: int, since: datetime) -> str | None:
    async with ctx.db() as db:
        status: str | None = await db.scalar(
            select(StatusHistory.status)
            .where(
                StatusHistory.station_id == station_id,
                StatusHistory.evse_number == connector,
                StatusHistory.received_at >= since,
            )
            .order_by(StatusHistory.id.desc())
            .limit(1)
        )
        return status
