"""Bulk jobs: one remote function on many stations, with each station's progress stored.

A job is created for a selection resolved at once: its stations are rows in `job_stations`,
`queued` if the station is connected, `waiting` if not. The `JobRunner` of the serving
process then works through them, at most `concurrency` at a time, each call bounded by the
job's `call_timeout`, through `functions.run_function` (which audits every outcome):

- A connected station is claimed (queued → sent, a conditional UPDATE, so a cancel or a
  second runner never makes it run twice) and ends accepted, rejected (the station said
  no), failed (CALLERROR, not supported by its OCPP version, unknown station), or
  timed_out (no answer in time).
- An offline station waits. When it connects (bus topic `station.connected`) it is sent
  `after_boot_delay` seconds after its BootNotification (`station.booted`), so that the
  boot answer and our own boot set-up go first, or after `boot_wait` seconds if it
  reconnected without booting. At the job's `expires_at` every station still offline
  ends expired (one already connected is sent at once), so an offline station never
  makes a job hang. A station that drops the connection before our call reached it waits
  and is sent again when it is back (at most `MAX_ATTEMPTS` sends). One that drops it after
  the call was sent may have acted on it: a function that is not `repeatable` is never sent
  again then (it ends timed_out, "unknown: ..."), the others are; a reset counts as done when the
  station boots again within `reset_boot_window` (see `functions._reset`).
- Cancelling ends queued and waiting stations as cancelled; sent ones finish.
- The job completes when no station is queued, waiting or sent.

Every state is in the database, so the job can be read while it runs, from any process.
When the server restarts, unfinished jobs resume: queued and waiting stations carry on as
above (waiting ones expire at the original time); a station left `sent` may or may not
have acted (a reset may have happened), so it is not sent again but ends timed_out with
"outcome unknown". Progress writes go through the group-commit writer, so the writes of
many stations share transactions.

A job runs in exactly one worker: the one holding its lease "job:<id>" (see `JobRunner`);
another worker takes it over within about a lease when that one dies, and carries on with
the stations not yet done. The conditional claim keeps a station from being sent twice
even if two runners ever held the same job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models_jobs import OPEN_STATES, Job, JobState, JobStation, JobStationState
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.device_model import UnknownStation
from stekker.services.functions import (
    FUNCTIONS,
    FunctionArgs,
    InvalidArguments,
    UnknownFunction,
    run_function,
    spec_of,
    validate_args,
)
from stekker.services.outage import OutageLog
from stekker.services.ports import (
    CommandError,
    CommandNotSupported,
    CommandTimeout,
    OutcomeUnknown,
    StationCallError,
    StationOffline,
)
from stekker.services.selection import Selection, resolve

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 20
MAX_CONCURRENCY = 500
DEFAULT_OFFLINE_EXPIRY = 24 * 3600
MAX_OFFLINE_EXPIRY = 30 * 24 * 3600
MAX_STATIONS = 100_000
MAX_ATTEMPTS = 3  # sends per station: a station that keeps dropping the call fails after this
#: Who may start or cancel a bulk job besides admin, on top of the roles of its function: a
#: job acts on many stations at once (a reset of the whole network is one call), so it is
#: the operator's. The helpdesk acts on one station at a time, through the station's functions.
BULK_ROLES: tuple[str, ...] = ("operator",)

_S = JobStationState
FINAL_STATES = tuple(s for s in JobStationState if s not in OPEN_STATES)


def may_run_bulk(role: str, function: str) -> bool:
    """Whether a user of `role` (a role name) may start or cancel a bulk job of `function`:
    admin always; otherwise a bulk role that the function allows."""
    if role == "admin":
        return True
    spec = FUNCTIONS.get(function)
    return role in BULK_ROLES and spec is not None and role in spec.roles


class JobNotFound(LookupError):
    """No job with that id."""


class JobFinished(Exception):
    """The job has already completed or been cancelled."""


class NothingSelected(ValueError):
    """The selection names no station (or names none at all, which a bulk job refuses)."""


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What an operator asks for: a function and its arguments on a selection."""

    function: str
    args: dict[str, Any]
    selection: Selection
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float | None = None
    offline_expiry_seconds: int = DEFAULT_OFFLINE_EXPIRY


