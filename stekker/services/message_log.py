"""The OCPP message log: every frame in and out per station, written in batches, kept for a
retention period, read newest first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import orjson
from sqlalchemy import CursorResult, Table, and_, delete, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import OcppMessage, StationEvent
from stekker.db.writer import run_in_transaction
from stekker.domain.storage_budget import Spend
from stekker.services.context import ServiceContext
from stekker.services.outage import OutageLog
from stekker.services.stations import budget_notice

log = logging.getLogger(__name__)

NOT_A_FRAME = 0  # message_type of text that is no OCPP-J frame (not JSON, not an array, ...)
IN = "in"
OUT = "out"

_ID_CHARS = 64  # the width of message_id and action
# However many frames are pending, their text stays below this many characters (~64 MB).
_PENDING_CHARS = 64 * 1024 * 1024
_WARN_EVERY = 10.0  # seconds between warnings about dropped frames
_RETRY_MAX = 5.0  # seconds between write attempts while the database is down
_PURGE_CHUNK = 5_000

_INSERT = insert(cast(Table, OcppMessage.__table__))
_INSERT_EVENT = insert(cast(Table, StationEvent.__table__))


def frame_identity(frame: Any) -> tuple[int, str]:
    """(message_type, message_id) of a parsed frame, whatever shape it has: 0 and "" when
    unreadable. Only OCPP-J's small type numbers are kept, so a hostile one fits the column."""
    if not isinstance(frame, list) or not frame:
        return NOT_A_FRAME, ""
    kind = frame[0]
    message_type = kind if type(kind) is int and 0 < kind < 10 else NOT_A_FRAME
    message_id = frame[1] if len(frame) > 1 else ""
    if not isinstance(message_id, str):
        message_id = "" if isinstance(message_id, list | dict) or message_id is None else str(message_id)
    return message_type, message_id


def _clean(text: str, limit: int) -> str:
    """Cut to the column and keep NUL out (PostgreSQL text cannot hold it)."""
    text = text[:limit]
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


