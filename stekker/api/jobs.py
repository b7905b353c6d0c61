"""Bulk jobs: one function on a selection of stations, with per-station progress.

Starting or cancelling a job is the operator's (and admin's), and needs the roles of its
function as well (`services.jobs.may_run_bulk`): a job acts on many stations in one call, so
the helpdesk, which may reset or unlock one station, runs no jobs. Reading jobs is open to
every role.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, Field, field_validator

from stekker.api.deps import READ, Caller, Role, allow, get_ctx
from stekker.db.models_jobs import JobState, JobStation, JobStationState
from stekker.services import jobs
from stekker.services.context import ServiceContext
from stekker.services.functions import FUNCTIONS
from stekker.services.selection import Selection

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

_STATION_ID = r"^[A-Za-z0-9_.\-:*#]{1,48}$"
_NAME = r"^[A-Za-z0-9_.\-]{1,100}$"
MAX_ARGS_BYTES = 64 * 1024
JobId = Path(ge=1, le=2**53, description="The job's id.")


class SelectionIn(BaseModel):
    """Which stations; every criterion given must hold. A job needs at least one criterion,
    or `all: true` for every active station."""

    model_config = {"extra": "forbid"}

    station_ids: list[str] = Field(default_factory=list, max_length=10_000)
    location_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    group: str | None = Field(default=None, pattern=_NAME)
    vendor: str | None = Field(default=None, min_length=1, max_length=50)
    model: str | None = Field(default=None, min_length=1, max_length=50)
    firmware_version: str | None = Field(default=None, min_length=1, max_length=50)
    ocpp_version: str | None = Field(default=None, pattern=r"^ocpp[0-9.]{1,10}$")
    online: bool | None = None
    all: bool = Field(default=False, description="Select every active station (no other criterion).")

    @field_validator("station_ids")
    @classmethod
    def _ids(cls, ids: list[str]) -> list[str]:
        bad = [i for i in ids if not re.match(_STATION_ID, i)]
        if bad:
            raise ValueError(f"not a station id: {bad[0][:60]!r}")
        return ids

    def to_selection(self) -> Selection:
        selection = Selection(
            station_ids=tuple(dict.fromkeys(self.station_ids)),
            location_id=self.location_id,
            group=self.group,
            vendor=self.vendor,
            model=self.model,
            firmware_version=self.firmware_version,
            ocpp_version=self.ocpp_version,
            online=self.online,
        )
        if selection == Selection() and not self.all:
            raise jobs.NothingSelected(
                "the selection is empty: give station_ids, location_id, group or a filter "
                "(or all: true for every station)"
            )
        return selection


class JobIn(BaseModel):
    model_config = {"extra": "forbid"}

    function: str = Field(pattern=r"^[a-z_]{1,64}$", description="A remote function, e.g. reset.")
    args: dict[str, Any] = Field(default_factory=dict, description="The function's arguments.")
    selection: SelectionIn
    concurrency: int = Field(default=jobs.DEFAULT_CONCURRENCY, ge=1, le=jobs.MAX_CONCURRENCY)
    timeout: float | None = Field(
        default=None, gt=0, le=600, description="Seconds each station has to answer (default: call_timeout)."
    )
    offline_expiry_seconds: int = Field(
        default=jobs.DEFAULT_OFFLINE_EXPIRY,
        ge=0,
        le=jobs.MAX_OFFLINE_EXPIRY,
        description="How long offline stations are waited for.",
    )
    dry_run: bool = Field(default=False, description="Only list the stations; create nothing.")

    @field_validator("args")
    @classmethod
    def _small(cls, args: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(args, default=str)) > MAX_ARGS_BYTES:
            raise ValueError(f"arguments larger than {MAX_ARGS_BYTES} bytes")
        return args


class JobOut(BaseModel):
    id: int
    function: str
    args: dict[str, Any]
    selection: dict[str, Any]
    state: JobState
    actor: str
    concurrency: int
    timeout: float
    offline_expiry_seconds: int
    template_id: int | None
    total: int
    counts: dict[str, int] = Field(description="Stations per state.")
    done: int = Field(description="Stations in a final state.")
    created_at: datetime
    expires_at: datetime = Field(description="Stations still offline at this time end expired.")
    finished_at: datetime | None
    cancelled_by: str | None


class JobStationOut(BaseModel):
    station_id: str
    state: JobStationState
    status: str | None = Field(
        description="What the station answered (Accepted, Rejected, a CALLERROR code...)."
    )
    error: str | None
    attempts: int
    reply: dict[str, Any] | None
    sent_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class JobDetailOut(JobOut):
    stations: list[JobStationOut] = Field(description="One page of the job's stations, by id.")


class JobCreatedOut(JobOut):
    station_ids: list[str] = Field(description="The stations the selection resolved to.")


class DryRunOut(BaseModel):
    dry_run: bool = True
    function: str
    args: dict[str, Any]
    count: int
    station_ids: list[str]


def job_out(view: jobs.JobView) -> dict[str, Any]:
    final = sum(n for state, n in view.counts.items() if state in jobs.FINAL_STATES)
    return {**dataclasses.asdict(view), "done": final}


def _station_out(row: JobStation) -> JobStationOut:
    return JobStationOut(
        station_id=row.station_id,
        state=JobStationState(row.state),
        status=row.status,
        error=row.error,
        attempts=row.attempts,
        reply=row.reply,
        sent_at=row.sent_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
    )


#: The roles that start and cancel jobs (admin always); the function may narrow them further.
BULK = tuple(Role(name) for name in jobs.BULK_ROLES)


def require_function_role(caller: Caller, function: str) -> None:
    """The caller's role must be a bulk role the function allows (admin always)."""
    if jobs.may_run_bulk(caller.role.value, function):
        return
    spec = FUNCTIONS.get(function)
    allowed = [r for r in jobs.BULK_ROLES if spec is not None and r in spec.roles]
    names = ", ".join(("admin", *allowed))
    raise HTTPException(
        status.HTTP_403_FORBIDDEN, f"role {caller.role} may not run {function} as a job (allowed: {names})"
    )


