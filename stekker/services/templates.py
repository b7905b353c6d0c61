"""Configuration templates: the desired configuration of a group, the drift from it, and a
bulk job that corrects it (requirement 47).

A template's items are variables as people write them: a bare 1.6 key (`HeartbeatInterval`)
or a 2.0.1 `Component.Variable` (`OCPPCommCtrlr.HeartbeatInterval`), each with a desired
value and optionally the OCPP version it applies to. Without a version, a bare key applies
to 1.6 stations and a component label to 2.0.1 and later.

Drift compares the desired values with what the stations last reported (stored
`StationVariable` rows; a refresh job asks them again). Per station and key the state is:

- ok: the reported value equals the desired one (numbers and booleans compared as such);
- differs: it does not;
- missing: the station never sent a configuration report, so we do not know;
- unknown: the station sent a report that lacks the variable (it does not have it).

A station whose OCPP version is unknown (it never connected) shows every item missing and
is left out of apply. Apply creates a `set_variables` job on the stations that drift, each
with only its differing and missing keys (unknown ones would only be refused).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingStation, StationGroup, StationGroupMember, StationVariable
from stekker.db.models_jobs import ConfigTemplate, ConfigTemplateItem
from stekker.services import jobs
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.device_model import OCPP16_COMPONENT, VariableRef, parse_label
from stekker.services.selection import Selection, UnknownGroup

OCPP16 = "ocpp1.6"
OCPP_VERSIONS = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")
MAX_ITEMS = 200


class TemplateNotFound(LookupError):
    """No template by that id or name."""


class TemplateExists(Exception):
    """A template by that name exists already."""


class InvalidTemplate(ValueError):
    """The template's items cannot be used; the message says which and why."""


DRIFT_STATES = ("ok", "differs", "missing", "unknown")


@dataclass(frozen=True, slots=True)
class TemplateItem:
    """One desired value; `ocpp_version` '' applies wherever the label fits."""

    label: str
    value: str
    ocpp_version: str = ""

    @property
    def ref(self) -> VariableRef:
        return parse_label(self.label)

    def applies_to(self, station_version: str | None) -> bool:
        if station_version is None:
            return True
        if self.ocpp_version:
            return station_version == self.ocpp_version
        return (self.ref.component == OCPP16_COMPONENT) == (station_version == OCPP16)


@dataclass(frozen=True, slots=True)
class TemplateView:
    id: int
    name: str
    group: str
    description: str | None
    version: int
    items: list[TemplateItem]
    created_at: datetime
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class DriftEntry:
    """One key of one station: what we want, what it reported, and when."""

    label: str
    ocpp_version: str
    desired: str
    actual: str | None
    state: str
    reported_at: datetime | None
    template: str


@dataclass(frozen=True, slots=True)
class StationDrift:
    station_id: str
    ocpp_version: str | None
    online: bool
    counts: dict[str, int]
    entries: list[DriftEntry]

    @property
    def drifting(self) -> bool:
        return any(e.state != "ok" for e in self.entries)


@dataclass(frozen=True, slots=True)
class KeyDrift:
    label: str
    ocpp_version: str
    desired: str
    template: str
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class DriftReport:
    group: str
    templates: list[str]
    generated_at: datetime
    stations: list[StationDrift]
    keys: list[KeyDrift]
    totals: dict[str, int]
    stations_drifting: int


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """The job that corrects the drift (None: nothing drifts), the stations it covers, and
    the stations left out because their OCPP version is unknown."""

    job_id: int | None
    stations: list[str]
    skipped: list[str] = field(default_factory=list)


# ---- items ----------------------------------------------------------------------------------


def _version(text: str) -> str:
    text = text.strip().lower()
    if not text:
        return ""
    if not text.startswith("ocpp"):
        text = "ocpp" + text
    if text not in OCPP_VERSIONS:
        raise InvalidTemplate(f"unknown OCPP version {text!r} (known: {', '.join(OCPP_VERSIONS)})")
    return text


