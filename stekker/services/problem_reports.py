"""Problems drivers report at an EVSE, and the helpdesk's list of them.

`report` files one (from the public page: checked by `domain.problem_reports`, stored, an
audit entry and a `problem.reported` event); `open_reports`/`list_reports` give the list the
helpdesk works from (console, `GET /api/problem-reports`, `stekker problem list`); `handle`
marks one handled. `form_key` is the installation's key for the public form's token.
`take_report_slot` applies the per-address throttle (`domain.problem_reports.ReportThrottle`),
cluster-wide in Redis when the context has one (`cluster.limits`), so a sender gets its budget
once for all processes, not once per process.
"""

from __future__ import annotations

import secrets
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.cluster.limits import Limiter, buckets_for
from stekker.db.models import ChargingStation, Evse
from stekker.db.models_problem_reports import ProblemReport
from stekker.db.models_secrets import InstallationSecret
from stekker.domain.problem_reports import ReportDraft, ReportThrottle
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.errors import Conflict, Missing

FORM_KEY_NAME = "problem_report.form_key"
MAX_LIST = 500
_KEYS: dict[str, bytes] = {}  # per database: the key never changes, so it is read once


@dataclass(frozen=True, slots=True)
class ReportView:
    """A problem report as the helpdesk reads it."""

    id: int
    evse_uid: str
    station_id: str | None
    kind: str
    message: str
    contact: str | None
    language: str
    reported_at: datetime
    handled_at: datetime | None
    handled_by: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "evse_uid": self.evse_uid,
            "station_id": self.station_id,
            "kind": self.kind,
            "message": self.message,
            "contact": self.contact,
            "language": self.language,
            "reported_at": self.reported_at,
            "handled_at": self.handled_at,
            "handled_by": self.handled_by,
        }


def _view(row: ProblemReport) -> ReportView:
    return ReportView(
        id=row.id,
        evse_uid=row.evse_uid,
        station_id=row.station_id,
        kind=row.kind,
        message=row.message,
        contact=row.contact,
        language=row.language,
        reported_at=row.reported_at,
        handled_at=row.handled_at,
        handled_by=row.handled_by,
    )


async def form_key(ctx: ServiceContext) -> bytes:
    """The installation's key for signing the public report form, made on first use and kept
    in the database, so every process (and every restart) accepts the forms the others served."""
    cache_key = str(ctx.settings.database_url)
    known = _KEYS.get(cache_key)
    if known is not None:
        return known

    async def stored() -> str | None:
        async with ctx.db() as db:
            value: str | None = await db.scalar(
                select(InstallationSecret.value).where(InstallationSecret.name == FORM_KEY_NAME)
            )
        return value

    value = await stored()
    if value is None:
        candidate, at = secrets.token_hex(32), ctx.now()

        async def job(db: AsyncSession) -> None:
            insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
            statement = insert(InstallationSecret).values(name=FORM_KEY_NAME, value=candidate, created_at=at)
            await db.execute(statement.on_conflict_do_nothing(index_elements=["name"]))

        await ctx.write(job)  # two processes at once: the first wins, both read the winner
        value = await stored()
        assert value is not None, "the form key was just stored"
    key = _KEYS[cache_key] = bytes.fromhex(value)
    return key


async def report(ctx: ServiceContext, *, evse_uid: str, draft: ReportDraft, language: str) -> ReportView:
    """File a driver's report at a public EVSE id; Missing if no station in service has it."""
    now = ctx.now()

    async def job(db: AsyncSession) -> ProblemReport:
        station_id = (
            await db.execute(
                select(Evse.station_id)
                .join(ChargingStation, ChargingStation.id == Evse.station_id)
                .where(Evse.evse_id == evse_uid, ChargingStation.retired_at.is_(None))
            )
        ).scalar_one_or_none()
        if station_id is None:
            raise Missing(f"no EVSE {evse_uid!r}")
        row = ProblemReport(
            evse_uid=evse_uid,
            station_id=station_id,
            kind=draft.kind.value,
            message=draft.message,
            contact=draft.contact,
            language=language,
            reported_at=now,
        )
        db.add(row)
        await db.flush()
        audit(
            db,
            actor="public",
            action="problem.reported",
            object_type="problem_report",
            object_id=row.id,
            at=now,
            evse_uid=evse_uid,
            kind=draft.kind.value,
        )  # the words and the contact stay in the report, not in the audit log
        return row

    row = await ctx.write(job)
    view = _view(row)
    await ctx.bus.publish(
        Event("problem.reported", {"id": view.id, "evse_uid": evse_uid, "station_id": view.station_id})
    )
    return view


async def list_reports(
    ctx: ServiceContext, *, open_only: bool = True, station_id: str | None = None, limit: int = 100
) -> list[ReportView]:
    """Reports newest first: the open ones (default) or all; of one station if given."""
    query = select(ProblemReport).order_by(ProblemReport.id.desc()).limit(min(max(limit, 1), MAX_LIST))
    if open_only:
        query = query.where(ProblemReport.handled_at.is_(None))
    if station_id is not None:
        query = query.where(ProblemReport.station_id == station_id)
    async with ctx.db() as db:
        rows = (await db.execute(query)).scalars().all()
    return [_view(r) for r in rows]


async def handle(ctx: ServiceContext, *, actor: str, report_id: int) -> ReportView:
    """Mark a report handled; Missing if there is none, Conflict if it already was."""
    now = ctx.now()

    async def job(db: AsyncSession) -> ProblemReport:
        row = await db.get(ProblemReport, report_id)
        if row is None:
            raise Missing(f"no problem report {report_id}")
        if row.handled_at is not None:
            raise Conflict(f"problem report {report_id} was already handled by {row.handled_by}")
        row.handled_at, row.handled_by = now, actor
        audit(
            db,
            actor=actor,
            action="problem.handled",
            object_type="problem_report",
            object_id=report_id,
            at=now,
        )
        return row

    view = _view(await ctx.write(job))
    await ctx.bus.publish(Event("problem.handled", {"id": view.id, "station_id": view.station_id}))
    return view


# ---- the throttle, cluster-wide ------------------------------------------------------------------

_LIMITERS: weakref.WeakKeyDictionary[ReportThrottle, Limiter] = weakref.WeakKeyDictionary()


async def take_report_slot(ctx: ServiceContext, local: ReportThrottle, address: str) -> float:
    """0 if `address` may file a report now (and it is counted), else the seconds to wait.
    `local` is the app's in-memory throttle: the truth in one process, and what counts while
    Redis is away in a cluster (fail open to per-process counting, as `cluster.limits` says)."""
    limiter = _LIMITERS.get(local)
    if limiter is None:
        limiter = _LIMITERS[local] = buckets_for(
            ctx.redis, ctx.keys, "report", rate=local.per_hour / 3600, burst=local.burst, local=local.take
        )
    return await limiter.take(address)