@router.post("", status_code=201, response_model=JobCreatedOut | DryRunOut)
async def create_job(
    body: JobIn,
    response: Response,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*BULK)),
) -> dict[str, Any]:
    """Run a function on every station of a selection, resolved now. Connected stations are
    sent at once (at most `concurrency` at a time), offline ones when they connect, until
    `offline_expiry_seconds`. `dry_run`: the stations only (200), nothing is created."""
    require_function_role(caller, body.function)
    request = jobs.JobRequest(
        function=body.function,
        args=body.args,
        selection=body.selection.to_selection(),
        concurrency=body.concurrency,
        timeout=body.timeout,
        offline_expiry_seconds=body.offline_expiry_seconds,
    )
    if body.dry_run:
        ids = await jobs.plan(ctx, request)
        response.status_code = 200
        return DryRunOut(function=body.function, args=body.args, count=len(ids), station_ids=ids).model_dump()
    job_id = await jobs.create_job(ctx, caller.actor, request)
    rows = await jobs.job_stations(ctx, job_id, limit=jobs.MAX_STATIONS)
    return {**job_out(await jobs.get_job(ctx, job_id)), "station_ids": [r.station_id for r in rows]}


@router.get("", response_model=list[JobOut])
async def list_jobs(
    state: JobState | None = None,
    function: str | None = Query(None, pattern=r"^[a-z_]{1,64}$"),
    template_id: int | None = Query(None, ge=1, le=2**31 - 1),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> list[dict[str, Any]]:
    """Jobs, newest first, with their stations counted per state."""
    views = await jobs.list_jobs(ctx, state, function, template_id, limit, offset)
    return [job_out(v) for v in views]


@router.get("/{job_id}", response_model=JobDetailOut)
async def get_job(
    job_id: int = JobId,
    state: JobStationState | None = Query(None, description="Only stations in this state."),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**9),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> dict[str, Any]:
    """A job's counts per state and a page of its stations (read while it runs)."""
    view = await jobs.get_job(ctx, job_id)
    rows = await jobs.job_stations(ctx, job_id, state, limit, offset)
    return {**job_out(view), "stations": [_station_out(r) for r in rows]}


@router.post("/{job_id}/cancel", response_model=JobOut)
async def cancel_job(
    job_id: int = JobId,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*BULK)),
) -> dict[str, Any]:
    """Cancel a running job: queued and waiting stations end cancelled; sent ones finish."""
    view = await jobs.get_job(ctx, job_id)
    require_function_role(caller, view.function)
    return job_out(await jobs.cancel_job(ctx, caller.actor, job_id))
