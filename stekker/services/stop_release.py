"""Stop and release (requirement 152): one action by a helpdesk agent that ends a driver's
session and frees the plug, even at a half-broken station.

The flow escalates only as far as needed: remote stop → wait for the stop → unlock the
connector → check; if the plug is still held: soft reset → wait for the restart → unlock →
check; then the same with a hard reset. Every step records its status, times and the
station's answer, and is audited with the agent as actor. The whole flow is bounded in time
and never waits for an offline station. Flows live in memory (the console polls them while
they run); the audit log is the lasting record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from stekker.bus import Event
from stekker.db.models import ChargingSession, ChargingStation, Connector, Evse, SessionStatus
from stekker.services import remote
from stekker.services.audit import record_audit
from stekker.services.context import ServiceContext
from stekker.services.device_model import UnknownStation
from stekker.services.functions import FUNCTIONS, InvalidArguments, run_function
from stekker.services.helpdesk import BUSY_STATUSES
from stekker.services.ports import (
    CommandError,
    CommandNotSupported,
    CommandTimeout,
    StationCommand,
    StationOffline,
)
from stekker.services.remote import NotFound, RemoteRefused

log = logging.getLogger(__name__)

_POLL = 0.25  # seconds between database checks while waiting (the bus wakes us sooner)


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class FlowStatus(StrEnum):
    RUNNING = "running"
    RELEASED = "released"  # the session is stopped and the connector unlocked
    FAILED = "failed"  # every remote means was tried (or the station is offline)
    TIMED_OUT = "timed_out"  # the flow's time bound ran out


class FlowAlreadyRunning(Exception):
    """A stop-and-release is already running for that connector."""


@dataclass(frozen=True, slots=True)
class FlowTiming:
    """How long each wait may take, in seconds. `total` bounds the whole flow."""

    total: float = 180.0
    stop_wait: float = 30.0
    settle: float = 5.0  # after an unlock: for the session to end and the status to follow
    boot_wait: float = 60.0
    call_timeout: float | None = None  # None: the gateway's call_timeout


#: The timing new flows get; tests and deployments may replace it.
DEFAULT_TIMING = FlowTiming()


@dataclass
class Step:
    """One step of the flow as the agent sees it: what, how it went, and what the station said."""

    name: str
    title: str
    status: StepStatus = StepStatus.PENDING
    started_at: datetime | None = None
    ended_at: datetime | None = None
    answer: str | None = None  # the station's answer (Accepted, Unlocked, ...) when there is one
    notes: list[Note] = field(default_factory=list)  # what it found, or why it was skipped

    @property
    def message(self) -> str | None:
        """The notes in plain (English) words, as the API gives them."""
        return "; ".join(note.text for note in self.notes) or None


#: What a step found or why it was skipped, and how a flow ended, by code; the English is what
#: the API says, the console says the code in the reader's language (`w_hd_<code>`).
_ENGLISH: dict[str, str] = {
    "not_needed": "not needed",
    "no_session": "no session is running on this connector",
    "already_ended": "the session had already ended",
    "refused": "{error}",
    "stop_not_taken": "the station did not take the stop",
    "answered": "the station answered {answer}",
    "stop_accepted": "the station accepted the stop",
    "session_ended": "the station ended the session",
    "still_running_after": "the session was still running after {seconds} s",
    "unlocked": "the station unlocked the connector",
    "free": "no session runs and the connector is unlocked",
    "not_unlocked": "the connector was not unlocked ({answer})",
    "not_unlocked_no_answer": "the connector was not unlocked (no answer)",
    "session_still_running": "session {session} is still running",
    "connector_reports": "the connector still reports {status}",
    "reset_not_accepted": "the station did not accept the {kind} reset",
    "reset_not_sent": "the reset was not sent",
    "reset_accepted": "the station accepted the {kind} reset ({answer})",
    "restarted": "the station restarted and is back online",
    "not_restarted": "the station did not restart within {seconds} s",
    "offline": "the station is offline",
    "no_reply": "the station did not answer: {error}",
    "not_possible": "not possible with this station: {error}",
    "command_failed": "{error}",
    "shutdown": "the server shut down",
    "time_up": "the flow's time bound of {seconds} s ran out",
    "internal": "internal error: {error}",
    "how_unlocked": "the session is stopped and the connector unlocked",
    "how_after_reset": "released after a {kind} reset",
    "outcome_released": "Released: {how}. The driver can take the cable out.",
    "outcome_gave_up": (
        "Gave up after {seconds} s: the plug may still be held. Check the steps; send a technician if it is."
    ),
    "outcome_shutdown": "The server shut down during the flow: check the station before trying again.",
    "outcome_offline": (
        "Station {station} is offline: it cannot be stopped or unlocked remotely. The driver can try "
        "the card at the station; otherwise send a technician."
    ),
    "outcome_internal": "The flow stopped on an internal error: {error}",
    "outcome_exhausted": (
        "Every remote means was tried and the plug still seems held. Send a technician; "
        "the steps show what the station answered."
    ),
}


@dataclass(frozen=True, slots=True)
class Note:
    """Something a flow says to the agent, as a code with its values (an answer, a reset kind,
    seconds, another note), so each reader gets it in their language; `text` is the English."""

    code: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        shown = {name: v.text if isinstance(v, Note) else v for name, v in self.values.items()}
        return _ENGLISH[self.code].format(**shown)


_PLAN: list[tuple[str, str]] = [
    ("remote_stop", "Ask the station to stop the session"),
    ("wait_for_stop", "Wait for the station to end the session"),
    ("unlock", "Unlock the connector"),
    ("check", "Check that the plug is released"),
    ("soft_reset", "Soft reset the station"),
    ("wait_soft_reset", "Wait for the station to restart"),
    ("unlock_after_soft_reset", "Unlock the connector again"),
    ("check_after_soft_reset", "Check that the plug is released"),
    ("hard_reset", "Hard reset the station (last resort)"),
    ("wait_hard_reset", "Wait for the station to restart"),
    ("unlock_after_hard_reset", "Unlock the connector again"),
    ("check_after_hard_reset", "Check that the plug is released"),
]


@dataclass(frozen=True, slots=True)
class Target:
    """The connector to release, and the session on it if one was named or is running."""

    station_id: str
    evse_number: int
    connector_number: int
    session_id: int | None


@dataclass
class Flow:
    """One stop-and-release run, with its steps in order."""

    id: str
    actor: str
    target: Target
    timing: FlowTiming
    started_at: datetime
    status: FlowStatus = FlowStatus.RUNNING
    ending: Note | None = None  # how it ended, once it has
    ended_at: datetime | None = None
    steps: list[Step] = field(default_factory=lambda: [Step(name, title) for name, title in _PLAN])
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    @property
    def outcome(self) -> str | None:
        """How it ended in plain (English) words, as the API gives it."""
        return None if self.ending is None else self.ending.text


class _Offline(Exception):
    """The station went away: nothing more can be done remotely."""


async def resolve_target(
    ctx: ServiceContext,
    *,
    session_id: int | None = None,
    station_id: str | None = None,
    evse_number: int | None = None,
    connector_number: int | None = None,
) -> Target:
    """The connector a request names, by session or by station and EVSE; NotFound otherwise."""
    async with ctx.db() as db:
        if session_id is not None:
            session = await db.get(ChargingSession, session_id)
            if session is None:
                raise NotFound(f"no session {session_id}")
            return Target(session.station_id, session.evse_number, session.connector_number, session.id)
        assert station_id is not None and evse_number is not None
        if await db.get(ChargingStation, station_id) is None:
            raise NotFound(f"no station {station_id!r}")
        numbers = list(
            (await db.execute(select(Evse.evse_number).where(Evse.station_id == station_id))).scalars()
        )
        if numbers and evse_number not in numbers:
            known = ", ".join(str(n) for n in sorted(numbers))
            raise NotFound(f"station {station_id} has no EVSE {evse_number} (it has {known})")
        running = await db.scalar(
            select(ChargingSession)
            .where(
                ChargingSession.station_id == station_id,
                ChargingSession.status == SessionStatus.ACTIVE,
                ChargingSession.evse_number == evse_number,
            )
            .order_by(ChargingSession.start_time.desc())
            .limit(1)
        )
        connector = connector_number or (running.connector_number if running is not None else 1)
        return Target(station_id, evse_number, connector, running.id if running is not None else None)


class FlowRunner:
    """Runs one flow: each step in order, escalating only while the plug is still held."""

    def __init__(self, ctx: ServiceContext, flow: Flow) -> None:
        self.ctx = ctx
        self.flow = flow
        self.target = flow.target

    # ---- the flow -------------------------------------------------------------------------

    async def run(self) -> None:
        flow = self.flow
        await self._audit("started", "running", session_id=self.target.session_id)
        try:
            async with asyncio.timeout(flow.timing.total):
                await self._escalate()
        except TimeoutError:
            self._finish_open_steps(Note("time_up", {"seconds": f"{flow.timing.total:g}"}))
            flow.status = FlowStatus.TIMED_OUT
            flow.ending = Note("outcome_gave_up", {"seconds": f"{flow.timing.total:g}"})
        except asyncio.CancelledError:  # the server is shutting down: say so, then let it go
            self._finish_open_steps(Note("shutdown"))
            flow.status = FlowStatus.FAILED
            flow.ending = Note("outcome_shutdown")
            raise
        except _Offline:
            self._finish_open_steps(Note("offline"))
            flow.status = FlowStatus.FAILED
            flow.ending = Note("outcome_offline", {"station": self.target.station_id})
        except Exception as exc:  # never leave a flow running because of a bug
            log.exception("stop-and-release flow %s failed", flow.id)
            self._finish_open_steps(Note("internal", {"error": str(exc)}))
            flow.status = FlowStatus.FAILED
            flow.ending = Note("outcome_internal", {"error": str(exc)})
        finally:
            flow.ended_at = self.ctx.now()
            try:
                await self._audit(
                    "finished",
                    flow.status.value,
                    outcome=flow.outcome,
                    steps={s.name: s.status.value for s in flow.steps},
                )
                await self.ctx.bus.publish(
                    Event(
                        "helpdesk.stop_release.finished",
                        {
                            "flow_id": flow.id,
                            "station_id": self.target.station_id,
                            "status": flow.status.value,
                        },
                    )
                )
            except Exception:
                log.exception("stop-and-release flow %s: the final audit entry failed", flow.id)
            finally:
                flow.done.set()  # waiters see the flow over once its audit trail is complete

    async def _escalate(self) -> None:
        flow = self.flow
        await self._stop_session()
        if await self._unlock_and_check("unlock", "check"):
            self._released(Note("how_unlocked"))
            return
        for kind in ("Soft", "Hard"):
            prefix = kind.lower()
            if not await self._reset(kind, f"{prefix}_reset", f"wait_{prefix}_reset"):
                for name in (f"unlock_after_{prefix}_reset", f"check_after_{prefix}_reset"):
                    self._skip(name, Note("reset_not_accepted", {"kind": prefix}))
                continue
            if await self._unlock_and_check(f"unlock_after_{prefix}_reset", f"check_after_{prefix}_reset"):
                self._released(Note("how_after_reset", {"kind": prefix}))
                return
        flow.status = FlowStatus.FAILED
        flow.ending = Note("outcome_exhausted")

    def _released(self, how: Note) -> None:
        for step in self.flow.steps:
            if step.status is StepStatus.PENDING:
                step.status = StepStatus.SKIPPED
                step.notes = [Note("not_needed")]
        self.flow.status = FlowStatus.RELEASED
        self.flow.ending = Note("outcome_released", {"how": how})

    # ---- steps ----------------------------------------------------------------------------

    async def _stop_session(self) -> None:
        session_id = self.target.session_id
        if session_id is None or not await self._session_running():
            why = Note("no_session")
            self._skip("remote_stop", why)
            self._skip("wait_for_stop", why)
            return
        step = self._begin("remote_stop")
        try:
            outcome = await remote.remote_stop(self.ctx, self.flow.actor, session_id)
        except RemoteRefused as exc:  # it ended meanwhile
            await self._end(step, StepStatus.SKIPPED, Note("refused", {"error": str(exc)}))
            self._skip("wait_for_stop", Note("already_ended"))
            return
        except CommandError as exc:
            await self._command_failed(step, exc)
            self._skip("wait_for_stop", Note("stop_not_taken"))
            return
        step.answer = outcome.status
        if outcome.status != "Accepted":
            await self._end(step, StepStatus.FAILED, Note("answered", {"answer": outcome.status}))
            self._skip("wait_for_stop", Note("answered", {"answer": outcome.status}))
            return
        await self._end(step, StepStatus.OK, Note("stop_accepted"))
        step = self._begin("wait_for_stop")
        seconds = self.flow.timing.stop_wait
        if await self._wait_for(self._session_stopped, seconds, "session.stopped"):
            await self._end(step, StepStatus.OK, Note("session_ended"))
        else:
            await self._end(step, StepStatus.FAILED, Note("still_running_after", {"seconds": f"{seconds:g}"}))

    async def _unlock_and_check(self, unlock_name: str, check_name: str) -> bool:
        step = self._begin(unlock_name)
        args = {"evse_number": self.target.evse_number, "connector_number": self.target.connector_number}
        answer: str | None = None
        try:
            answer = await self._command("unlock_connector", args)
        except (CommandError, InvalidArguments, UnknownStation) as exc:
            await self._command_failed(step, exc)
        else:
            step.answer = answer
            if answer == "Unlocked":
                await self._end(step, StepStatus.OK, Note("unlocked"))
            else:
                await self._end(step, StepStatus.FAILED, Note("answered", {"answer": answer}))
        step = self._begin(check_name)
        held = await self._held_after(self.flow.timing.settle)
        if answer == "Unlocked" and held is None:
            await self._end(step, StepStatus.OK, Note("free"))
            return True
        if held is not None:
            reason = held
        else:
            reason = Note("not_unlocked", {"answer": answer}) if answer else Note("not_unlocked_no_answer")
        await self._end(step, StepStatus.FAILED, reason)
        return False

    async def _reset(self, kind: str, reset_name: str, wait_name: str) -> bool:
        step = self._begin(reset_name)
        sent_at = self.ctx.now()
        try:
            answer = await self._command("reset", {"type": kind})
        except (CommandError, InvalidArguments, UnknownStation) as exc:
            await self._command_failed(step, exc)
            self._skip(wait_name, Note("reset_not_sent"))
            return False
        step.answer = answer
        if answer not in ("Accepted", "Scheduled"):
            await self._end(step, StepStatus.FAILED, Note("answered", {"answer": answer}))
            self._skip(wait_name, Note("answered", {"answer": answer}))
            return False
        await self._end(step, StepStatus.OK, Note("reset_accepted", {"kind": kind.lower(), "answer": answer}))
        step = self._begin(wait_name)
        seconds = self.flow.timing.boot_wait

        async def booted() -> bool:
            return await self._booted_since(sent_at)

        if await self._wait_for(booted, seconds, "station.booted"):
            await self._end(step, StepStatus.OK, Note("restarted"))
        else:
            # go on: some stations reset without reconnecting, the unlock will tell
            await self._end(step, StepStatus.FAILED, Note("not_restarted", {"seconds": f"{seconds:g}"}))
        return True

    # ---- commands -------------------------------------------------------------------------

    async def _command(self, name: str, args: dict[str, Any]) -> str:
        """Send a neutral command (through the audited function registry when it has it)."""
        assert self.ctx.commands is not None
        timeout = self.flow.timing.call_timeout
        if name in FUNCTIONS:
            result = await run_function(
                self.ctx, self.flow.actor, self.target.station_id, name, args, timeout
            )
            return result.status
        reply = await self.ctx.commands.send(self.target.station_id, StationCommand(name, args), timeout)
        return str(reply.get("status", "Accepted"))

    async def _command_failed(self, step: Step, exc: Exception) -> None:
        if isinstance(exc, StationOffline):
            await self._end(step, StepStatus.FAILED, Note("offline"))
            raise _Offline from exc
        if isinstance(exc, CommandTimeout):
            await self._end(step, StepStatus.FAILED, Note("no_reply", {"error": str(exc)}))
        elif isinstance(exc, CommandNotSupported):
            await self._end(step, StepStatus.FAILED, Note("not_possible", {"error": str(exc)}))
        else:
            await self._end(step, StepStatus.FAILED, Note("command_failed", {"error": str(exc)}))

    # ---- what the database says -------------------------------------------------------------

    async def _session_running(self) -> bool:
        if self.target.session_id is None:
            return False
        async with self.ctx.db() as db:
            status = await db.scalar(
                select(ChargingSession.status).where(ChargingSession.id == self.target.session_id)
            )
        return status == SessionStatus.ACTIVE

    async def _session_stopped(self) -> bool:
        return not await self._session_running()

    async def _connector_status(self) -> str | None:
        async with self.ctx.db() as db:
            status: str | None = await db.scalar(
                select(Connector.status)
                .join(Evse, Evse.id == Connector.evse_id)
                .where(
                    Evse.station_id == self.target.station_id,
                    Evse.evse_number == self.target.evse_number,
                    Connector.connector_number == self.target.connector_number,
                )
            )
        return status

    async def _held(self) -> Note | None:
        """Why the plug is still held, or None."""
        if await self._session_running():
            return Note("session_still_running", {"session": self.target.session_id})
        status = await self._connector_status()
        if status in BUSY_STATUSES:
            return Note("connector_reports", {"status": status})
        return None

    async def _held_after(self, seconds: float) -> Note | None:
        """Wait up to `seconds` for the plug to be free; why it is still held, or None."""
        reason: Note | None = None

        async def free() -> bool:
            nonlocal reason
            reason = await self._held()
            return reason is None

        await self._wait_for(free, seconds, "session.stopped", "station.status")
        return reason

    async def _booted_since(self, at: datetime) -> bool:
        assert self.ctx.commands is not None
        if not self.ctx.commands.is_connected(self.target.station_id):
            return False
        async with self.ctx.db() as db:
            booted = await db.scalar(
                select(ChargingStation.last_boot_at).where(ChargingStation.id == self.target.station_id)
            )
        return booted is not None and booted >= at

    async def _wait_for(self, check: Callable[[], Awaitable[bool]], seconds: float, *topics: str) -> bool:
        """Poll `check` until true or `seconds` pass; events on `topics` wake us early."""
        woke = asyncio.Event()
        station_id = self.target.station_id

        async def on_event(event: Event) -> None:
            if event.data.get("station_id") == station_id:
                woke.set()

        unsubscribe = [self.ctx.bus.subscribe(topic, on_event) for topic in topics]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while True:
                woke.clear()
                if await check():
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woke.wait(), min(remaining, _POLL))
        finally:
            for undo in unsubscribe:
                undo()

    # ---- bookkeeping ----------------------------------------------------------------------

    def _begin(self, name: str) -> Step:
        step = self.flow.step(name)
        step.status = StepStatus.RUNNING
        step.started_at = self.ctx.now()
        return step

    async def _end(self, step: Step, status: StepStatus, note: Note) -> None:
        step.status = status
        step.notes = [note]
        step.ended_at = self.ctx.now()
        await self._audit(step.name, status.value, answer=step.answer, message=note.text, note=note.code)

    def _skip(self, name: str, why: Note) -> None:
        step = self.flow.step(name)
        step.status = StepStatus.SKIPPED
        step.notes = [why]

    def _finish_open_steps(self, why: Note) -> None:
        now = self.ctx.now()
        for step in self.flow.steps:
            if step.status is StepStatus.RUNNING:
                step.status, step.ended_at = StepStatus.FAILED, now
                step.notes = [*step.notes, why]
            elif step.status is StepStatus.PENDING:
                step.status, step.notes = StepStatus.SKIPPED, [why]

    async def _audit(self, what: str, result: str, **detail: Any) -> None:
        await record_audit(
            self.ctx,
            actor=self.flow.actor,
            action=f"helpdesk.stop_release.{what}",
            object_type="station",
            object_id=self.target.station_id,
            result=result,
            flow_id=self.flow.id,
            evse_number=self.target.evse_number,
            connector_number=self.target.connector_number,
            **detail,
        )


class FlowBook:
    """The flows of this process: started here, looked up by id while they run and a while after."""

    def __init__(self, keep: int = 500) -> None:
        self.keep = keep
        self._flows: dict[str, Flow] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)

    def start(
        self, ctx: ServiceContext, actor: str, target: Target, timing: FlowTiming | None = None
    ) -> Flow:
        for other in self._flows.values():
            same = (other.target.station_id, other.target.evse_number) == (
                target.station_id,
                target.evse_number,
            )
            if same and other.status is FlowStatus.RUNNING:
                raise FlowAlreadyRunning(
                    f"a stop-and-release is already running for {target.station_id} EVSE "
                    f"{target.evse_number}: flow {other.id}"
                )
        flow = Flow(uuid.uuid4().hex, actor, target, timing or DEFAULT_TIMING, ctx.now())
        self._flows[flow.id] = flow
        self._forget_old()
        task = asyncio.create_task(FlowRunner(ctx, flow).run(), name=f"stop-release-{flow.id[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return flow

    async def close(self) -> None:
        """Cancel the flows still running (at shutdown); each ends failed, audited as such."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait(self, flow: Flow, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flow.done.wait(), seconds)

    def _forget_old(self) -> None:
        finished = [f for f in self._flows.values() if f.status is not FlowStatus.RUNNING]
        for old in finished[: max(0, len(self._flows) - self.keep)]:
            del self._flows[old.id]