def check_items(items: list[TemplateItem]) -> list[TemplateItem]:
    """The items in canonical form (`HeartbeatInterval`, `OCPPCommCtrlr.HeartbeatInterval`),
    or InvalidTemplate naming the bad one."""
    if not items:
        raise InvalidTemplate("a template needs at least one item")
    if len(items) > MAX_ITEMS:
        raise InvalidTemplate(f"a template holds at most {MAX_ITEMS} items")
    checked: list[TemplateItem] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        try:
            ref = parse_label(item.label)
        except ValueError as exc:
            raise InvalidTemplate(str(exc)) from None
        if not ref.variable or len(ref.variable) > 50 or len(ref.component) > 50:
            raise InvalidTemplate(f"{item.label!r}: component and variable are 1 to 50 characters")
        version = _version(item.ocpp_version)
        is16 = ref.component == OCPP16_COMPONENT
        label = ref.variable if is16 else ref.label
        if version and is16 != (version == OCPP16):
            kind = "a 1.6 configuration key" if is16 else "a 2.0.1 Component.Variable"
            raise InvalidTemplate(f"{label!r} is {kind} and cannot apply to {version}")
        if (label, version) in seen:
            raise InvalidTemplate(f"{label!r} appears twice")
        seen.add((label, version))
        checked.append(TemplateItem(label, item.value, version))
    return checked


def _same(actual: str, desired: str) -> bool:
    """Equal as the station means it: `60` is `60.0`, `True` is `true`."""
    a, d = actual.strip(), desired.strip()
    if a == d:
        return True
    if a.lower() in ("true", "false") and d.lower() in ("true", "false"):
        return a.lower() == d.lower()
    try:
        return Decimal(a) == Decimal(d)
    except (InvalidOperation, ValueError):
        return False


# ---- templates ------------------------------------------------------------------------------


async def _find(db: AsyncSession, ref: str | int) -> ConfigTemplate:
    if isinstance(ref, int) or ref.isdigit():
        template = await db.get(ConfigTemplate, int(ref))
    else:
        template = await db.scalar(select(ConfigTemplate).where(ConfigTemplate.name == ref))
    if template is None:
        raise TemplateNotFound(f"no template {ref!r}")
    return template


async def _group_id(db: AsyncSession, group: str) -> int:
    group_id = await db.scalar(select(StationGroup.id).where(StationGroup.name == group))
    if group_id is None:
        raise UnknownGroup(f"no group {group!r}")
    return group_id


async def _items(db: AsyncSession, template_id: int) -> list[TemplateItem]:
    rows = await db.execute(
        select(ConfigTemplateItem)
        .where(ConfigTemplateItem.template_id == template_id)
        .order_by(ConfigTemplateItem.position, ConfigTemplateItem.id)
    )
    return [TemplateItem(r.label, r.value, r.ocpp_version) for r in rows.scalars()]


async def _view(db: AsyncSession, template: ConfigTemplate) -> TemplateView:
    group = await db.scalar(select(StationGroup.name).where(StationGroup.id == template.group_id))
    return TemplateView(
        id=template.id,
        name=template.name,
        group=group or "?",
        description=template.description,
        version=template.version,
        items=await _items(db, template.id),
        created_at=template.created_at,
        updated_at=template.updated_at,
        updated_by=template.updated_by,
    )


def _add_items(db: AsyncSession, template_id: int, items: list[TemplateItem]) -> None:
    for position, item in enumerate(items):
        db.add(
            ConfigTemplateItem(
                template_id=template_id,
                label=item.label,
                ocpp_version=item.ocpp_version,
                value=item.value,
                position=position,
            )
        )


def _items_json(items: list[TemplateItem]) -> list[dict[str, str]]:
    return [{"label": i.label, "value": i.value, "ocpp_version": i.ocpp_version} for i in items]


async def create_template(
    ctx: ServiceContext,
    actor: str,
    name: str,
    group: str,
    items: list[TemplateItem],
    description: str | None = None,
) -> TemplateView:
    checked = check_items(items)
    now = ctx.now()

    async def job(db: AsyncSession) -> int:
        group_id = await _group_id(db, group)
        if await db.scalar(select(ConfigTemplate.id).where(ConfigTemplate.name == name)) is not None:
            raise TemplateExists(f"a template named {name!r} exists already")
        template = ConfigTemplate(
            name=name,
            group_id=group_id,
            description=description,
            version=1,
            created_at=now,
            updated_at=now,
            updated_by=actor,
        )
        db.add(template)
        await db.flush()
        _add_items(db, template.id, checked)
        audit(
            db,
            actor=actor,
            action="template.created",
            object_type="template",
            object_id=template.id,
            at=now,
            name=name,
            group=group,
            version=1,
            items=_items_json(checked),
        )
        return template.id

    try:
        template_id = await ctx.write(job)
    except IntegrityError:  # a concurrent create of the same name
        raise TemplateExists(f"a template named {name!r} exists already") from None
    return await get_template(ctx, template_id)


