"""Stop and release (requirement 152): one action by a helpdesk agent that ends a driver's
session and frees the plug, even at a half-broken station.

The flow escalates only as far as needed: remote stop → wait for the stop → unlock the
connector → check; if the plug is still held: soft reset → wait for the restart → unlock →
check; then the same with a hard reset. Every step records its status, times and the
station's answer, and is audited with the agent as actor. The whole flow is bounded in time
and never waits for an offline station. The audit log is the lasting record.

Where a flow can be read (`FlowBook`): in one process, in its memory. In a cluster each flow's
state is also mirrored to Redis (a JSON record kept `keep_seconds` after its last change), so
the console or API of any process shows it, and "one flow per EVSE at a time" holds for the
whole cluster (a Redis key per EVSE, taken with SET NX). The flow's task runs in the process
that started it. If that process dies the task dies with it: its "alive" key and its EVSE key
expire within `alive_seconds`, after which readers show the flow as interrupted (failed, with
the steps it had done), never as running for ever, and a new flow may start on that EVSE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from redis.asyncio import Redis
from sqlalchemy import select

from stekker.bus import Event
from stekker.cluster.limits import key_part
from stekker.cluster.redis_link import REDIS_TROUBLE, ClusterMessagingUnavailable, Keys
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
    "interrupted": "the process running the flow ({node}) stopped",
    "time_up": "the flow's time bound of {seconds} s ran out",
    "internal": "internal error: {error}",
    "how_unlocked": "the session is stopped and the connector unlocked",
    "how_after_reset": "released after a {kind} reset",
    "outcome_released": "Released: {how}. The driver can take the cable out.",
    "outcome_gave_up": (
        "Gave up after {seconds} s: the plug may still be held. Check the steps; send a technician if it is."
    ),
    "outcome_shutdown": "The server shut down during the flow: check the station before trying again.",
    "outcome_interrupted": (
        "The process running the flow ({node}) stopped during it: check the station before trying again."
    ),
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


# ---- flows as records: what another process reads -------------------------------------------------


def _note_json(note: Note) -> dict[str, Any]:
    values = {k: {"note": _note_json(v)} if isinstance(v, Note) else v for k, v in note.values.items()}
    return {"code": note.code, "values": values}


def _note_of(data: dict[str, Any]) -> Note:
    values = {
        k: _note_of(v["note"]) if isinstance(v, dict) and "note" in v else v
        for k, v in dict(data.get("values") or {}).items()
    }
    return Note(str(data["code"]), values)


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def flow_record(flow: Flow, node_id: str) -> dict[str, Any]:
    """A flow as JSON, for the processes that did not start it."""
    t = flow.target
    return {
        "id": flow.id,
        "node": node_id,
        "actor": flow.actor,
        "target": [t.station_id, t.evse_number, t.connector_number, t.session_id],
        "timing": [flow.timing.total, flow.timing.stop_wait, flow.timing.settle, flow.timing.boot_wait],
        "started_at": flow.started_at.isoformat(),
        "status": flow.status.value,
        "ending": None if flow.ending is None else _note_json(flow.ending),
        "ended_at": None if flow.ended_at is None else flow.ended_at.isoformat(),
        "steps": [
            {
                "name": step.name,
                "title": step.title,
                "status": step.status.value,
                "started_at": None if step.started_at is None else step.started_at.isoformat(),
                "ended_at": None if step.ended_at is None else step.ended_at.isoformat(),
                "answer": step.answer,
                "notes": [_note_json(n) for n in step.notes],
            }
            for step in flow.steps
        ],
    }


def flow_of_record(data: dict[str, Any]) -> Flow:
    """The flow a record describes (its `done` is set once it is over). KeyError, ValueError or
    TypeError on a record that is not one."""
    station_id, evse_number, connector_number, session_id = data["target"]
    total, stop_wait, settle, boot_wait = data["timing"]
    started_at = _when(data["started_at"])
    assert started_at is not None
    flow = Flow(
        id=str(data["id"]),
        actor=str(data["actor"]),
        target=Target(str(station_id), int(evse_number), int(connector_number), session_id),
        timing=FlowTiming(float(total), float(stop_wait), float(settle), float(boot_wait)),
        started_at=started_at,
        status=FlowStatus(data["status"]),
        ending=None if data.get("ending") is None else _note_of(data["ending"]),
        ended_at=_when(data.get("ended_at")),
        steps=[
            Step(
                name=str(s["name"]),
                title=str(s["title"]),
                status=StepStatus(s["status"]),
                started_at=_when(s.get("started_at")),
                ended_at=_when(s.get("ended_at")),
                answer=s.get("answer"),
                notes=[_note_of(n) for n in s.get("notes") or ()],
            )
            for s in data["steps"]
        ],
    )
    if flow.status is not FlowStatus.RUNNING:
        flow.done.set()
    return flow


def _interrupted(flow: Flow, node_id: str) -> Flow:
    """A running flow whose process is gone, as readers are to see it: over, failed."""
    why = Note("interrupted", {"node": node_id})
    for step in flow.steps:
        if step.status is StepStatus.RUNNING:
            step.status, step.notes = StepStatus.FAILED, [*step.notes, why]
        elif step.status is StepStatus.PENDING:
            step.status, step.notes = StepStatus.SKIPPED, [why]
    flow.status = FlowStatus.FAILED
    flow.ending = Note("outcome_interrupted", {"node": node_id})
    flow.done.set()
    return flow


_FLOW_ID = re.compile(r"^[0-9a-f]{32}$")

# Renew the EVSE key only while it is still this flow's; release it the same way.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

Runner = Callable[[ServiceContext, Flow], Coroutine[Any, Any, None]]


async def _run_flow(ctx: ServiceContext, flow: Flow) -> None:
    await FlowRunner(ctx, flow).run()


class FlowBook:
    """The flows started in this process (looked up by id while they run and a while after),
    and, with `redis`, every process's flows (see the module's docstring).

    Cluster callers use the async methods: `launch` (start, once per EVSE in the cluster),
    `find` (any process's flow by id) and `follow` (wait for it to end, fresh state). `start`,
    `get` and `wait` are the one-process forms (this process's flows only)."""

    def __init__(
        self,
        keep: int = 500,
        *,
        redis: Redis | None = None,
        keys: Keys | None = None,
        node_id: str = "local",
        alive_seconds: float = 10.0,
        keep_seconds: float = 3600.0,
        mirror_every: float = 0.25,
        runner: Runner = _run_flow,
    ) -> None:
        self.keep = keep
        self._flows: dict[str, Flow] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._redis = redis
        self._keys = keys or Keys()
        self.node_id = node_id
        self.alive_ms = max(1, int(alive_seconds * 1000))
        self.keep_ms = max(1, int(keep_seconds * 1000))
        self.mirror_every = mirror_every
        self._runner = runner
        self._mirror_failing = False

    @classmethod
    def for_context(cls, ctx: ServiceContext, **options: Any) -> FlowBook:
        """The book of a process: shared through `ctx.redis` when clustered."""
        return cls(redis=ctx.redis, keys=ctx.keys, node_id=ctx.node.node_id, **options)

    # ---- one process -------------------------------------------------------------------------

    def get(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)

    def start(
        self, ctx: ServiceContext, actor: str, target: Target, timing: FlowTiming | None = None
    ) -> Flow:
        self._check_local(target)
        flow = Flow(uuid.uuid4().hex, actor, target, timing or DEFAULT_TIMING, ctx.now())
        self._run(ctx, flow)
        return flow

    async def wait(self, flow: Flow, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flow.done.wait(), seconds)

    async def close(self) -> None:
        """Cancel the flows still running (at shutdown); each ends failed, audited as such
        (and, clustered, its final state is written before the mirror stops)."""
        runs = [t for t in self._tasks if t.get_name().startswith("stop-release-")]
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        mirrors = list(self._tasks)  # writing the final records: a few seconds at most
        if mirrors:
            _, late = await asyncio.wait(mirrors, timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _check_local(self, target: Target) -> None:
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

    def _run(self, ctx: ServiceContext, flow: Flow) -> None:
        self._flows[flow.id] = flow
        self._forget_old()
        self._spawn(self._runner(ctx, flow), f"stop-release-{flow.id[:8]}")
        if self._redis is not None:
            self._spawn(self._mirror(flow), f"flow-mirror-{flow.id[:8]}")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget_old(self) -> None:
        finished = [f for f in self._flows.values() if f.status is not FlowStatus.RUNNING]
        for old in finished[: max(0, len(self._flows) - self.keep)]:
            del self._flows[old.id]

    # ---- the cluster ---------------------------------------------------------------------------

    def _record_key(self, flow_id: str) -> str:
        return self._keys("helpdesk", "flow", flow_id)

    def _alive_key(self, flow_id: str) -> str:
        return self._keys("helpdesk", "flow", flow_id, "alive")

    def _evse_key(self, target: Target) -> str:
        return self._keys("helpdesk", "evse", key_part(f"{target.station_id}\x00{target.evse_number}"))

    async def launch(
        self, ctx: ServiceContext, actor: str, target: Target, timing: FlowTiming | None = None
    ) -> Flow:
        """Start a flow; FlowAlreadyRunning when one runs for that EVSE in any process.
        Clustered and Redis away: ClusterMessagingUnavailable (nothing was sent to the station)."""
        if self._redis is None:
            return self.start(ctx, actor, target, timing)
        self._check_local(target)
        flow = Flow(uuid.uuid4().hex, actor, target, timing or DEFAULT_TIMING, ctx.now())
        evse_key = self._evse_key(target)
        try:
            if not await self._redis.set(evse_key, flow.id, nx=True, px=self.alive_ms):
                other = await self._redis.get(evse_key)
                holder = str(other) if other else "(just ended)"
                raise FlowAlreadyRunning(
                    f"a stop-and-release is already running for {target.station_id} EVSE "
                    f"{target.evse_number}: flow {holder}"
                )
            # readable everywhere before the caller learns its id
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(
                self._record_key(flow.id), orjson.dumps(flow_record(flow, self.node_id)), px=self.keep_ms
            )
            pipe.set(self._alive_key(flow.id), self.node_id, px=self.alive_ms)
            await pipe.execute()
        except REDIS_TROUBLE as exc:
            raise ClusterMessagingUnavailable(f"cannot start a stop-and-release: {exc}") from exc
        self._run(ctx, flow)
        return flow

    async def find(self, flow_id: str) -> Flow | None:
        """The flow with this id, started in any process; None if unknown or long over.
        Clustered and Redis away: this process's flows, else ClusterMessagingUnavailable."""
        local = self._flows.get(flow_id)
        if local is not None or self._redis is None or not _FLOW_ID.match(flow_id):
            return local
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(self._record_key(flow_id))
            pipe.exists(self._alive_key(flow_id))
            raw, alive = await pipe.execute()
        except REDIS_TROUBLE as exc:
            raise ClusterMessagingUnavailable(f"cannot read flow {flow_id}: {exc}") from exc
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            flow = flow_of_record(data)
        except (KeyError, ValueError, TypeError, AssertionError) as exc:
            log.warning("stop-and-release flow %s: unreadable record in redis (%s)", flow_id, exc)
            return None
        if flow.status is FlowStatus.RUNNING and not alive:
            return _interrupted(flow, str(data.get("node")))
        return flow

    async def follow(self, flow: Flow, seconds: float) -> Flow:
        """Wait up to `seconds` for the flow to end; the flow as it stands then (a flow of
        another process is read again from Redis)."""
        if flow.id in self._flows or self._redis is None:
            await self.wait(flow, seconds)
            return flow
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while flow.status is FlowStatus.RUNNING and loop.time() < deadline:
            await asyncio.sleep(min(self.mirror_every, max(0.0, deadline - loop.time())))
            fresh = await self.find(flow.id)
            if fresh is not None:
                flow = fresh
        return flow

    async def _mirror(self, flow: Flow) -> None:
        """Write the flow's record whenever it changed, and keep its alive and EVSE keys, until
        it is over; then the final record (retried a while if Redis is away meanwhile)."""
        assert self._redis is not None
        written: bytes | None = None
        tries_left = 60  # once over: about a minute of retries, then the record ages out
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():
                # a cancel that a Redis call swallowed (redis-py can) must still stop the mirror
                raise asyncio.CancelledError
            over = flow.done.is_set()
            record = orjson.dumps(flow_record(flow, self.node_id))
            try:
                pipe = self._redis.pipeline(transaction=False)
                if record != written:
                    pipe.set(self._record_key(flow.id), record, px=self.keep_ms)
                if over:
                    pipe.delete(self._alive_key(flow.id))
                    pipe.eval(_RELEASE, 1, self._evse_key(flow.target), flow.id)
                else:
                    pipe.set(self._alive_key(flow.id), self.node_id, px=self.alive_ms)
                    pipe.eval(_RENEW, 1, self._evse_key(flow.target), flow.id, self.alive_ms)
                await pipe.execute()
                written = record
                if self._mirror_failing:
                    self._mirror_failing = False
                    log.warning("stop-and-release flows: redis is back, flows visible again")
                if over:
                    return
            except REDIS_TROUBLE as exc:
                if not self._mirror_failing:
                    self._mirror_failing = True
                    log.warning(
                        "stop-and-release flows: redis unreachable, other processes see no updates: %s", exc
                    )
                if over:
                    tries_left -= 1
                    if tries_left <= 0:
                        return
                    await asyncio.sleep(1)
                    continue
            if not over:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.mirror_every):
                        await flow.done.wait()
