"""Energy delivered per energy supplier per 15-minute interval (requirement 14).

Suppliers settle the energy their customers charged in quarter hours (the Dutch allocation
interval). Every session recorded its token's supplier contract at its start; its energy is
spread over the quarter hours by its register readings (see `stekker.domain.energy_intervals`)
and summed per supplier, or per supplier and contract. Read-only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingSession, MeterValue, SessionStatus
from stekker.domain.energy_intervals import QUARTER_HOUR, Reading, clean_readings, is_aligned, split_energy
from stekker.domain.metering import ENERGY_REGISTER, SampledValue, register_wh
from stekker.domain.timeutil import HOME_TIME_ZONE
from stekker.services.context import ServiceContext
from stekker.services.errors import Invalid

#: Dutch settlement is in Dutch local time; a date in a query means midnight here.
REPORT_ZONE = ZoneInfo(HOME_TIME_ZONE)
MAX_PERIOD = timedelta(days=93)
_CHUNK = 500  # sessions per round trip: bounded memory however long the period


class GroupBy(StrEnum):
    """Rows per supplier, or per supplier and contract (suppliers settle per contract)."""

    SUPPLIER = "supplier"
    CONTRACT = "contract"


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """A half-open period [start, end) in UTC, on quarter-hour boundaries."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class SupplierEnergy:
    """One row of the report: energy (Wh) delivered in the quarter hour from `interval_start`
    (UTC) to drivers of `supplier` (None: the token named none, or no known token), under
    `contract_id` when grouped by contract; `sessions` is how many sessions contributed."""

    interval_start: datetime
    supplier: str | None
    contract_id: str | None
    energy_wh: int
    sessions: int

    @property
    def interval_start_local(self) -> datetime:
        return self.interval_start.astimezone(REPORT_ZONE)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_moment(text: str, name: str) -> datetime:
    """`2026-11-01` (midnight in Europe/Amsterdam) or an ISO 8601 time with an offset, as UTC."""
    text = text.strip()
    if len(text) > 40:
        raise Invalid(f"{name} is too long for a date or time")
    try:
        if _DATE.match(text):
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=REPORT_ZONE).astimezone(UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Invalid(
            f"{name} must be a date (2026-11-01) or a time with an offset (2026-11-01T00:00:00Z), "
            f"not {text[:40]!r}"
        ) from None
    if moment.tzinfo is None:
        raise Invalid(f"{name} needs a UTC offset, e.g. {text}Z or {text}+01:00")
    return moment.astimezone(UTC)


def report_period(start_text: str, end_text: str) -> ReportPeriod:
    """The period [from, to) a caller asked for, checked: quarter-hour boundaries, from before
    to, at most 93 days."""
    start, end = parse_moment(start_text, "from"), parse_moment(end_text, "to")
    for name, moment in (("from", start), ("to", end)):
        if not is_aligned(moment):
            raise Invalid(
                f"{name} must be on a quarter hour (:00, :15, :30 or :45), not {moment.isoformat()}"
            )
    if end <= start:
        raise Invalid(f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    if end - start > MAX_PERIOD:
        raise Invalid(f"the period is longer than {MAX_PERIOD.days} days: ask for it in parts")
    return ReportPeriod(start, end)


def session_readings(session: ChargingSession, registers: Sequence[Reading]) -> list[Reading]:
    """The cleaned readings of a session: its meter start at its start time, its registers and,
    once stopped, its meter stop at its stop time. Empty when its energy cannot be known."""
    if session.meter_start_wh is not None:
        first = Reading(session.start_time, session.meter_start_wh)
    elif registers:
        first = min(registers)  # no start value: the earliest reading is the best we know
    else:
        return []
    last = None
    if (
        session.status != SessionStatus.ACTIVE
        and session.stop_time is not None
        and session.meter_stop_wh is not None
    ):
        if session.meter_stop_wh < first.wh:
            return []  # a register that went backwards: no energy we can trust (as the session's own)
        last = Reading(max(session.stop_time, first.at), session.meter_stop_wh)
    return clean_readings(registers, first, last)


async def _sessions(
    db: AsyncSession, period: ReportPeriod, supplier: str | None, after_id: int
) -> list[ChargingSession]:
    query = (
        select(ChargingSession)
        .where(
            ChargingSession.id > after_id,
            ChargingSession.start_time < period.end,
            or_(ChargingSession.stop_time.is_(None), ChargingSession.stop_time >= period.start),
        )
        .order_by(ChargingSession.id)
        .limit(_CHUNK)
    )
    if supplier is not None:
        query = query.where(ChargingSession.energy_supplier == supplier)
    return list((await db.execute(query)).scalars())


async def _registers(db: AsyncSession, session_ids: list[int]) -> dict[int, list[Reading]]:
    rows = await db.execute(
        select(
            MeterValue.session_id,
            MeterValue.timestamp,
            MeterValue.value,
            MeterValue.unit,
            MeterValue.phase,
            MeterValue.location,
            MeterValue.format,
        ).where(MeterValue.session_id.in_(session_ids), MeterValue.measurand == ENERGY_REGISTER)
    )
    found: dict[int, list[Reading]] = defaultdict(list)
    for row in rows:
        sample = SampledValue(
            timestamp=row.timestamp,
            value=row.value,
            unit=row.unit,
            phase=row.phase,
            location=row.location,
            format=row.format,
        )
        wh = register_wh(sample)
        if wh is not None and row.session_id is not None:
            found[row.session_id].append(Reading(row.timestamp, wh))
    return found


async def energy_by_supplier(
    ctx: ServiceContext,
    period: ReportPeriod,
    group_by: GroupBy = GroupBy.SUPPLIER,
    supplier: str | None = None,
) -> list[SupplierEnergy]:
    """The report rows, by interval start and then supplier (unknown last); quarter hours in
    which a supplier's drivers charged nothing are left out."""
    energy: dict[tuple[datetime, str | None, str | None], int] = defaultdict(int)
    counts: dict[tuple[datetime, str | None, str | None], int] = defaultdict(int)
    async for session, readings in _session_readings(ctx, period, supplier):
        contract = session.energy_contract_id if group_by is GroupBy.CONTRACT else None
        for start, wh in split_energy(readings, period.start, period.end, QUARTER_HOUR).items():
            key = (start, session.energy_supplier, contract)
            energy[key] += wh
            counts[key] += 1
    return [
        SupplierEnergy(key[0], key[1], key[2], energy[key], counts[key])
        for key in sorted(energy, key=lambda k: (k[0], k[1] is None, k[1] or "", k[2] is None, k[2] or ""))
    ]


async def _session_readings(
    ctx: ServiceContext, period: ReportPeriod, supplier: str | None
) -> AsyncIterator[tuple[ChargingSession, list[Reading]]]:
    after = 0
    while True:
        async with ctx.db() as db:
            sessions = await _sessions(db, period, supplier, after)
            if not sessions:
                return
            registers = await _registers(db, [s.id for s in sessions])
        for session in sessions:
            readings = session_readings(session, registers.get(session.id, []))
            if readings:
                yield session, readings
        after = sessions[-1].id
