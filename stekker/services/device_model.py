"""What stations report about their configuration: the 2.0.1 device model and 1.6 keys.

A 2.0.1 station describes itself as components (ChargingStation, EVSE 1, AuthCtrlr...)
with variables, each with attributes (Actual, Target, MinSet, MaxSet). A 1.6 station has a
flat list of configuration keys; they are kept in the same table under the component
`OCPP16`, so one API reads and changes the configuration of either kind of station.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import STATION_VARIABLE_KEY, ChargingStation, StationReport, StationVariable
from stekker.domain.report_parts import ReportParts, add_part
from stekker.services.audit import audit, station_event
from stekker.services.context import ServiceContext
from stekker.services.ports import CommandError, StationCommand
from stekker.services.reported_inventory import apply_reported_inventory

log = logging.getLogger(__name__)

#: The component under which a 1.6 station's configuration keys are stored.
OCPP16_COMPONENT = "OCPP16"


class UnknownStation(LookupError):
    """No station with that id is registered."""


@dataclass(frozen=True, slots=True)
class VariableRef:
    """One attribute of one variable: component (with instance, EVSE and connector),
    variable (with instance) and attribute type. 0 and '' mean "not given"."""

    component: str
    variable: str
    component_instance: str = ""
    variable_instance: str = ""
    evse_number: int = 0
    connector_number: int = 0
    attribute_type: str = "Actual"

    @property
    def label(self) -> str:
        """How people write it: `AuthCtrlr.LocalPreAuthorize`, `EVSE[1].Power`."""
        where = (
            f"{self.evse_number}:{self.connector_number}" if self.connector_number else str(self.evse_number)
        )
        component = self.component + (f"[{where}]" if self.evse_number else "")
        component += f"({self.component_instance})" if self.component_instance else ""
        variable = self.variable + (f"({self.variable_instance})" if self.variable_instance else "")
        suffix = "" if self.attribute_type == "Actual" else f"/{self.attribute_type}"
        return f"{component}.{variable}{suffix}"


@dataclass(frozen=True, slots=True)
class VariableValue:
    """A reported attribute value with the variable's characteristics."""

    ref: VariableRef
    value: str | None
    mutability: str | None = None
    data_type: str | None = None
    unit: str | None = None
    min_limit: Decimal | None = None
    max_limit: Decimal | None = None
    values_list: str | None = None


@dataclass(frozen=True, slots=True)
class VariableResult:
    """A station's answer for one item of a get or set: Accepted, Rejected,
    UnknownComponent, UnknownVariable, NotSupportedAttributeType, RebootRequired."""

    ref: VariableRef
    status: str
    value: str | None = None
    reason: str | None = None


def _row(station_id: str, item: VariableValue, source: str, now: datetime) -> dict[str, Any]:
    r = item.ref
    return {
        "station_id": station_id,
        "component": r.component,
        "component_instance": r.component_instance,
        "evse_number": r.evse_number,
        "connector_number": r.connector_number,
        "variable": r.variable,
        "variable_instance": r.variable_instance,
        "attribute_type": r.attribute_type,
        "value": item.value,
        "mutability": item.mutability,
        "data_type": item.data_type,
        "unit": item.unit,
        "min_limit": item.min_limit,
        "max_limit": item.max_limit,
        "values_list": item.values_list,
        "source": source,
        "updated_at": now,
    }


async def _upsert(db: AsyncSession, rows: list[dict[str, Any]], only_value: bool = False) -> None:
    """Insert or update by the natural key, in one statement per batch. `only_value` keeps
    the characteristics a full report gave (a get or set answer carries none)."""
    if not rows:
        return
    table = StationVariable.__table__
    assert isinstance(table, Table)
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    columns = (
        ("value", "source", "updated_at")
        if only_value
        else tuple(c for c in rows[0] if c not in STATION_VARIABLE_KEY)
    )
    statement = statement.on_conflict_do_update(
        index_elements=list(STATION_VARIABLE_KEY), set_={c: statement.excluded[c] for c in columns}
    )
    # one station reports each attribute once per batch; duplicates would fail the upsert
    unique = {tuple(row[k] for k in STATION_VARIABLE_KEY): row for row in rows}
    await db.execute(statement, list(unique.values()))