class Spill:
    """Frames kept in a file (JSON lines) while the database is down and the memory bound is
    reached, at most `limit` bytes (0: none); `take` reads them back and empties the file.
    A file left by a process that stopped during an outage is taken at the next write."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.bytes = path.stat().st_size if limit and path.exists() else 0
        self._file: BinaryIO | None = None

    @property
    def waiting(self) -> bool:
        return self.bytes > 0

    def add(self, row: dict[str, Any]) -> bool:
        """Append a row; False when the file is full (or spilling is off)."""
        line = orjson.dumps(row) + b"\n"
        if self.bytes + len(line) > self.limit:
            return False
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
            self._file.write(line)
        except OSError as exc:
            log.warning("OCPP message log: cannot spill to %s: %s", self.path, exc)
            self.limit = 0  # no more tries: shed instead
            return False
        self.bytes += len(line)
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def take(self) -> list[dict[str, Any]]:
        self.close()
        self.bytes = 0
        return await asyncio.to_thread(_read_spill, self.path)


def _read_spill(path: Path) -> list[dict[str, Any]]:
    try:
        data = path.read_bytes()
        path.unlink()
    except FileNotFoundError:
        return []
    rows = []
    for line in data.splitlines():
        try:
            row = orjson.loads(line)
            row["occurred_at"] = datetime.fromisoformat(row["occurred_at"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a line cut short by a crash
        rows.append(row)
    return rows


class MessageLog:
    """Buffers the frames the gateway sees and writes them in batches.

    Recording a frame is a cheap, synchronous append; a background task (`run`) writes what
    gathered every `message_log_flush_interval` seconds, or at once when a batch is full,
    one INSERT per batch: on SQLite through the service context's writer (one writer at a
    time), on PostgreSQL on a connection of its own, so the stations' own transactions never
    wait for a log insert in their batch. The gateway never waits for the log: OCPP handling
    comes first. The buffer is bounded (`message_log_max_pending`
    frames, and about 64 M characters); when the database cannot keep up, the oldest frames
    are dropped, counted in `dropped` and warned about, rather than slowing or blocking a
    station. A batch the database refuses is dropped as well (`lost`). During a database
    outage frames are kept (memory, then a spill file) and written when it is back (`flush`).
    What a station's frames may take is charged to its storage budget, shared with its
    station events (`stekker.domain.storage_budget`). So the log is evidence that is complete
    in normal operation and best-effort under overload, with every gap counted per station;
    the station's own data (transactions, meter values) is committed before each reply
    regardless (DESIGN.md rule 4). `stop` writes what is still buffered.
    """

    def __init__(self, ctx: ServiceContext) -> None:
        s = ctx.settings
        self._ctx = ctx
        self._max_chars = s.message_log_max_frame_chars
        self._max_pending = s.message_log_max_pending
        self._batch = s.message_log_batch_size
        self._interval = s.message_log_flush_interval
        self._pending: deque[dict[str, Any]] = deque()
        self._pending_chars = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_warning = 0.0
        self.written = 0
        self.dropped = 0  # shed from the buffer under overload
        self.lost = 0  # in a batch the database refused
        self.dropped_by_station: Counter[str] = Counter()  # shed or lost, per station
        self._events: list[dict[str, Any]] = []  # station events the log has to tell (budget)
        self._gaps: dict[str, tuple[int, datetime, datetime]] = {}  # frames shed: count, first, last
        self.outage = OutageLog("OCPP message log", log)
        self._spill = Spill(s.storage_directory / "message-log-spill.jsonl", s.message_log_spill_bytes)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(
        self,
        station_id: str,
        direction: str,
        message_type: int,
        message_id: str,
        action: str | None,
        text: str | bytes,
        at: datetime,
    ) -> None:
        """Buffer one frame (`text` exactly as on the wire). Never blocks, never raises."""
        if isinstance(text, bytes):  # a binary WebSocket frame: not OCPP-J, kept readable
            text = text.decode("utf-8", "replace")
        size = len(text)
        stored = _clean(text, self._max_chars)
        # charged to the station's storage budget, shared with its station events
        limit = self._ctx.settings.ocpp_station_storage_per_hour
        spend = self._ctx.storage.spend(station_id, len(stored), at, limit, frame=True)
        if spend is not Spend.STORE:
            if spend is Spend.EXCEEDED:
                self._event(
                    station_id, "storage_budget_exceeded", at, budget_notice(self._ctx, station_id, "frame")
                )
            return
        self._pending.append(
            {
                "station_id": station_id,
                "direction": direction,
                "message_type": message_type,
                "message_id": _clean(message_id, _ID_CHARS),
                "action": None if action is None else _clean(action, _ID_CHARS),
                "frame": stored,
                "size": size,
                "truncated": size > len(stored),
                "occurred_at": at,
            }
        )
        self._pending_chars += len(stored)
        if len(self._pending) > self._max_pending or self._pending_chars > _PENDING_CHARS:
            self._shed()
        if len(self._pending) >= self._batch:
            self._wake.set()

    def _event(self, station_id: str, kind: str, at: datetime, detail: dict[str, Any]) -> None:
        """A station event written with the next batch."""
        self._events.append({"station_id": station_id, "kind": kind, "detail": detail, "occurred_at": at})
        self._wake.set()

    def _shed(self) -> None:
        shed = 0
        while len(self._pending) > 1 and (
            len(self._pending) > self._max_pending or self._pending_chars > _PENDING_CHARS
        ):
            row = self._pending.popleft()
            self._pending_chars -= len(row["frame"])
            # during an outage the oldest frames go to disk, while there is room
            if self.outage.since is not None and self._spill.add(row):
                continue
            self.dropped_by_station[row["station_id"]] += 1
            self._merge_gap(row["station_id"], 1, row["occurred_at"], row["occurred_at"])
            shed += 1
        self.dropped += shed
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            worst = ", ".join(f"{sid} {n}" for sid, n in self.dropped_by_station.most_common(5))
            log.warning(
                "OCPP message log cannot keep up: dropped the oldest frames (%d in all so far; most: %s)",
                self.dropped,
                worst,
            )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="message-log")

    async def stop(self) -> None:
        """Stop the background task and write whatever is still buffered; if the database is
        down, what is buffered goes to the spill file for the next start (room permitting)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._pending:
            kept = 0
            while self._pending:
                row = self._pending.popleft()
                if self._spill.add(row):
                    kept += 1
                else:
                    self.lost += 1
                    self.dropped_by_station[row["station_id"]] += 1
            self._pending_chars = 0
            log.warning("OCPP message log: the database is down at shutdown; %d frames kept on disk", kept)
        self._spill.close()

    async def run(self) -> None:
        while True:
            if self.outage.since is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
            else:  # the database is down: try again now and then, not at every frame
                await asyncio.sleep(min(self._interval * 4, _RETRY_MAX))
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write everything buffered, a batch per INSERT, in arrival order.

        While the database is unreachable the frames stay buffered; beyond the memory bound
        the oldest go to the spill file (`Spill`), and beyond its size they are shed and
        counted per station. The outage is logged once when it starts and once when it ends;
        when the database is back, the buffer is written, then the spill file. A station that
        lost frames, to an outage or to overload, gets a `message_log_gap` event (count, first
        and last time) once the log can write again. A batch the database refuses while
        reachable is dropped (`lost`).
        """
        while self._pending or self._events or self._gaps or self._spill.waiting:
            count = min(self._batch, len(self._pending))
            rows = [self._pending.popleft() for _ in range(count)]
            self._pending_chars -= sum(len(row["frame"]) for row in rows)
            events, self._events = self._events, []
            gaps, self._gaps = self._gaps, {}
            events.extend(self._gap_event(station_id, gap) for station_id, gap in gaps.items())

            async def job(
                db: AsyncSession, rows: list[dict[str, Any]] = rows, events: list[dict[str, Any]] = events
            ) -> None:
                if rows:
                    await db.execute(_INSERT, rows)
                if events:
                    await db.execute(_INSERT_EVENT, events)

            try:
                await self._write(job)
            except Exception as exc:
                if await self._reachable():
                    self.lost += len(rows)
                    for row in rows:
                        self.dropped_by_station[row["station_id"]] += 1
                    log.exception("could not write %d OCPP frames to the message log", len(rows))
                    continue
                self.outage.failed(exc)
                self._events = events[: len(events) - len(gaps)] + self._events
                for station_id, gap in gaps.items():
                    self._merge_gap(station_id, *gap)
                self._pending.extendleft(reversed(rows))  # first in line again
                self._pending_chars += sum(len(row["frame"]) for row in rows)
                if len(self._pending) > self._max_pending or self._pending_chars > _PENDING_CHARS:
                    self._shed()
                return
            else:
                self.written += len(rows)
                if self.outage.since is not None:
                    self.outage.ok()
                if self._spill.waiting and not await self._write_back():
                    return

    async def _write_back(self) -> bool:
        """Insert what was spilled to disk during an outage, oldest first. A batch the
        database refuses while reachable is lost (counted); if it is down again, the rest
        goes back to disk (or, without room, is lost) and False is returned."""
        rows = await self._spill.take()
        written = 0
        for start in range(0, len(rows), self._batch):
            batch = rows[start : start + self._batch]

            async def job(db: AsyncSession, batch: list[dict[str, Any]] = batch) -> None:
                await db.execute(_INSERT, batch)

            try:
                await self._write(job)
            except Exception as exc:
                if await self._reachable():
                    self._lose(batch)
                    log.exception("could not write %d OCPP frames kept on disk", len(batch))
                    continue
                self.outage.failed(exc)
                for row in rows[start:]:
                    if not self._spill.add(row):
                        self._lose([row])
                self.written += written
                return False
            written += len(batch)
        self.written += written
        if written:
            log.warning("OCPP message log: wrote back %d frames kept on disk during the outage", written)
        return True

    async def _write(self, job: Callable[[AsyncSession], Awaitable[None]]) -> None:
        """SQLite through the writer (its one writer at a time); PostgreSQL in a transaction of
        its own, so the log never queues behind the stations' writes."""
        if self._ctx.settings.is_sqlite:
            await self._ctx.write(job)
        else:
            await run_in_transaction(self._ctx.db, job)

    def _lose(self, rows: list[dict[str, Any]]) -> None:
        self.lost += len(rows)
        for row in rows:
            self.dropped_by_station[row["station_id"]] += 1

    async def _reachable(self) -> bool:
        try:
            async with self._ctx.db() as db:
                await db.execute(select(literal(1)))
        except Exception:
            return False
        return True

    def _merge_gap(self, station_id: str, count: int, first: datetime, last: datetime) -> None:
        gap = self._gaps.get(station_id)
        if gap is None:
            self._gaps[station_id] = (count, first, last)
        else:
            self._gaps[station_id] = (gap[0] + count, min(gap[1], first), max(gap[2], last))

    def _gap_event(self, station_id: str, gap: tuple[int, datetime, datetime]) -> dict[str, Any]:
        count, first, last = gap
        detail = {"frames": count, "first": first.isoformat(), "last": last.isoformat()}
        return {"station_id": station_id, "kind": "message_log_gap", "detail": detail, "occurred_at": last}


