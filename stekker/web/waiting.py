"""What waits for the user's role: the first thing each dashboard shows, every entry a count
in words and a link to the page where it is done.

- municipality: tariff proposals to decide, and tariffs in force that it never approved;
- operator: faulted stations, open problem reports, offline stations, bulk jobs with failures
  (last 7 days), OCPI pushes that were given up, and tariffs in force without approval (it
  must propose them properly);
- helpdesk: open problem reports from drivers, faulted and offline stations (the drivers who
  will call about them);
- admin: roaming partners whose registration is still pending, and accounts nobody has
  logged in with yet;
- read-only: nothing waits; the dashboard says so.

Each count is one aggregate query; the examples (up to EXAMPLES) name the first few, so a
busy night shows "4 laadpalen in storing: A, B, C, ..." and a click opens the full list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingStation, Location
from stekker.db.models_jobs import Job, JobStation
from stekker.db.models_ocpi import OcpiPartner, PartnerStatus
from stekker.db.models_problem_reports import ProblemReport
from stekker.db.models_tariffs import TariffRecord, TariffTransition, TariffVersion, TariffVersionStatus
from stekker.db.models_users import Role, User
from stekker.domain.tariff_approval import IN_FORCE, never_approved
from stekker.services.context import ServiceContext
from stekker.web import stations as station_list
from stekker.web.overview import DEAD_PUSHES_BY_PARTNER, FAILED_STATES, JOB_WINDOW

EXAMPLES = 5
#: where the helpdesk handles what drivers report
PROBLEMS = "/console/helpdesk/problems"
#: where the roaming partners are managed today: the operator API (no console page yet)
PARTNERS_DOCS = "/docs#/ocpi%20partners"


@dataclass(frozen=True, slots=True)
class Example:
    """One of the things counted, by name, with its own page."""

    text: str
    href: str


@dataclass(frozen=True, slots=True)
class Waiting:
    """One kind of work that waits for a role: how many, the words (text key `<key>_one` or
    `<key>_many`, with {count}), where it is done, and how urgent (a badge kind)."""

    key: str
    count: int
    href: str
    kind: str = "warn"
    examples: list[Example] = field(default_factory=list)

    @property
    def text_key(self) -> str:
        return f"{self.key}_one" if self.count == 1 else f"{self.key}_many"

    @property
    def more(self) -> int:
        """How many are counted but not named."""
        return max(0, self.count - len(self.examples))


Finder = Callable[[AsyncSession, datetime], Awaitable["Waiting | None"]]


def _station_link(station_id: str) -> str:
    return f"/console/stations/{quote(station_id, safe='')}"


def _tariff_link(code: str, version: int | None = None) -> str:
    base = f"/console/tariffs/{quote(code, safe='')}"
    return base if version is None else f"{base}/versions/{version}"


async def _stations(
    db: AsyncSession, state: station_list.StatusFilter, key: str, kind: str
) -> Waiting | None:
    """Stations the list's own filter selects (so the count is what the link shows)."""
    where = and_(*station_list._filters("", "", state))
    base = (
        select(ChargingStation.id)
        .outerjoin(Location, Location.id == ChargingStation.location_id)
        .where(where)
    )
    count = (await db.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    if not count:
        return None
    names = (await db.execute(base.order_by(ChargingStation.id).limit(EXAMPLES))).scalars()
    return Waiting(
        key,
        int(count),
        f"/console/stations?status={state}",
        kind,
        [Example(n, _station_link(n)) for n in names],
    )


async def faulted_stations(db: AsyncSession, now: datetime) -> Waiting | None:
    return await _stations(db, "faulted", "wait_faulted", "bad")


async def offline_stations(db: AsyncSession, now: datetime) -> Waiting | None:
    return await _stations(db, "offline", "wait_offline", "off")


async def open_problem_reports(db: AsyncSession, now: datetime) -> Waiting | None:
    """What drivers reported from a public EVSE page and nobody has handled yet."""
    rows = (
        await db.execute(
            select(ProblemReport.evse_uid)
            .where(ProblemReport.handled_at.is_(None))
            .order_by(ProblemReport.reported_at, ProblemReport.id)
        )
    ).scalars()
    places = list(rows)
    if not places:
        return None
    examples = [Example(uid, PROBLEMS) for uid in dict.fromkeys(places)]
    return Waiting("wait_problems", len(places), PROBLEMS, "warn", examples[:EXAMPLES])


async def tariffs_to_decide(db: AsyncSession, now: datetime) -> Waiting | None:
    rows = (
        await db.execute(
            select(TariffRecord.code, TariffRecord.name, TariffVersion.version)
            .join(TariffVersion, TariffVersion.tariff_id == TariffRecord.id)
            .where(TariffVersion.status == TariffVersionStatus.SUBMITTED)
            .order_by(TariffVersion.effective_from, TariffRecord.code)
        )
    ).all()
    if not rows:
        return None
    examples = [
        Example(f"{name} ({code}) v{version}", _tariff_link(code, version)) for code, name, version in rows
    ]
    href = examples[0].href if len(rows) == 1 else "/console/tariffs"
    return Waiting("wait_tariff_decide", len(rows), href, "warn", examples[:EXAMPLES])


async def tariffs_never_approved(db: AsyncSession, now: datetime) -> Waiting | None:
    """Versions in force now or later (active, scheduled) that skipped the approval."""
    versions = (
        await db.execute(
            select(
                TariffVersion.id,
                TariffVersion.status,
                TariffVersion.version,
                TariffRecord.code,
                TariffRecord.name,
            )
            .join(TariffRecord, TariffRecord.id == TariffVersion.tariff_id)
            .where(TariffVersion.status.in_([TariffVersionStatus.ACTIVE, TariffVersionStatus.SCHEDULED]))
            .order_by(TariffRecord.code, TariffVersion.version)
        )
    ).all()
    if not versions:
        return None
    steps: dict[int, list[tuple[str | None, str]]] = {v[0]: [] for v in versions}
    for version_id, before, after in await db.execute(
        select(TariffTransition.version_id, TariffTransition.from_status, TariffTransition.to_status).where(
            TariffTransition.version_id.in_(list(steps))
        )
    ):
        steps[version_id].append((before, after))
    found = [
        Example(f"{name} ({code}) v{number}", _tariff_link(code, number))
        for version_id, status, number, code, name in versions
        if status in IN_FORCE and never_approved(status, steps[version_id])
    ]
    if not found:
        return None
    href = found[0].href if len(found) == 1 else "/console/tariffs"
    return Waiting("wait_tariff_unapproved", len(found), href, "warn", found[:EXAMPLES])


async def failed_jobs(db: AsyncSession, now: datetime) -> Waiting | None:
    failures = func.sum(case((JobStation.state.in_([s.value for s in FAILED_STATES]), 1), else_=0))
    rows = (
        await db.execute(
            select(Job.id, Job.function)
            .join(JobStation, JobStation.job_id == Job.id)
            .where(Job.created_at >= now - JOB_WINDOW)
            .group_by(Job.id, Job.function)
            .having(failures > 0)
            .order_by(Job.id.desc())
        )
    ).all()
    if not rows:
        return None
    examples = [Example(f"#{job_id} {function}", f"/console/jobs/{job_id}") for job_id, function in rows]
    return Waiting("wait_jobs_failed", len(rows), "/console/jobs", "bad", examples[:EXAMPLES])


async def dead_pushes(db: AsyncSession, now: datetime) -> Waiting | None:
    rows = (await db.execute(DEAD_PUSHES_BY_PARTNER)).all()
    total = sum(int(n) for _, n in rows)
    if not total:
        return None
    examples = [Example(f"{name}: {int(n)}", PARTNERS_DOCS) for name, n in rows]
    return Waiting("wait_ocpi_dead", total, PARTNERS_DOCS, "bad", examples[:EXAMPLES])


async def users_never_logged_in(db: AsyncSession, now: datetime) -> Waiting | None:
    """Active accounts nobody has used yet: a colleague who did not get (or lost) the
    invitation, or an account made by mistake."""
    waiting_user = and_(User.active.is_(True), User.last_login_at.is_(None))
    names = list(
        (await db.execute(select(User.username).where(waiting_user).order_by(User.username))).scalars()
    )
    if not names:
        return None
    examples = [Example(n, "/console/users") for n in names]
    return Waiting("wait_users_new", len(names), "/console/users", "off", examples[:EXAMPLES])


async def pending_partners(db: AsyncSession, now: datetime) -> Waiting | None:
    names = list(
        (
            await db.execute(
                select(OcpiPartner.name)
                .where(OcpiPartner.status == PartnerStatus.PENDING)
                .order_by(OcpiPartner.name)
            )
        ).scalars()
    )
    if not names:
        return None
    return Waiting(
        "wait_partners_pending",
        len(names),
        PARTNERS_DOCS,
        "warn",
        [Example(n, PARTNERS_DOCS) for n in names][:EXAMPLES],
    )


#: what each role sees first, most urgent first
FOR_ROLE: dict[Role, Sequence[Finder]] = {
    Role.MUNICIPALITY: (tariffs_to_decide, tariffs_never_approved),
    Role.OPERATOR: (
        faulted_stations,
        open_problem_reports,
        offline_stations,
        failed_jobs,
        dead_pushes,
        tariffs_never_approved,
    ),
    Role.HELPDESK: (open_problem_reports, faulted_stations, offline_stations),
    Role.ADMIN: (pending_partners, users_never_logged_in),
    Role.READ_ONLY: (),
}


async def waiting_for(ctx: ServiceContext, role: Role) -> list[Waiting]:
    """What waits for `role` now, in the order of FOR_ROLE; kinds with nothing are left out."""
    now = ctx.now()
    found: list[Waiting] = []
    async with ctx.db() as db:
        for finder in FOR_ROLE.get(role, ()):
            item = await finder(db, now)
            if item is not None:
                found.append(item)
    return found