@dataclass(frozen=True, slots=True)
class JobView:
    """A job with its stations counted per state."""

    id: int
    function: str
    args: dict[str, Any]
    selection: dict[str, Any]
    state: str
    actor: str
    concurrency: int
    timeout: float
    offline_expiry_seconds: int
    template_id: int | None
    total: int
    counts: dict[str, int]
    created_at: datetime
    expires_at: datetime
    finished_at: datetime | None
    cancelled_by: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one station's call ended."""

    state: JobStationState
    status: str | None
    error: str | None = None
    reply: dict[str, Any] | None = None


def selection_json(selection: Selection) -> dict[str, Any]:
    """The criteria that were given, JSON-safe (stored with the job, shown back)."""
    given: dict[str, Any] = {}
    for name, value in dataclasses.asdict(selection).items():
        if value is None or value == ():
            continue
        given[name] = list(value) if isinstance(value, tuple) else value
    return given


def check_function(function: str, args: dict[str, Any]) -> FunctionArgs:
    """Validate a job's function and arguments once, before any station is touched."""
    try:
        spec_of(function)
    except UnknownFunction as exc:
        raise InvalidArguments(str(exc)) from None
    return validate_args(function, args)


async def plan(ctx: ServiceContext, request: JobRequest) -> list[str]:
    """The stations a job would run on (the dry run), after checking function and arguments."""
    check_function(request.function, request.args)
    async with ctx.db() as db:
        ids = await resolve(db, request.selection, ctx.commands)
    if len(ids) > MAX_STATIONS:
        raise NothingSelected(f"the selection has {len(ids)} stations; a job takes at most {MAX_STATIONS}")
    return ids


async def create_job(
    ctx: ServiceContext,
    actor: str,
    request: JobRequest,
    *,
    station_args: dict[str, dict[str, Any]] | None = None,
    template_id: int | None = None,
) -> int:
    """Create a job and hand it to the runner. With `station_args` the stations are its keys,
    each with its own (validated) arguments; otherwise the selection is resolved now."""
    if station_args is None:
        ids = await plan(ctx, request)
    else:
        spec_of(request.function)
        for args in station_args.values():
            check_function(request.function, args)
        ids = sorted(station_args)
    if not ids:
        raise NothingSelected("the selection matches no station: nothing to do")
    now = ctx.now()
    timeout = request.timeout or ctx.settings.call_timeout
    connected = set(ctx.commands.connected_stations()) if ctx.commands is not None else set()
    selection = selection_json(request.selection)

    async def job(db: AsyncSession) -> int:
        row = Job(
            function=request.function,
            args=request.args,
            selection=selection,
            state=JobState.RUNNING,
            actor=actor,
            concurrency=request.concurrency,
            call_timeout=timeout,
            offline_expiry_seconds=request.offline_expiry_seconds,
            template_id=template_id,
            total=len(ids),
            created_at=now,
            expires_at=now + timedelta(seconds=request.offline_expiry_seconds),
        )
        db.add(row)
        await db.flush()
        await db.execute(
            insert(JobStation),
            [
                {
                    "job_id": row.id,
                    "station_id": station_id,
                    "args": None if station_args is None else station_args[station_id],
                    "state": _S.QUEUED if station_id in connected else _S.WAITING,
                    "attempts": 0,
                    "updated_at": now,
                }
                for station_id in ids
            ],
        )
        audit(
            db,
            actor=actor,
            action="job.created",
            object_type="job",
            object_id=row.id,
            at=now,
            function=request.function,
            args=request.args,
            selection=selection,
            stations=len(ids),
            template_id=template_id,
        )
        return row.id

    job_id = await ctx.write(job)
    await ctx.bus.publish(Event("job.created", {"job_id": job_id, "function": request.function}))
    return job_id