async def purge(ctx: ServiceContext, older_than: datetime | None = None) -> int:
    """Delete frames older than the retention period (or `older_than`), in chunks so that the
    gateway's writes get their turn in between. Returns how many were deleted."""
    cutoff = older_than or ctx.now() - timedelta(days=ctx.settings.message_log_retention_days)
    doomed = (
        select(OcppMessage.id).where(OcppMessage.occurred_at < cutoff).limit(_PURGE_CHUNK).scalar_subquery()
    )
    statement = delete(OcppMessage).where(OcppMessage.id.in_(doomed))

    async def job(db: AsyncSession) -> int:
        result = await db.execute(statement, execution_options={"synchronize_session": False})
        return int(cast(CursorResult[Any], result).rowcount)

    total = 0
    while True:
        deleted = await ctx.write(job)
        total += deleted
        if deleted < _PURGE_CHUNK:
            return total
        await asyncio.sleep(0)


def _days(ctx: ServiceContext) -> int:
    return ctx.settings.message_log_retention_days


# ---- reading ----------------------------------------------------------------------------------


class UnknownCursor(Exception):
    """`before_id` does not name a logged frame of this station (purged, or another station's)."""


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Which frames of a station to read. Times are UTC; `before_id` continues a page."""

    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    direction: str | None = None
    before_id: int | None = None
    limit: int = 100


async def messages(ctx: ServiceContext, station_id: str, f: MessageFilter) -> list[OcppMessage]:
    """A station's frames newest first (time, then id), `limit` of them after the cursor."""
    m = OcppMessage
    query = select(m).where(m.station_id == station_id)
    if f.since is not None:
        query = query.where(m.occurred_at >= f.since)
    if f.until is not None:
        query = query.where(m.occurred_at <= f.until)
    if f.action is not None:
        query = query.where(m.action == f.action)
    if f.direction is not None:
        query = query.where(m.direction == f.direction)
    async with ctx.db() as db:
        if f.before_id is not None:
            at = (
                await db.execute(select(m.occurred_at).where(m.id == f.before_id, m.station_id == station_id))
            ).scalar_one_or_none()
            if at is None:
                raise UnknownCursor(
                    f"before_id {f.before_id} is not a logged message of station {station_id!r} "
                    "(purged, or never was); start again without it"
                )
            query = query.where(or_(m.occurred_at < at, and_(m.occurred_at == at, m.id < f.before_id)))
        query = query.order_by(m.occurred_at.desc(), m.id.desc()).limit(f.limit)
        return list((await db.execute(query)).scalars())