async def update_template(
    ctx: ServiceContext,
    actor: str,
    ref: str | int,
    items: list[TemplateItem] | None = None,
    description: str | None = None,
    group: str | None = None,
) -> TemplateView:
    """Change items (replaced whole), description or group; the version goes up by one and
    the audit entry holds the items before and after."""
    checked = check_items(items) if items is not None else None
    now = ctx.now()

    async def job(db: AsyncSession) -> int:
        template = await _find(db, ref)
        before = await _items(db, template.id)
        if group is not None:
            template.group_id = await _group_id(db, group)
        if description is not None:
            template.description = description
        if checked is not None:
            await db.execute(delete(ConfigTemplateItem).where(ConfigTemplateItem.template_id == template.id))
            _add_items(db, template.id, checked)
        template.version += 1
        template.updated_at = now
        template.updated_by = actor
        audit(
            db,
            actor=actor,
            action="template.updated",
            object_type="template",
            object_id=template.id,
            at=now,
            name=template.name,
            version=template.version,
            group=group,
            items_before=_items_json(before),
            items=None if checked is None else _items_json(checked),
        )
        return template.id

    return await get_template(ctx, await ctx.write(job))


async def delete_template(ctx: ServiceContext, actor: str, ref: str | int) -> None:
    now = ctx.now()

    async def job(db: AsyncSession) -> None:
        template = await _find(db, ref)
        items = await _items(db, template.id)
        audit(
            db,
            actor=actor,
            action="template.deleted",
            object_type="template",
            object_id=template.id,
            at=now,
            name=template.name,
            version=template.version,
            items=_items_json(items),
        )
        await db.delete(template)

    await ctx.write(job)


async def get_template(ctx: ServiceContext, ref: str | int) -> TemplateView:
    async with ctx.db() as db:
        return await _view(db, await _find(db, ref))


async def list_templates(ctx: ServiceContext, group: str | None = None) -> list[TemplateView]:
    async with ctx.db() as db:
        query = select(ConfigTemplate).order_by(ConfigTemplate.name)
        if group is not None:
            query = query.where(ConfigTemplate.group_id == await _group_id(db, group))
        return [await _view(db, t) for t in (await db.execute(query)).scalars()]


# ---- drift ----------------------------------------------------------------------------------


def _key(ref: VariableRef) -> tuple[str, str, int, int, str, str, str]:
    return (
        ref.component,
        ref.component_instance,
        ref.evse_number,
        ref.connector_number,
        ref.variable,
        ref.variable_instance,
        ref.attribute_type,
    )


async def _drift(
    ctx: ServiceContext, db: AsyncSession, group: str, templates: list[tuple[str, list[TemplateItem]]]
) -> DriftReport:
    group_id = await _group_id(db, group)
    members = select(StationGroupMember.station_id).where(StationGroupMember.group_id == group_id)
    stations = list(
        (
            await db.execute(
                select(ChargingStation.id, ChargingStation.ocpp_version)
                .where(ChargingStation.id.in_(members), ChargingStation.retired_at.is_(None))
                .order_by(ChargingStation.id)
            )
        ).all()
    )
    wanted = [(name, item, item.ref) for name, items in templates for item in items]
    names = sorted({ref.variable for _n, _i, ref in wanted})
    actual: dict[tuple[str, tuple[str, str, int, int, str, str, str]], tuple[str | None, datetime]] = {}
    if names:
        rows = await db.execute(
            select(
                StationVariable.station_id,
                StationVariable.component,
                StationVariable.component_instance,
                StationVariable.evse_number,
                StationVariable.connector_number,
                StationVariable.variable,
                StationVariable.variable_instance,
                StationVariable.attribute_type,
                StationVariable.value,
                StationVariable.updated_at,
            ).where(StationVariable.station_id.in_(members), StationVariable.variable.in_(names))
        )
        for sid, *key, value, at in rows.all():
            actual[(sid, tuple(key))] = (value, at)  # type: ignore[index]
    reported = set(
        (
            await db.execute(
                select(StationVariable.station_id)
                .where(StationVariable.station_id.in_(members), StationVariable.source == "report")
                .distinct()
            )
        ).scalars()
    )
    connected = set(ctx.commands.connected_stations()) if ctx.commands is not None else set()

    per_station: list[StationDrift] = []
    per_key: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(DRIFT_STATES, 0))
    totals = dict.fromkeys(DRIFT_STATES, 0)
    for sid, version in stations:
        entries: list[DriftEntry] = []
        for name, item, ref in wanted:
            if not item.applies_to(version):
                continue
            found = actual.get((sid, _key(ref))) if version is not None else None
            if found is None:
                state, value, at = ("unknown" if sid in reported else "missing"), None, None
            else:
                value, at = found
                state = "ok" if value is not None and _same(value, item.value) else "differs"
            entries.append(DriftEntry(item.label, item.ocpp_version, item.value, value, state, at, name))
            per_key[(name, item.label, item.ocpp_version)][state] += 1
            totals[state] += 1
        counts = dict.fromkeys(DRIFT_STATES, 0)
        for entry in entries:
            counts[entry.state] += 1
        per_station.append(StationDrift(sid, version, sid in connected, counts, entries))
    keys = [
        KeyDrift(
            item.label, item.ocpp_version, item.value, name, per_key[(name, item.label, item.ocpp_version)]
        )
        for name, item, _ref in wanted
    ]
    return DriftReport(
        group=group,
        templates=[name for name, _items in templates],
        generated_at=ctx.now(),
        stations=per_station,
        keys=keys,
        totals=totals,
        stations_drifting=sum(1 for s in per_station if s.drifting),
    )


