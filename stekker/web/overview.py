"""The figures of the console's dashboard, read from the database in a handful of aggregate
queries (each one indexed or a single pass over the stations table, fine at 10,000
stations): the fleet's connection state, live sessions, today's energy, stations offline
too long, bulk jobs with failures and OCPI pushes that were given up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import and_, case, func, or_, select

from stekker.db.models import ChargingSession, ChargingStation, Connector, Evse, SessionStatus
from stekker.db.models_jobs import Job, JobStation, JobStationState
from stekker.db.models_ocpi import OcpiOutboxItem, OcpiPartner, OutboxStatus
from stekker.services.context import ServiceContext
from stekker.web.format import HOME, local

OFFLINE_LIST_LIMIT = 20
JOB_WINDOW = timedelta(days=7)
FAILED_STATES = (
    JobStationState.FAILED,
    JobStationState.REJECTED,
    JobStationState.TIMED_OUT,
    JobStationState.EXPIRED,
)
DEFAULT_OFFLINE_ALERT_MINUTES = 15


#: OCPI pushes given up on (dead letters), counted per partner: the overview's tile and the
#: operator's "waiting for you" list read the same number
DEAD_PUSHES_BY_PARTNER = (
    select(OcpiPartner.name, func.count())
    .select_from(OcpiOutboxItem)
    .join(OcpiPartner, OcpiPartner.id == OcpiOutboxItem.partner_id)
    .where(OcpiOutboxItem.status == OutboxStatus.DEAD)
    .group_by(OcpiPartner.name)
    .order_by(OcpiPartner.name)
)


@dataclass(frozen=True, slots=True)
class OfflineStation:
    station_id: str
    since: datetime | None  # None: never connected


@dataclass(frozen=True, slots=True)
class FailedJob:
    job_id: int
    function: str
    failures: int
    total: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeadDeliveries:
    partner: str
    count: int


@dataclass(frozen=True, slots=True)
class Overview:
    """The dashboard at one moment. A station counts as faulted when it or one of its
    connectors reports Faulted, online or not; offline is "no connection now"."""

    at: datetime
    total: int
    online: int
    offline: int
    faulted: int
    active_sessions: int
    energy_today_wh: int
    offline_minutes: int
    offline_long: list[OfflineStation]
    offline_long_count: int
    failed_jobs: list[FailedJob]
    dead_deliveries: list[DeadDeliveries]


def offline_alert_minutes(ctx: ServiceContext) -> int:
    value = getattr(ctx.settings, "console_offline_alert_minutes", None)
    return value if isinstance(value, int) and value > 0 else DEFAULT_OFFLINE_ALERT_MINUTES


def start_of_today(now: datetime) -> datetime:
    """Midnight of the home time zone's today, as a UTC moment."""
    midnight = datetime.combine(local(now).date(), time(0), tzinfo=HOME)
    return midnight.astimezone(now.tzinfo) if now.tzinfo else midnight


async def overview(ctx: ServiceContext) -> Overview:
    now = ctx.now()
    minutes = offline_alert_minutes(ctx)
    threshold = now - timedelta(minutes=minutes)
    live = ChargingStation.retired_at.is_(None)
    faulted_ids = (
        select(Evse.station_id)
        .join(Connector, Connector.evse_id == Evse.id)
        .where(Connector.status == "Faulted")
        .distinct()
    )
    is_faulted = or_(ChargingStation.status == "Faulted", ChargingStation.id.in_(faulted_ids))
    long_offline = and_(
        ChargingStation.online.is_(False),
        or_(ChargingStation.disconnected_at.is_(None), ChargingStation.disconnected_at < threshold),
    )
    async with ctx.db() as db:
        counts = (
            await db.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(case((ChargingStation.online.is_(True), 1), else_=0)), 0),
                    func.coalesce(func.sum(case((is_faulted, 1), else_=0)), 0),
                    func.coalesce(func.sum(case((long_offline, 1), else_=0)), 0),
                ).where(live)
            )
        ).one()
        total, online, faulted, long_count = (int(x) for x in counts)
        active = (
            await db.execute(select(func.count()).where(ChargingSession.status == SessionStatus.ACTIVE))
        ).scalar_one()
        energy = (
            await db.execute(
                select(
                    func.coalesce(
                        func.sum(
                            func.coalesce(
                                ChargingSession.energy_wh,
                                ChargingSession.meter_last_wh - ChargingSession.meter_start_wh,
                                0,
                            )
                        ),
                        0,
                    )
                ).where(ChargingSession.start_time >= start_of_today(now))
            )
        ).scalar_one()
        offline_rows = (
            await db.execute(
                select(ChargingStation.id, ChargingStation.disconnected_at)
                .where(live, long_offline)
                .order_by(ChargingStation.disconnected_at.is_(None), ChargingStation.disconnected_at)
                .limit(OFFLINE_LIST_LIMIT)
            )
        ).all()
        failures = func.sum(case((JobStation.state.in_([s.value for s in FAILED_STATES]), 1), else_=0))
        job_rows = (
            await db.execute(
                select(Job.id, Job.function, failures, Job.total, Job.created_at)
                .join(JobStation, JobStation.job_id == Job.id)
                .where(Job.created_at >= now - JOB_WINDOW)
                .group_by(Job.id, Job.function, Job.total, Job.created_at)
                .having(failures > 0)
                .order_by(Job.created_at.desc())
                .limit(10)
            )
        ).all()
        dead_rows = (await db.execute(DEAD_PUSHES_BY_PARTNER)).all()
    return Overview(
        at=now,
        total=total,
        online=online,
        offline=total - online,
        faulted=faulted,
        active_sessions=int(active),
        energy_today_wh=int(energy or 0),
        offline_minutes=minutes,
        offline_long=[OfflineStation(r[0], r[1]) for r in offline_rows],
        offline_long_count=long_count,
        failed_jobs=[FailedJob(r[0], r[1], int(r[2]), r[3], r[4]) for r in job_rows],
        dead_deliveries=[DeadDeliveries(r[0], int(r[1])) for r in dead_rows],
    )