async def store_report(
    ctx: ServiceContext,
    station_id: str,
    request_id: int,
    seq_no: int,
    more_follows: bool,
    items: list[VariableValue],
) -> None:
    """Store one part of a report (2.0.1 NotifyReport, or a 1.6 GetConfiguration answer) and
    which part it was, so a report whose earlier parts never came reads incomplete. The
    timeline gets `report_received` when the last part arrives, and again when a part that
    was missing then arrives afterwards and makes it complete."""
    now = ctx.now()

    async def job(db: AsyncSession) -> int:
        await _upsert(db, [_row(station_id, item, "report", now) for item in items])
        report = (
            await db.execute(
                select(StationReport).where(
                    StationReport.station_id == station_id, StationReport.request_id == request_id
                )
            )
        ).scalar_one_or_none()
        if report is None:
            report = StationReport(
                station_id=station_id, request_id=request_id, seq_nos=[], items=0, started_at=now
            )
            db.add(report)
        before = report_parts(report)
        retransmitted = seq_no in before.received
        report.seq_nos = add_part(before.received, seq_no)
        if not retransmitted:
            report.items = (report.items or 0) + len(items)
        if not more_follows and report.last_seq_no is None:
            report.last_seq_no = seq_no
        report.updated_at = now
        after = report_parts(report)
        if not (after.finished and (not before.finished or (after.complete and not before.complete))):
            return 0
        station_event(
            db,
            station_id,
            "report_received",
            now,
            request_id=request_id,
            parts=len(after.received),
            complete=after.complete,
            missing_parts=list(after.missing),
            last_items=len(items),
        )
        # every part that came is stored now: connectors the station describes replace ours
        return await apply_reported_inventory(db, ctx, station_id)

    if await ctx.write(job):
        await ctx.bus.publish(Event("station.changed", {"station_id": station_id}))


def report_parts(report: StationReport) -> ReportParts:
    """The arrival state of a stored report."""
    return ReportParts(tuple(sorted(set(report.seq_nos or []))), report.last_seq_no)


async def list_reports(ctx: ServiceContext, station_id: str, limit: int = 10) -> list[StationReport]:
    """The station's latest configuration reports, newest first."""
    async with ctx.db() as db:
        if await db.get(ChargingStation, station_id) is None:
            raise UnknownStation(f"no station {station_id!r}")
        query = (
            select(StationReport)
            .where(StationReport.station_id == station_id)
            .order_by(StationReport.started_at.desc(), StationReport.id.desc())
            .limit(limit)
        )
        return list((await db.execute(query)).scalars().all())


async def upsert_results(
    db: AsyncSession, station_id: str, results: list[VariableResult], source: str, now: datetime
) -> None:
    """Inside the caller's transaction: remember the values a station confirmed."""
    rows = [
        _row(station_id, VariableValue(r.ref, r.value), source, now)
        for r in results
        if r.status == "Accepted" and r.value is not None
    ]
    await _upsert(db, rows, only_value=True)


async def store_results(
    ctx: ServiceContext, station_id: str, results: list[VariableResult], source: str
) -> None:
    """Remember the values a station confirmed in a get or set answer."""
    if not any(r.status == "Accepted" and r.value is not None for r in results):
        return
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        await upsert_results(db, station_id, results, source, now)

    await ctx.write(job)


async def list_variables(
    ctx: ServiceContext, station_id: str, component: str | None = None, variable: str | None = None
) -> list[StationVariable]:
    async with ctx.db() as db:
        if await db.get(ChargingStation, station_id) is None:
            raise UnknownStation(f"no station {station_id!r}")
        query = select(StationVariable).where(StationVariable.station_id == station_id)
        if component:
            query = query.where(StationVariable.component == component)
        if variable:
            query = query.where(StationVariable.variable == variable)
        query = query.order_by(
            StationVariable.component,
            StationVariable.evse_number,
            StationVariable.connector_number,
            StationVariable.component_instance,
            StationVariable.variable,
            StationVariable.variable_instance,
            StationVariable.attribute_type,
        )
        return list((await db.execute(query)).scalars().all())


async def has_reported_configuration(ctx: ServiceContext, station_id: str) -> bool:
    """Whether a report (not merely a get or set answer) was ever stored for the station."""
    async with ctx.db() as db:
        found = await db.execute(
            select(StationVariable.id)
            .where(StationVariable.station_id == station_id, StationVariable.source == "report")
            .limit(1)
        )
        return found.first() is not None