async def drift(ctx: ServiceContext, ref: str | int) -> DriftReport:
    """The drift of a template's group from it."""
    async with ctx.db() as db:
        template = await _find(db, ref)
        view = await _view(db, template)
        return await _drift(ctx, db, view.group, [(view.name, view.items)])


async def group_drift(ctx: ServiceContext, group: str) -> DriftReport:
    """The drift of a group from every template kept for it."""
    async with ctx.db() as db:
        group_id = await _group_id(db, group)
        templates = (
            await db.execute(
                select(ConfigTemplate)
                .where(ConfigTemplate.group_id == group_id)
                .order_by(ConfigTemplate.name)
            )
        ).scalars()
        pairs = [(t.name, await _items(db, t.id)) for t in templates]
        return await _drift(ctx, db, group, pairs)


def _set_item(item: TemplateItem) -> dict[str, Any]:
    """A template item as a `set_variables` argument item."""
    ref = item.ref
    return {
        "component": "" if ref.component == OCPP16_COMPONENT else ref.component,
        "variable": ref.variable,
        "component_instance": ref.component_instance,
        "variable_instance": ref.variable_instance,
        "evse": ref.evse_number,
        "connector": ref.connector_number,
        "attribute_type": ref.attribute_type,
        "value": item.value,
    }


async def apply_template(
    ctx: ServiceContext,
    actor: str,
    ref: str | int,
    concurrency: int = jobs.DEFAULT_CONCURRENCY,
    timeout: float | None = None,
    offline_expiry_seconds: int = jobs.DEFAULT_OFFLINE_EXPIRY,
    dry_run: bool = False,
    station_ids: list[str] | None = None,
) -> ApplyResult:
    """A `set_variables` job on the drifting stations (of `station_ids` only, if given), each
    with only its keys that differ or are missing (see the module docstring). Nothing
    drifts: no job."""
    template = await get_template(ctx, ref)
    report = await drift(ctx, template.id)
    chosen = None if station_ids is None else set(station_ids)
    by_label = {(i.label, i.ocpp_version): i for i in template.items}
    station_args: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for station in report.stations:
        if chosen is not None and station.station_id not in chosen:
            continue
        if station.ocpp_version is None:
            skipped.append(station.station_id)
            continue
        fixes = [
            _set_item(by_label[(e.label, e.ocpp_version)])
            for e in station.entries
            if e.state in ("differs", "missing")
        ]
        if fixes:
            station_args[station.station_id] = {"items": fixes}
    stations = sorted(station_args)
    if dry_run or not station_args:
        return ApplyResult(None, stations, skipped)
    request = jobs.JobRequest(
        function="set_variables",
        args={"template": template.name, "version": template.version},
        selection=Selection(group=template.group),
        concurrency=concurrency,
        timeout=timeout,
        offline_expiry_seconds=offline_expiry_seconds,
    )
    job_id = await jobs.create_job(ctx, actor, request, station_args=station_args, template_id=template.id)
    return ApplyResult(job_id, stations, skipped)


async def refresh(
    ctx: ServiceContext,
    actor: str,
    ref: str | int,
    concurrency: int = jobs.DEFAULT_CONCURRENCY,
    timeout: float | None = None,
    offline_expiry_seconds: int = jobs.DEFAULT_OFFLINE_EXPIRY,
) -> int:
    """A `get_base_report` job on the template's group, so the next drift report is current
    (a 1.6 answer is stored at once; 2.0.1 reports arrive shortly after each acceptance)."""
    template = await get_template(ctx, ref)
    request = jobs.JobRequest(
        function="get_base_report",
        args={"report_base": "FullInventory"},
        selection=Selection(group=template.group),
        concurrency=concurrency,
        timeout=timeout,
        offline_expiry_seconds=offline_expiry_seconds,
    )
    return await jobs.create_job(ctx, actor, request, template_id=template.id)