async def _counts(db: AsyncSession, job_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {i: {s.value: 0 for s in JobStationState} for i in job_ids}
    if not job_ids:
        return counts
    rows = await db.execute(
        select(JobStation.job_id, JobStation.state, func.count())
        .where(JobStation.job_id.in_(job_ids))
        .group_by(JobStation.job_id, JobStation.state)
    )
    for job_id, state, n in rows:
        counts[job_id][state] = n
    return counts


def _view(job: Job, counts: dict[str, int]) -> JobView:
    return JobView(
        id=job.id,
        function=job.function,
        args=job.args,
        selection=job.selection,
        state=job.state,
        actor=job.actor,
        concurrency=job.concurrency,
        timeout=job.call_timeout,
        offline_expiry_seconds=job.offline_expiry_seconds,
        template_id=job.template_id,
        total=job.total,
        counts=counts,
        created_at=job.created_at,
        expires_at=job.expires_at,
        finished_at=job.finished_at,
        cancelled_by=job.cancelled_by,
    )


async def get_job(ctx: ServiceContext, job_id: int) -> JobView:
    async with ctx.db() as db:
        job = await db.get(Job, job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        return _view(job, (await _counts(db, [job_id]))[job_id])


async def list_jobs(
    ctx: ServiceContext,
    state: str | None = None,
    function: str | None = None,
    template_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[JobView]:
    """Newest first."""
    async with ctx.db() as db:
        query = select(Job)
        if state is not None:
            query = query.where(Job.state == state)
        if function is not None:
            query = query.where(Job.function == function)
        if template_id is not None:
            query = query.where(Job.template_id == template_id)
        jobs = list((await db.execute(query.order_by(Job.id.desc()).limit(limit).offset(offset))).scalars())
        counts = await _counts(db, [j.id for j in jobs])
        return [_view(j, counts[j.id]) for j in jobs]


async def job_stations(
    ctx: ServiceContext, job_id: int, state: str | None = None, limit: int = 100, offset: int = 0
) -> list[JobStation]:
    """A page of a job's stations, by station id."""
    async with ctx.db() as db:
        if await db.get(Job, job_id) is None:
            raise JobNotFound(f"no job {job_id}")
        query = select(JobStation).where(JobStation.job_id == job_id)
        if state is not None:
            query = query.where(JobStation.state == state)
        query = query.order_by(JobStation.station_id).limit(limit).offset(offset)
        return list((await db.execute(query)).scalars())


async def cancel_job(ctx: ServiceContext, actor: str, job_id: int) -> JobView:
    """Stop a running job: queued and waiting stations end cancelled; sent ones finish."""
    now = ctx.now()

    async def job(db: AsyncSession) -> int:
        row = await db.get(Job, job_id)
        if row is None:
            raise JobNotFound(f"no job {job_id}")
        if row.state != JobState.RUNNING:
            raise JobFinished(f"job {job_id} is already {row.state}")
        row.state = JobState.CANCELLED
        row.cancelled_by = actor
        result = await db.execute(
            update(JobStation)
            .where(JobStation.job_id == job_id, JobStation.state.in_((_S.QUEUED, _S.WAITING)))
            .values(state=_S.CANCELLED, finished_at=now, updated_at=now)
        )
        cancelled = cast(CursorResult[Any], result).rowcount
        audit(
            db,
            actor=actor,
            action="job.cancelled",
            object_type="job",
            object_id=job_id,
            at=now,
            function=row.function,
            stations_cancelled=cancelled,
        )
        return cancelled

    cancelled = await ctx.write(job)
    await ctx.bus.publish(Event("job.cancelled", {"job_id": job_id, "stations_cancelled": cancelled}))
    return await get_job(ctx, job_id)


# ---- running --------------------------------------------------------------------------------


async def execute(
    ctx: ServiceContext, actor: str, station_id: str, function: str, args: dict[str, Any], timeout: float
) -> Outcome:
    """One station's call, its ending as an Outcome. StationOffline is raised (the caller
    makes the station wait); every other failure is an outcome, never an exception."""
    try:
        checked = validate_args(function, args)
        # run_function bounds each call; this guard also bounds functions of several calls
        # (a 1.6 set_variables is one ChangeConfiguration per key)
        items = args.get("items")
        calls = len(items) if isinstance(items, list) and items else 1
        guard = max(timeout, ctx.settings.call_timeout) * calls + 5
        if function == "reset":  # it may wait for the station to boot again
            guard += ctx.settings.reset_boot_window
        async with asyncio.timeout(guard):
            result = await run_function(ctx, actor, station_id, function, checked, timeout)
    except StationOffline:
        raise
    except OutcomeUnknown as exc:
        if spec_of(function).repeatable:  # sending it again does no more than once
            raise StationOffline(str(exc)) from None
        return Outcome(_S.TIMED_OUT, "OutcomeUnknown", str(exc))
    except (CommandTimeout, TimeoutError) as exc:
        return Outcome(_S.TIMED_OUT, None, str(exc) or f"no answer within {timeout:g} s")
    except StationCallError as exc:
        return Outcome(_S.FAILED, exc.code[:64], str(exc))
    except CommandNotSupported as exc:
        return Outcome(_S.FAILED, "NotSupported", str(exc))
    except CommandError as exc:
        return Outcome(_S.FAILED, type(exc).__name__, str(exc))
    except (UnknownStation, InvalidArguments, UnknownFunction) as exc:
        return Outcome(_S.FAILED, type(exc).__name__, str(exc))
    state = _S.ACCEPTED if result.accepted else _S.REJECTED
    return Outcome(state, result.status[:64], None, result.reply)


def _lease(job_id: int) -> str:
    return f"job:{job_id}"


class JobRunner:
    """Runs jobs (see the module docstring). `start` resumes the jobs left unfinished and
    listens for new ones; `stop` abandons the calls in flight.

    Exactly one runner per job in the cluster, through a Redis lease per job ("job:<id>",
    always ours in one process), held while the job runs and renewed every third of
    STEKKER_CLUSTER_LEASE_SECONDS; a runner that fails to renew stops the job at once.
    `job.created` reaches one worker (consumer group "jobs"), which takes the lease and
    runs the job. Every worker also scans for unfinished jobs every `scan_interval`
    seconds (no lease for the scan itself: it only asks for each job's lease), so a job
    whose runner died, or whose `job.created` was lost, is taken over by the first worker
    that finds its lease free: within about a lease plus a scan. Why a lease per job and
    not one for all jobs: jobs spread over the workers, and one slow job never waits for
    another. Why not a row lock: a job runs for minutes to days (offline stations), far
    longer than a transaction should stay open.

    Takeover continues from the database, which records every station's state: queued and
    waiting stations carry on; a station left `sent` by the dead runner may have acted, so
    it is not sent again but ends timed_out ("outcome unknown"); the others are sent once.
    `job.cancelled`, `station.connected` and `station.booted` are fan-out: the runner
    holding the job hears them wherever it runs; a cancel it misses still holds, as each
    send first claims its station in the database (queued → sent) and a cancelled station
    cannot be claimed.
    """

    GROUP = "jobs"

    def __init__(
        self,
        ctx: ServiceContext,
        boot_wait: float = 10.0,
        after_boot_delay: float = 1.0,
        scan_interval: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.boot_wait = boot_wait
        self.after_boot_delay = after_boot_delay
        self.scan_interval = scan_interval
        self._runs: dict[int, _Run] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._starting: set[int] = set()  # being loaded: a second `run` of the job does nothing
        self._unsubscribe: list[Callable[[], None]] = []
        self._scanner: asyncio.Task[None] | None = None

    @property
    def lease_seconds(self) -> float:
        return self.ctx.settings.cluster_lease_seconds

    async def start(self) -> None:
        bus = self.ctx.bus
        self._unsubscribe = [
            bus.subscribe("job.created", self._on_created, group=self.GROUP),
            bus.subscribe("job.cancelled", self._on_cancelled),
            bus.subscribe("station.connected", self._on_connected),
            bus.subscribe("station.booted", self._on_booted),
        ]
        resumed = await self.scan()
        if resumed:
            log.info("resumed %d unfinished job(s): %s", len(resumed), resumed)
        if self._scanner is None:
            self._scanner = asyncio.create_task(self._scan_forever(), name="job-scan")

    async def stop(self) -> None:
        if self._scanner is not None:
            self._scanner.cancel()
            with contextlib.suppress(BaseException):
                await self._scanner
            self._scanner = None
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(ValueError):
                unsubscribe()
        self._unsubscribe = []
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()  # each releases its job's lease, so another worker need not wait it out
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        self._runs.clear()

    async def scan(self) -> list[int]:
        """Take over the unfinished jobs no runner holds (their lease is free); their ids."""
        async with self.ctx.db() as db:
            # every few seconds in every worker: the state index skips the completed jobs (a
            # cancelled one is unfinished until its calls in flight end)
            query = select(Job.id).where(
                Job.state.in_((JobState.RUNNING, JobState.CANCELLED)), Job.finished_at.is_(None)
            )
            unfinished = list((await db.execute(query)).scalars())
        taken = []
        for job_id in unfinished:
            if job_id not in self._runs and job_id not in self._starting:
                await self.run(job_id, resumed=True)
                if job_id in self._runs:
                    taken.append(job_id)
        return taken

    async def _scan_forever(self) -> None:
        outage = OutageLog("bulk job scan", log)
        interval = self.scan_interval or max(1.0, self.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                taken = await self.scan()
                outage.ok()
            except Exception as exc:  # the database or Redis briefly away: the next scan
                outage.failed_or_log(exc, "bulk job scan failed")
                continue
            if taken:
                log.info("took over %d unfinished job(s): %s", len(taken), taken)

    def running(self) -> list[int]:
        return sorted(self._runs)

    async def run(self, job_id: int, resumed: bool = False) -> None:
        """Start running a job: no-op if it already runs here, has finished, or another
        worker holds its lease."""
        if job_id in self._runs or job_id in self._starting:
            return
        self._starting.add(job_id)
        try:
            await self._take(job_id, resumed)
        finally:
            self._starting.discard(job_id)

    async def _take(self, job_id: int, resumed: bool) -> None:
        leases = self.ctx.leases
        if not await leases.try_take(_lease(job_id), self.lease_seconds):
            return  # another worker runs it
        try:
            run = await _Run.load(self, job_id, resumed)
        except BaseException:
            await leases.release(_lease(job_id))
            raise
        if run is None:
            await leases.release(_lease(job_id))
            return
        self._runs[job_id] = run
        task = asyncio.create_task(self._hold(run), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _t: self._forget(job_id))
        # a cancel that landed while the job was loading found no run to tell
        async with self.ctx.db() as db:
            if await db.scalar(select(Job.state).where(Job.id == job_id)) == JobState.CANCELLED:
                run.cancelled()

    async def _hold(self, run: _Run) -> None:
        """Run the job while renewing its lease; stop it when the lease is lost; release
        the lease when the job ends or this task is cancelled."""
        name, ttl = _lease(run.job_id), self.lease_seconds
        main = asyncio.create_task(run.main(), name=f"job-{run.job_id}-main")
        try:
            while True:
                done, _ = await asyncio.wait([main], timeout=ttl / 3)
                if done:
                    break
                if not await self.ctx.leases.try_take(name, ttl):
                    # another worker may take it over any moment: not one more send from here
                    log.warning("job %d: its lease is lost; stopping it here", run.job_id)
                    break
        finally:
            if not main.done():
                main.cancel()
                with contextlib.suppress(BaseException):
                    await main
            elif not main.cancelled() and main.exception() is not None:
                log.error("job %d stopped: %r (a scan takes it up again)", run.job_id, main.exception())
            await self.ctx.leases.release(name)

    def _forget(self, job_id: int) -> None:
        self._runs.pop(job_id, None)
        self._tasks.pop(job_id, None)

    async def _on_created(self, event: Event) -> None:
        await self.run(int(event.data["job_id"]))

    async def _on_cancelled(self, event: Event) -> None:
        run = self._runs.get(int(event.data["job_id"]))
        if run is not None:
            run.cancelled()

    async def _on_connected(self, event: Event) -> None:
        station_id = str(event.data.get("station_id"))
        for run in list(self._runs.values()):
            run.station_connected(station_id)

    async def _on_booted(self, event: Event) -> None:
        station_id = str(event.data.get("station_id"))
        for run in list(self._runs.values()):
            run.station_booted(station_id)


class _Run:
    """One job being worked through in this process."""

    def __init__(self, runner: JobRunner, job: Job, open_rows: dict[str, tuple[str, dict[str, Any] | None]]):
        self.runner = runner
        self.ctx = runner.ctx
        self.job_id = job.id
        self.function = job.function
        self.args = job.args
        self.actor = job.actor
        self.timeout = job.call_timeout
        self.concurrency = max(1, job.concurrency)
        self.expires_at = job.expires_at
        self.station_args = {sid: args for sid, (_state, args) in open_rows.items() if args is not None}
        self.open: set[str] = set(open_rows)  # not yet in a final state
        self.inflight: set[str] = set()  # claimed or being sent
        self.waiting: set[str] = set()  # offline, waiting for a connection
        self.ready: asyncio.Queue[str] = asyncio.Queue()
        self.timers: dict[str, asyncio.Task[None]] = {}
        self.done = asyncio.Event()
        self.expired = False
        for sid, (state, _args) in sorted(open_rows.items()):
            if state == _S.WAITING:
                self.waiting.add(sid)
            else:
                self.ready.put_nowait(sid)

    @classmethod
    async def load(cls, runner: JobRunner, job_id: int, resumed: bool) -> _Run | None:
        ctx = runner.ctx
        now = ctx.now()

        async def job(db: AsyncSession) -> tuple[Job | None, dict[str, tuple[str, dict[str, Any] | None]]]:
            row = await db.get(Job, job_id)
            if row is None or row.finished_at is not None:
                return None, {}
            # We hold the job's lease and do not run it here, so no runner is waiting for the
            # answer to a station left `sent` (a restart, or a takeover from a dead worker): it
            # may have acted, so it is not sent again.
            await db.execute(
                update(JobStation)
                .where(JobStation.job_id == job_id, JobStation.state == _S.SENT)
                .values(
                    state=_S.TIMED_OUT,
                    status="Unknown",
                    error="the runner stopped before the station answered; outcome unknown (not re-sent)",
                    finished_at=now,
                    updated_at=now,
                )
            )
            rows = await db.execute(
                select(JobStation.station_id, JobStation.state, JobStation.args).where(
                    JobStation.job_id == job_id, JobStation.state.in_(OPEN_STATES)
                )
            )
            return row, {sid: (state, args) for sid, state, args in rows}

        row, open_rows = await ctx.write(job)
        if resumed and row is not None:
            log.debug("job %d: resumed with %d station(s) open", job_id, len(open_rows))
        if row is None:
            return None
        return cls(runner, row, open_rows)

    # ---- the job's life ----------------------------------------------------------------

    async def main(self) -> None:
        workers = [
            asyncio.create_task(self._worker(), name=f"job-{self.job_id}-worker")
            for _ in range(min(self.concurrency, max(1, len(self.open))))
        ]
        expiry = asyncio.create_task(self._expire_later(), name=f"job-{self.job_id}-expiry")
        try:
            for sid in list(self.waiting):
                self._check_connected(sid)
            self._check_done()
            await self.done.wait()
        finally:
            for task in (*workers, expiry, *self.timers.values()):
                task.cancel()
        await self._finish()

    async def _worker(self) -> None:
        while True:
            sid = await self.ready.get()
            try:
                await self._serve(sid)
            except Exception as exc:  # never let one station stop the job
                log.exception("job %d: station %s", self.job_id, sid)
                with contextlib.suppress(Exception):
                    await self._move([sid], OPEN_STATES, _S.FAILED, f"internal error: {type(exc).__name__}")
                self._settle(sid)

    async def _serve(self, sid: str) -> None:
        if sid not in self.open or sid in self.inflight:
            return
        commands = self.ctx.commands
        if commands is None or not commands.is_connected(sid):
            await self._wait_for(sid)
            return
        self.inflight.add(sid)
        try:
            if not await self._claim(sid):  # cancelled or expired meanwhile
                self._settle(sid)
                return
            args = self.station_args.get(sid, self.args)
            try:
                outcome = await execute(self.ctx, self.actor, sid, self.function, args, self.timeout)
            except StationOffline as exc:
                await self._dropped(sid, str(exc))
                return
            await self._record(sid, outcome)
        finally:
            self.inflight.discard(sid)

    async def _wait_for(self, sid: str) -> None:
        """The station is offline: it waits for a connection, or expires."""
        if self.expired or self.ctx.now() >= self.expires_at:
            await self._move([sid], (_S.QUEUED, _S.WAITING), _S.EXPIRED, "offline until the job's expiry")
            self._settle(sid)
            return
        if not await self._move([sid], (_S.QUEUED, _S.WAITING), _S.WAITING):
            self._settle(sid)  # cancelled meanwhile
            return
        self.waiting.add(sid)
        self._check_connected(sid)  # it may have connected while we wrote

    async def _dropped(self, sid: str, error: str) -> None:
        """The connection went away around our call: wait for the station again."""
        attempts = await self._attempts(sid)
        if attempts >= MAX_ATTEMPTS:
            await self._record(sid, Outcome(_S.FAILED, "StationOffline", f"{error} ({attempts} attempts)"))
            return
        if self.expired or self.ctx.now() >= self.expires_at:
            await self._move([sid], (_S.SENT,), _S.EXPIRED, error)
            self._settle(sid)
            return
        if not await self._move([sid], (_S.SENT,), _S.WAITING, error):
            self._settle(sid)
            return
        self.waiting.add(sid)
        self._check_connected(sid)

    def cancelled(self) -> None:
        """The job was cancelled (the database says so already): stop all but the calls in flight."""
        for sid in list(self.open - self.inflight):
            self.open.discard(sid)
        self.waiting.clear()
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        self._check_done()

    async def _expire_later(self) -> None:
        delay = (self.expires_at - self.ctx.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        self.expired = True
        # connected in time but still in their boot grace: sent now rather than expired
        for sid, timer in list(self.timers.items()):
            timer.cancel()
            self.waiting.discard(sid)
            self.ready.put_nowait(sid)
        self.timers.clear()
        stale = list(self.waiting)
        self.waiting.clear()
        if stale:
            await self._move(stale, (_S.WAITING,), _S.EXPIRED, "offline until the job's expiry")
            for sid in stale:
                if sid not in self.inflight:
                    self._settle(sid)

    # ---- stations coming online --------------------------------------------------------

    def station_connected(self, sid: str) -> None:
        if sid in self.waiting and sid not in self.timers:
            self.timers[sid] = asyncio.create_task(self._release_after(sid, self.runner.boot_wait))

    def station_booted(self, sid: str) -> None:
        if sid in self.waiting:
            timer = self.timers.pop(sid, None)
            if timer is not None:
                timer.cancel()
            self.timers[sid] = asyncio.create_task(self._release_after(sid, self.runner.after_boot_delay))

    def _check_connected(self, sid: str) -> None:
        commands = self.ctx.commands
        if commands is not None and commands.is_connected(sid):
            self.station_connected(sid)

    async def _release_after(self, sid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self.timers.pop(sid, None)
        if sid in self.waiting:
            self.waiting.discard(sid)
            self.ready.put_nowait(sid)

    # ---- bookkeeping -------------------------------------------------------------------

    def _settle(self, sid: str) -> None:
        self.open.discard(sid)
        self._check_done()

    def _check_done(self) -> None:
        if not self.open:
            self.done.set()

    async def _claim(self, sid: str) -> bool:
        now = self.ctx.now()

        async def job(db: AsyncSession) -> bool:
            result = await db.execute(
                update(JobStation)
                .where(
                    JobStation.job_id == self.job_id,
                    JobStation.station_id == sid,
                    JobStation.state.in_((_S.QUEUED, _S.WAITING)),
                )
                .values(state=_S.SENT, sent_at=now, attempts=JobStation.attempts + 1, updated_at=now)
            )
            return cast(CursorResult[Any], result).rowcount == 1

        return await self.ctx.write(job)

    async def _attempts(self, sid: str) -> int:
        async with self.ctx.db() as db:
            attempts = await db.scalar(
                select(JobStation.attempts).where(
                    JobStation.job_id == self.job_id, JobStation.station_id == sid
                )
            )
        return attempts or 0

    async def _move(
        self, sids: list[str], from_states: tuple[str, ...], to: JobStationState, error: str | None = None
    ) -> bool:
        """A conditional state change; True if any row moved."""
        now = self.ctx.now()
        values: dict[str, Any] = {"state": to, "updated_at": now}
        if to in FINAL_STATES:
            values["finished_at"] = now
        if error is not None:
            values["error"] = error

        async def job(db: AsyncSession) -> bool:
            result = await db.execute(
                update(JobStation)
                .where(
                    JobStation.job_id == self.job_id,
                    JobStation.station_id.in_(sids),
                    JobStation.state.in_(from_states),
                )
                .values(**values)
            )
            return cast(CursorResult[Any], result).rowcount > 0

        return await self.ctx.write(job)

    async def _record(self, sid: str, outcome: Outcome) -> None:
        now = self.ctx.now()

        async def job(db: AsyncSession) -> None:
            await db.execute(
                update(JobStation)
                .where(
                    JobStation.job_id == self.job_id,
                    JobStation.station_id == sid,
                    JobStation.state == _S.SENT,
                )
                .values(
                    state=outcome.state,
                    status=outcome.status,
                    error=None if outcome.error is None else outcome.error[:2000],
                    reply=outcome.reply,
                    finished_at=now,
                    updated_at=now,
                )
            )

        await self.ctx.write(job)
        self._settle(sid)

    async def _finish(self) -> None:
        now = self.ctx.now()

        async def job(db: AsyncSession) -> tuple[str, dict[str, int]]:
            row = await db.get(Job, self.job_id)
            if row is None:
                return "deleted", {}
            if row.state == JobState.RUNNING:
                row.state = JobState.COMPLETED
            if row.finished_at is None:
                row.finished_at = now
            counts = (await _counts(db, [self.job_id]))[self.job_id]
            audit(
                db,
                actor=row.actor,
                action="job.finished",
                object_type="job",
                object_id=self.job_id,
                at=now,
                result=row.state,
                counts={k: v for k, v in counts.items() if v},
            )
            return row.state, counts

        state, counts = await self.ctx.write(job)
        await self.ctx.bus.publish(
            Event("job.finished", {"job_id": self.job_id, "state": state, "counts": counts})
        )
