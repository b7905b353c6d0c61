"""Desired configuration per group, the drift from it, and a bulk job that corrects it.

A template is addressed by its id or its name (`/api/templates/heartbeat`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from stekker.api.deps import CONFIGURE, READ, Caller, allow, get_ctx
from stekker.api.jobs import JobOut, job_out
from stekker.services import jobs, templates
from stekker.services.context import ServiceContext
from stekker.services.templates import DriftReport, InvalidTemplate, TemplateItem, TemplateView

router = APIRouter(prefix="/api/templates", tags=["templates"])

_TEMPLATE_NAME = r"^[A-Za-z][A-Za-z0-9_.\-]{0,99}$"
_GROUP = r"^[A-Za-z0-9_.\-]{1,100}$"
TemplateRef = Path(
    pattern=r"^([0-9]{1,15}|[A-Za-z][A-Za-z0-9_.\-]{0,99})$", description="The template's id or name."
)


class ItemIn(BaseModel):
    model_config = {"extra": "forbid"}

    variable: str = Field(
        min_length=1,
        max_length=200,
        description="HeartbeatInterval (a 1.6 key) or OCPPCommCtrlr.HeartbeatInterval (2.0.1).",
    )
    value: str = Field(max_length=1000, description="The desired value.")
    ocpp_version: str = Field(
        default="",
        max_length=16,
        description="ocpp1.6, ocpp2.0.1 or ocpp2.1; empty: wherever the label fits.",
    )

    def item(self) -> TemplateItem:
        return TemplateItem(self.variable, self.value, self.ocpp_version)


class TemplateIn(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(pattern=_TEMPLATE_NAME)
    group: str = Field(pattern=_GROUP, description="The station group the template is for.")
    description: str | None = Field(default=None, max_length=2000)
    items: list[ItemIn] = Field(min_length=1, max_length=templates.MAX_ITEMS)


class TemplateUpdate(BaseModel):
    model_config = {"extra": "forbid"}

    group: str | None = Field(default=None, pattern=_GROUP)
    description: str | None = Field(default=None, max_length=2000)
    items: list[ItemIn] | None = Field(
        default=None, min_length=1, max_length=templates.MAX_ITEMS, description="Replaces every item."
    )


class ItemOut(BaseModel):
    variable: str
    value: str
    ocpp_version: str


class TemplateOut(BaseModel):
    id: int
    name: str
    group: str
    description: str | None
    version: int = Field(description="Goes up by one with every change (each audited).")
    items: list[ItemOut]
    created_at: datetime
    updated_at: datetime
    updated_by: str


class DriftEntryOut(BaseModel):
    variable: str
    ocpp_version: str
    desired: str
    actual: str | None
    state: str = Field(description="ok, differs, missing (never reported) or unknown (not in its report).")
    reported_at: datetime | None = Field(description="When the station last reported the actual value.")
    template: str


class StationDriftOut(BaseModel):
    station_id: str
    ocpp_version: str | None
    online: bool
    counts: dict[str, int]
    entries: list[DriftEntryOut]


class KeyDriftOut(BaseModel):
    variable: str
    ocpp_version: str
    desired: str
    template: str
    counts: dict[str, int] = Field(description="Stations per state for this key.")


class DriftOut(BaseModel):
    group: str
    templates: list[str]
    generated_at: datetime
    station_count: int
    stations_drifting: int
    totals: dict[str, int]
    keys: list[KeyDriftOut]
    stations: list[StationDriftOut] = Field(description="One page of stations, by id.")


class ApplyIn(BaseModel):
    model_config = {"extra": "forbid"}

    concurrency: int = Field(default=jobs.DEFAULT_CONCURRENCY, ge=1, le=jobs.MAX_CONCURRENCY)
    timeout: float | None = Field(default=None, gt=0, le=600)
    offline_expiry_seconds: int = Field(default=jobs.DEFAULT_OFFLINE_EXPIRY, ge=0, le=jobs.MAX_OFFLINE_EXPIRY)
    dry_run: bool = False
    station_ids: list[Annotated[str, Field(min_length=1, max_length=48)]] | None = Field(
        default=None, max_length=10_000, description="Only these stations of the group; omit: all."
    )


class ApplyOut(BaseModel):
    job: JobOut | None = Field(description="The set_variables job (None: nothing drifts, or a dry run).")
    station_ids: list[str] = Field(description="Stations that drift and get their differing keys set.")
    skipped: list[str] = Field(description="Stations left out: OCPP version unknown (never connected).")


class RefreshIn(BaseModel):
    model_config = {"extra": "forbid"}

    concurrency: int = Field(default=jobs.DEFAULT_CONCURRENCY, ge=1, le=jobs.MAX_CONCURRENCY)
    timeout: float | None = Field(default=None, gt=0, le=600)
    offline_expiry_seconds: int = Field(default=3600, ge=0, le=jobs.MAX_OFFLINE_EXPIRY)


def _out(view: TemplateView) -> TemplateOut:
    return TemplateOut(
        id=view.id,
        name=view.name,
        group=view.group,
        description=view.description,
        version=view.version,
        items=[ItemOut(variable=i.label, value=i.value, ocpp_version=i.ocpp_version) for i in view.items],
        created_at=view.created_at,
        updated_at=view.updated_at,
        updated_by=view.updated_by,
    )


def _drift_out(report: DriftReport, drifting_only: bool, limit: int, offset: int) -> DriftOut:
    stations = [s for s in report.stations if s.drifting] if drifting_only else report.stations
    return DriftOut(
        group=report.group,
        templates=report.templates,
        generated_at=report.generated_at,
        station_count=len(report.stations),
        stations_drifting=report.stations_drifting,
        totals=report.totals,
        keys=[
            KeyDriftOut(
                variable=k.label,
                ocpp_version=k.ocpp_version,
                desired=k.desired,
                template=k.template,
                counts=k.counts,
            )
            for k in report.keys
        ],
        stations=[
            StationDriftOut(
                station_id=s.station_id,
                ocpp_version=s.ocpp_version,
                online=s.online,
                counts=s.counts,
                entries=[
                    DriftEntryOut(
                        variable=e.label,
                        ocpp_version=e.ocpp_version,
                        desired=e.desired,
                        actual=e.actual,
                        state=e.state,
                        reported_at=e.reported_at,
                        template=e.template,
                    )
                    for e in s.entries
                ],
            )
            for s in stations[offset : offset + limit]
        ],
    )


@router.post("", status_code=201, response_model=TemplateOut)
async def create_template(
    body: TemplateIn,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> TemplateOut:
    """Keep a desired configuration for a group."""
    view = await templates.create_template(
        ctx, caller.actor, body.name, body.group, [i.item() for i in body.items], body.description
    )
    return _out(view)


@router.get("", response_model=list[TemplateOut])
async def list_templates(
    group: str | None = Query(None, pattern=_GROUP),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> list[TemplateOut]:
    return [_out(v) for v in await templates.list_templates(ctx, group)]


@router.get("/drift", response_model=DriftOut)
async def group_drift(
    group: str = Query(pattern=_GROUP, description="Every template of this group."),
    drifting_only: bool = False,
    limit: int = Query(500, ge=1, le=5000),
    offset: int = Query(0, ge=0, le=10**9),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> DriftOut:
    """How a group's stations drift from every template kept for the group."""
    return _drift_out(await templates.group_drift(ctx, group), drifting_only, limit, offset)