async def _require_station(ctx: ServiceContext, station_id: str) -> None:
    async with ctx.db() as db:
        if await db.get(ChargingStation, station_id) is None:
            raise UnknownStation(f"no station {station_id!r}")


async def get_variables(
    ctx: ServiceContext, station_id: str, refs: list[VariableRef]
) -> list[VariableResult]:
    """Ask the station for current values (2.0.1 GetVariables, 1.6 GetConfiguration)."""
    await _require_station(ctx, station_id)
    assert ctx.commands is not None
    reply = await ctx.commands.send(station_id, StationCommand("get_variables", {"items": refs}))
    results: list[VariableResult] = reply["results"]
    await store_results(ctx, station_id, results, "get")
    return results


async def set_variables(
    ctx: ServiceContext, actor: str, station_id: str, changes: list[tuple[VariableRef, str]]
) -> list[VariableResult]:
    """Change values (2.0.1 SetVariables, 1.6 ChangeConfiguration per key); audited per item."""
    await _require_station(ctx, station_id)
    assert ctx.commands is not None
    try:
        reply = await ctx.commands.send(station_id, StationCommand("set_variables", {"items": changes}))
    except CommandError as exc:
        await _audit_set(ctx, actor, station_id, changes, None, str(exc))
        raise
    results: list[VariableResult] = reply["results"]
    await store_results(ctx, station_id, results, "set")
    await _audit_set(ctx, actor, station_id, changes, results, None)
    return results


async def _audit_set(
    ctx: ServiceContext,
    actor: str,
    station_id: str,
    changes: list[tuple[VariableRef, str]],
    results: list[VariableResult] | None,
    error: str | None,
) -> None:
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        for index, (ref, value) in enumerate(changes):
            result = (error and "failed") or (
                results[index].status if results and index < len(results) else "?"
            )
            audit(
                db,
                actor=actor,
                action="station.variable.set",
                object_type="station",
                object_id=station_id,
                at=now,
                result=result[:50],
                variable=ref.label,
                value=value,
                error=error,
            )

    await ctx.write(job)


async def request_base_report(
    ctx: ServiceContext, actor: str, station_id: str, report_base: str = "FullInventory"
) -> dict[str, Any]:
    """Ask for the whole device model. A 2.0.1 station answers with NotifyReport messages
    that arrive afterwards; a 1.6 station's GetConfiguration answer is stored at once."""
    await _require_station(ctx, station_id)
    assert ctx.commands is not None
    request_id = int(ctx.now().timestamp() * 1000) % 2_000_000_000
    reply = await ctx.commands.send(
        station_id, StationCommand("get_base_report", {"request_id": request_id, "report_base": report_base})
    )
    values: list[VariableValue] | None = reply.get("variables")
    if values is not None:
        await store_report(ctx, station_id, request_id, 0, False, values)
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        audit(
            db,
            actor=actor,
            action="station.report.requested",
            object_type="station",
            object_id=station_id,
            at=now,
            result=str(reply["status"])[:50],
            report_base=report_base,
            request_id=request_id,
        )

    await ctx.write(job)
    return {
        "status": reply["status"],
        "request_id": request_id,
        "stored": None if values is None else len(values),
    }


_LABEL = re.compile(
    r"^(?P<component>[^.\[\]()/]+)(?:\[(?P<evse>\d+)(?::(?P<connector>\d+))?\])?(?:\((?P<ci>[^()]+)\))?"
    r"\.(?P<variable>[^.\[\]()/]+)(?:\((?P<vi>[^()]+)\))?(?:/(?P<attribute>Actual|Target|MinSet|MaxSet))?$"
)


def parse_label(text: str) -> VariableRef:
    """`AuthCtrlr.LocalPreAuthorize`, `EVSE[1].Power/MaxSet`, `Connector[1:2].AvailabilityState`,
    or a bare 1.6 key such as `HeartbeatInterval`."""
    text = text.strip()
    if "." not in text and "/" not in text:
        return VariableRef(OCPP16_COMPONENT, text)
    match = _LABEL.match(text)
    if match is None:
        raise ValueError(f"cannot read {text!r}: write Component.Variable, e.g. AuthCtrlr.LocalPreAuthorize")
    return VariableRef(
        component=match["component"],
        variable=match["variable"],
        component_instance=match["ci"] or "",
        variable_instance=match["vi"] or "",
        evse_number=int(match["evse"] or 0),
        connector_number=int(match["connector"] or 0),
        attribute_type=match["attribute"] or "Actual",
    )
