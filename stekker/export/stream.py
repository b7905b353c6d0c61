"""Reading a kind's rows in batches with constant memory, and turning them into export bytes.

Rows are read by keyset pagination on the primary key: each batch is `WHERE id > last ...
ORDER BY id LIMIT n`, so every batch costs the same however deep into years of data it is
(an OFFSET would rescan everything before it), and PostgreSQL and SQLite both answer it from
the primary key index. Each batch takes a connection from the pool and gives it back: on
SQLite the pool has one connection, and holding it for a whole export would stop every write.

The export reads up to the highest id that existed when it began, so it ends even while
stations keep writing, and two exports begun at the same moment hold the same rows. Rows
committed later are for the next export. Period filters use the record's time column, which
need not follow id order (a station's offline queue arrives late): the keyset still visits
every row once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Select, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from stekker.export.formats import Writer
from stekker.export.pseudonym import Pseudonymiser, RecordScrubber
from stekker.export.records import Column, ColumnType, RecordKind

BATCH_SIZE = 5_000  # rows per query and per encoding step


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which rows: a half-open period [start, end) on the kind's time column (None: open
    ended), and optionally one station, the stations of one location, or one OCPI partner's
    tokens. Checked by `stekker.export.service`; here it is only applied."""

    start: datetime | None = None
    end: datetime | None = None
    station: str | None = None
    location: int | None = None
    partner: int | None = None


@dataclass(slots=True)
class ExportProgress:
    """How far an export got: rows and bytes sent so far."""

    rows: int = 0
    bytes: int = 0


def _core(expression: Any) -> Any:
    """The table column behind an ORM attribute: plain Core reads skip the ORM's row handling."""
    if isinstance(expression, InstrumentedAttribute):
        return expression.property.columns[0]
    return expression


def conditions(kind: RecordKind, wanted: ExportFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of `wanted` for `kind`."""
    where: list[ColumnElement[bool]] = []
    time = _core(kind.time)
    if wanted.start is not None:
        where.append(time >= wanted.start)
    if wanted.end is not None:
        where.append(time < wanted.end)
    if wanted.station is not None:
        where.append(kind.by_station(wanted.station))
    if wanted.location is not None:
        where.append(kind.by_location(wanted.location))
    if wanted.partner is not None:
        if kind.by_partner is None:
            raise ValueError(f"the partner filter does not apply to {kind.name}")
        where.append(kind.by_partner(wanted.partner))
    return where


async def count_rows(
    factory: async_sessionmaker[AsyncSession], kind: RecordKind, wanted: ExportFilter
) -> int:
    """How many rows an export of `kind` with `wanted` would hold now."""
    statement = select(func.count()).select_from(kind.source).where(*conditions(kind, wanted))
    async with factory() as db:
        return int(await db.scalar(statement) or 0)


async def _highest_key(factory: async_sessionmaker[AsyncSession], kind: RecordKind) -> int | None:
    async with factory() as db:
        value = await db.scalar(select(func.max(_core(kind.key))))
    return None if value is None else int(value)


def _selected(column: Column) -> Any:
    """What a batch selects for `column`. Times come as the driver's datetimes (naive UTC on
    SQLite) instead of through `UTCDateTime`, whose per-value Python step cost a quarter of
    the read time on the event loop (measured in bench/export.py); the writers read naive as UTC."""
    expression = _core(column.expr)
    if column.type is ColumnType.TIMESTAMP:
        return type_coerce(expression, DateTime(timezone=True))
    return expression


def batch_query(kind: RecordKind, wanted: ExportFilter, highest: int, batch_size: int) -> Select[Any]:
    """The query of the first batch; the next ones add `key > last`."""
    key = _core(kind.key)
    return (
        select(*(_selected(c) for c in kind.columns))
        .select_from(kind.source)
        .where(key <= highest, *conditions(kind, wanted))
        .order_by(key)
        .limit(batch_size)
    )


async def read_batches(
    factory: async_sessionmaker[AsyncSession],
    kind: RecordKind,
    wanted: ExportFilter,
    batch_size: int = BATCH_SIZE,
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """The rows of `kind` that match `wanted`, in primary-key order, `batch_size` at a time
    (the first column of every row is the key)."""
    highest = await _highest_key(factory, kind)
    if highest is None:
        return
    first = batch_query(kind, wanted, highest, batch_size)
    key = _core(kind.key)
    last: int | None = None
    while True:
        statement = first if last is None else first.where(key > last)
        async with factory() as db:
            rows = (await db.execute(statement)).all()
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last = rows[-1][0]


async def export_bytes(
    factory: async_sessionmaker[AsyncSession],
    kind: RecordKind,
    wanted: ExportFilter,
    writer: Writer,
    pseudonymiser: Pseudonymiser | None,
    progress: ExportProgress | None = None,
    batch_size: int = BATCH_SIZE,
) -> AsyncIterator[bytes]:
    """The bytes of a whole export, one batch at a time: what the API streams and the bench
    measures. Pseudonymising and encoding run in a worker thread, so a large export leaves the
    event loop free for the stations between batches."""
    scrub = None if pseudonymiser is None else RecordScrubber(kind.columns, pseudonymiser)
    progress = progress if progress is not None else ExportProgress()

    def encode(rows: Sequence[Sequence[Any]]) -> bytes:
        return writer.write(rows if scrub is None else scrub(rows))

    head = writer.begin()
    progress.bytes += len(head)
    yield head
    async for rows in read_batches(factory, kind, wanted, batch_size):
        data = await asyncio.to_thread(encode, rows)
        progress.rows += len(rows)
        progress.bytes += len(data)
        yield data
    tail = writer.finish()
    progress.bytes += len(tail)
    yield tail
