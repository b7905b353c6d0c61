"""Exports as a service: check what a caller asked, decide who sees token uids, audit, stream.

What a caller may ask, and the answer to each mistake (the API turns `Missing` into 404,
`Invalid` into 422, `Forbidden` into 403):
- a kind of `records.KINDS`; a format csv, jsonl or parquet;
- `from` / `to`: a UTC date (2026-01-01, midnight UTC) or an ISO 8601 time (with an offset, or
  without one meaning UTC); the period is [from, to), either end may be open; from must be
  before to;
- `station` (a station id), `location` (a location id), `partner` (an OCPI partner id; only
  for the kinds with a token: sessions, cdrs, authorization_requests); each must exist.

Who sees token uids: admin and operator see them unless they ask for pseudonyms; the
municipality (and anyone else allowed to export) sees pseudonyms, and asking for uids is
refused. Every export leaves two audit entries: `export.started` (who, what, filters, format,
pseudonymised) before the first byte, and `export.finished` (rows and bytes, result `ok` or
`aborted` when the download broke off).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select

from stekker.db.base import utcnow
from stekker.db.models import ChargingStation, Location
from stekker.db.models_ocpi import OcpiPartner
from stekker.db.models_users import Role
from stekker.export import pseudonym
from stekker.export.formats import WRITERS, ExportFormat, Writer
from stekker.export.records import KINDS, PARTNER_KINDS, RecordKind, kind_named
from stekker.export.stream import BATCH_SIZE, ExportFilter, ExportProgress, count_rows, export_bytes
from stekker.services.audit import record_audit
from stekker.services.context import ServiceContext
from stekker.services.errors import Forbidden, Invalid, Missing
from stekker.storage import safe_file_name

log = logging.getLogger(__name__)

#: Roles that may export (admin may do everything).
EXPORT_ROLES = (Role.OPERATOR, Role.MUNICIPALITY)
#: Roles that may see token uids as they are; everyone else gets pseudonyms.
REVEAL_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})

STATION_ID = re.compile(r"[A-Za-z0-9_.\-:*#]{1,48}")
MAX_ID = 2**31 - 1
_TEXT_MAX = 40
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """A checked request: which kind, which rows, which format."""

    kind: RecordKind
    wanted: ExportFilter
    format: ExportFormat

    def describe(self) -> dict[str, Any]:
        """The request as the audit log keeps it."""
        w = self.wanted
        return {
            "kind": self.kind.name,
            "format": self.format.value,
            "from": None if w.start is None else w.start.isoformat(),
            "to": None if w.end is None else w.end.isoformat(),
            "station": w.station,
            "location": w.location,
            "partner": w.partner,
        }


def _shown(text: str) -> str:
    """User input fit to quote in a message: short and printable."""
    cut = text[:_TEXT_MAX]
    return repr(cut if cut.isprintable() else cut.encode("unicode_escape").decode())


def parse_moment(text: str, name: str) -> datetime:
    """`2026-01-01` (midnight UTC) or an ISO 8601 time (no offset: UTC), as an aware UTC time."""
    raw = text.strip()
    if len(raw) > _TEXT_MAX:
        raise Invalid(f"{name} is too long for a date or time ({len(raw)} characters)")
    try:
        if _DATE.fullmatch(raw):
            return datetime.combine(date.fromisoformat(raw), time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(raw.replace("z", "Z").replace("Z", "+00:00"))
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Invalid(
            f"{name} must be a date (2026-01-01) or a time (2026-01-01T08:00:00Z), not {_shown(raw)}"
        ) from None


def parse_format(text: str) -> ExportFormat:
    try:
        return ExportFormat(text.strip().lower())
    except ValueError:
        choices = ", ".join(f.value for f in ExportFormat)
        raise Invalid(f"format must be one of {choices}, not {_shown(text)}") from None


def _id(value: int | None, name: str) -> int | None:
    if value is not None and not 1 <= value <= MAX_ID:
        raise Invalid(f"{name} must be an id from 1 to {MAX_ID}, not {str(value)[:_TEXT_MAX]}")
    return value


def parse_request(
    kind: str,
    *,
    start: str | None = None,
    end: str | None = None,
    format: str = "csv",
    station: str | None = None,
    location: int | None = None,
    partner: int | None = None,
) -> ExportRequest:
    """Check a request's values (not yet whether station, location or partner exist)."""
    record_kind = kind_named(kind)
    wanted = ExportFilter(
        start=None if start is None or not start.strip() else parse_moment(start, "from"),
        end=None if end is None or not end.strip() else parse_moment(end, "to"),
        station=_station(station),
        location=_id(location, "location"),
        partner=_id(partner, "partner"),
    )
    if wanted.start is not None and wanted.end is not None and wanted.start >= wanted.end:
        raise Invalid(f"from ({wanted.start.isoformat()}) must be before to ({wanted.end.isoformat()})")
    if wanted.partner is not None and record_kind.by_partner is None:
        raise Invalid(
            f"the partner filter applies to {', '.join(PARTNER_KINDS)} (records with a token), "
            f"not to {record_kind.name}"
        )
    return ExportRequest(record_kind, wanted, parse_format(format))


def _station(text: str | None) -> str | None:
    if text is None:
        return None
    if not STATION_ID.fullmatch(text):
        raise Invalid(
            f"station must be a station id (letters, digits, _.-:*#, at most 48), not {_shown(text)}"
        )
    return text