@router.get("/{ref}", response_model=TemplateOut)
async def get_template(
    ref: str = TemplateRef,
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> TemplateOut:
    return _out(await templates.get_template(ctx, ref))


@router.patch("/{ref}", response_model=TemplateOut)
async def update_template(
    body: TemplateUpdate,
    ref: str = TemplateRef,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> TemplateOut:
    """Change the items (replaced whole), description or group; the version goes up."""
    if body.items is None and body.description is None and body.group is None:
        raise InvalidTemplate("nothing to change: give items, description or group")
    items = None if body.items is None else [i.item() for i in body.items]
    view = await templates.update_template(ctx, caller.actor, ref, items, body.description, body.group)
    return _out(view)


@router.delete("/{ref}", status_code=204)
async def delete_template(
    ref: str = TemplateRef,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> Response:
    await templates.delete_template(ctx, caller.actor, ref)
    return Response(status_code=204)


@router.get("/{ref}/drift", response_model=DriftOut)
async def template_drift(
    ref: str = TemplateRef,
    drifting_only: bool = False,
    limit: int = Query(500, ge=1, le=5000),
    offset: int = Query(0, ge=0, le=10**9),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> DriftOut:
    """Per station and key: desired, actual as last reported, and the state; counts per
    station, per key and in total. Refresh first with POST .../refresh for current values."""
    return _drift_out(await templates.drift(ctx, ref), drifting_only, limit, offset)


@router.post("/{ref}/apply", status_code=201, response_model=ApplyOut)
async def apply_template(
    response: Response,
    body: ApplyIn | None = None,
    ref: str = TemplateRef,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any]:
    """A set_variables bulk job on the drifting stations, each with only its differing (or
    never reported) keys; it shows in /api/jobs. Nothing drifts, or a dry run: 200, no job."""
    body = body or ApplyIn()
    result = await templates.apply_template(
        ctx,
        caller.actor,
        ref,
        concurrency=body.concurrency,
        timeout=body.timeout,
        offline_expiry_seconds=body.offline_expiry_seconds,
        dry_run=body.dry_run,
        station_ids=body.station_ids,
    )
    job = None
    if result.job_id is None:
        response.status_code = 200
    else:
        job = job_out(await jobs.get_job(ctx, result.job_id))
    return {"job": job, "station_ids": result.stations, "skipped": result.skipped}


@router.post("/{ref}/refresh", status_code=201, response_model=JobOut)
async def refresh_template(
    body: RefreshIn | None = None,
    ref: str = TemplateRef,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any]:
    """A get_base_report bulk job on the template's group, so the drift report is current."""
    body = body or RefreshIn()
    job_id = await templates.refresh(
        ctx,
        caller.actor,
        ref,
        concurrency=body.concurrency,
        timeout=body.timeout,
        offline_expiry_seconds=body.offline_expiry_seconds,
    )
    return job_out(await jobs.get_job(ctx, job_id))