async def check_references(ctx: ServiceContext, wanted: ExportFilter) -> None:
    """Missing when the station, location or partner asked for does not exist: a typo should
    not give an empty file that looks like "nothing happened"."""
    async with ctx.db() as db:
        if wanted.station is not None and await db.get(ChargingStation, wanted.station) is None:
            raise Missing(f"no station {wanted.station!r}")
        if wanted.location is not None and await db.get(Location, wanted.location) is None:
            raise Missing(f"no location {wanted.location}")
        if wanted.partner is not None:
            found = await db.scalar(select(OcpiPartner.id).where(OcpiPartner.id == wanted.partner))
            if found is None:
                raise Missing(f"no OCPI partner {wanted.partner}")


def pseudonymise_for(role: Role, asked: bool | None) -> bool:
    """Whether `role` gets pseudonyms: asked for, or not allowed to see uids (then asking for
    uids is Forbidden)."""
    if role in REVEAL_ROLES:
        return bool(asked)
    if asked is False:
        raise Forbidden(
            f"role {role.value} sees token uids only as pseudonyms: leave pseudonymise out or set it to true"
        )
    return True


async def count(ctx: ServiceContext, request: ExportRequest) -> int:
    """How many rows the export would hold now (the CLI's progress bar total)."""
    await check_references(ctx, request.wanted)
    return await count_rows(ctx.db, request.kind, request.wanted)


def _stamp(moment: datetime) -> str:
    if moment.time() == time(0):
        return f"{moment:%Y%m%d}"
    return f"{moment:%Y%m%dT%H%M%SZ}"


def file_name(request: ExportRequest, taken_at: datetime) -> str:
    """Named by what the file holds: kind, filter, period (UTC), e.g.
    stekker-sessions-20260101-to-20260201.csv, stekker-cdrs-station-CP1-all-to-20261207T181200Z.csv
    (no start: from the first record; no end: up to when the export was taken)."""
    w = request.wanted
    scope = ""
    if w.station is not None:
        scope = "-station-" + safe_file_name(w.station, "station")
    elif w.location is not None:
        scope = f"-location-{w.location}"
    elif w.partner is not None:
        scope = f"-partner-{w.partner}"
    start = "all" if w.start is None else _stamp(w.start)
    end = _stamp(w.end if w.end is not None else taken_at.replace(microsecond=0))
    return f"stekker-{request.kind.name}{scope}-{start}-to-{end}.{WRITERS[request.format].extension}"


@dataclass
class Export:
    """An export that was checked and audited: what to call the file, its media type, and its
    bytes (`chunks()`, iterate once)."""

    ctx: ServiceContext
    actor: str
    request: ExportRequest
    pseudonymised: bool
    writer: Writer
    pseudonymiser: pseudonym.Pseudonymiser | None
    batch_size: int = BATCH_SIZE
    progress: ExportProgress = field(default_factory=ExportProgress)
    taken_at: datetime = field(default_factory=utcnow)  # an open period ends here

    @property
    def file_name(self) -> str:
        return file_name(self.request, self.taken_at)

    @property
    def media_type(self) -> str:
        return self.writer.media_type

    async def chunks(self) -> AsyncIterator[bytes]:
        """The export's bytes; the `export.finished` audit entry when done or broken off."""
        finished = False
        try:
            async for chunk in export_bytes(
                self.ctx.db,
                self.request.kind,
                self.request.wanted,
                self.writer,
                self.pseudonymiser,
                self.progress,
                self.batch_size,
            ):
                if chunk:
                    yield chunk
            finished = True
        finally:
            outcome = self._audit_finish("ok" if finished else "aborted")
            if finished:
                await outcome
            # broken off: the task was cancelled, so the entry is written by a task of its own

    def _audit_finish(self, result: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(
            record_audit(
                self.ctx,
                actor=self.actor,
                action="export.finished",
                object_type="export",
                object_id=self.request.kind.name,
                result=result,
                rows=self.progress.rows,
                bytes=self.progress.bytes,
                **self.request.describe(),
            )
        )
        _pending.add(task)
        task.add_done_callback(_finished)
        return task


_pending: set[asyncio.Task[None]] = set()


def _finished(task: asyncio.Task[None]) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("export audit entry not written: %s", task.exception())


async def start(
    ctx: ServiceContext,
    *,
    actor: str,
    role: Role,
    request: ExportRequest,
    pseudonymise: bool | None = None,
    batch_size: int = BATCH_SIZE,
) -> Export:
    """Check the references and the role, write `export.started`, and return the export to
    stream. Nothing has been read yet."""
    hide = pseudonymise_for(role, pseudonymise)
    await check_references(ctx, request.wanted)
    pseudonymiser = pseudonym.Pseudonymiser(await pseudonym.installation_key(ctx)) if hide else None
    writer = WRITERS[request.format](
        request.kind.columns,
        {"kind": request.kind.name, "pseudonymised": "true" if hide else "false"},
    )
    await record_audit(
        ctx,
        actor=actor,
        action="export.started",
        object_type="export",
        object_id=request.kind.name,
        pseudonymised=hide,
        **request.describe(),
    )
    return Export(ctx, actor, request, hide, writer, pseudonymiser, batch_size, taken_at=ctx.now())


def kinds() -> list[RecordKind]:
    return list(KINDS.values())
