"""Every remote function of a station, for OCPP 1.6 and 2.0.1 alike: the catalogue with each
function's argument schema and roles, one endpoint to run any of them, and the functions whose
outcome arrives later (firmware updates, reservations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from stekker.api.deps import READ, Caller, Role, allow, get_ctx
from stekker.services import firmware, reservations
from stekker.services.context import ServiceContext
from stekker.services.functions import FUNCTIONS, FunctionSpec, run_function, spec_of

router = APIRouter(prefix="/api/stations", tags=["functions"])

# a station id in a path: printable, at most what an OCPP URL segment may hold (NUL never
# reaches the database, where PostgreSQL would refuse it)
StationId = Path(max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")

# The services name roles by their API values; a typo there must fail here, at import.
for _spec in FUNCTIONS.values():
    for _role in _spec.roles:
        Role(_role)


def allowed_roles(spec: FunctionSpec) -> list[str]:
    return [Role.ADMIN.value, *(r for r in spec.roles if r != Role.ADMIN.value)]


class FunctionOut(BaseModel):
    name: str
    summary: str
    roles: list[str] = Field(description="Roles that may run it.")
    changes: bool = Field(description="Whether it changes the station (false: it only reads).")
    accepted: list[str] = Field(description="Station answers that mean it will do it.")
    args_schema: dict[str, Any] = Field(description="JSON schema of the arguments.")


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    args: dict[str, Any] = Field(default_factory=dict, description="The function's arguments.")
    timeout: float | None = Field(
        default=None, gt=0, le=300, description="Seconds to wait for each answer; default call_timeout."
    )


class FunctionResultOut(BaseModel):
    status: str = Field(description="The station's answer as it said it (Accepted, Rejected, ...).")
    accepted: bool = Field(description="Whether that answer means the station will do it.")
    reply: dict[str, Any] = Field(description="The whole answer, version-neutral.")


@router.get("/functions", response_model=list[FunctionOut])
async def list_functions(_caller: Caller = Depends(allow(*READ))) -> list[FunctionOut]:
    """Every remote function: what it does, who may run it, and its arguments."""
    return [
        FunctionOut(
            name=spec.name,
            summary=spec.summary,
            roles=allowed_roles(spec),
            changes=spec.changes,
            accepted=sorted(spec.accepted),
            args_schema=spec.schema(),
        )
        for spec in sorted(FUNCTIONS.values(), key=lambda s: s.name)
    ]


@router.post("/{station_id}/functions/{name}", response_model=FunctionResultOut)
async def call_function(
    body: FunctionCall,
    station_id: str = StationId,
    name: str = Path(max_length=100),
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*READ)),
) -> FunctionResultOut:
    """Run one function on one station and return its answer. Each function has its own roles
    (GET /api/stations/functions). 404 unknown station or function, 422 bad arguments or not
    available in the station's OCPP version, 409 offline, 504 no answer in time, 502 the
    station answered with an error, 202 `outcome_unknown`: the station disconnected after
    receiving the call (a reset followed by the station's boot is 200 Accepted)."""
    spec = spec_of(name)
    roles = allowed_roles(spec)
    if caller.role.value not in roles:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"role {caller.role.value} may not run {spec.name} (allowed: {', '.join(roles)})",
        )
    result = await run_function(ctx, caller.actor, station_id, spec.name, body.args, body.timeout)
    return FunctionResultOut(status=result.status, accepted=result.accepted, reply=result.reply)


class FirmwareUpdateOut(BaseModel):
    id: int = Field(description="Also the requestId the station was given.")
    location: str
    retrieve_at: datetime
    install_at: datetime | None
    signed: bool
    requested_by: str
    requested_at: datetime
    answer: str | None = Field(description="What the station said to the request.")
    status: str | None = Field(description="Its latest progress report (Downloading, Installed, ...).")
    history: list[dict[str, Any]] = Field(description="Every progress report: status and time received.")
    updated_at: datetime


@router.get("/{station_id}/firmware", response_model=list[FirmwareUpdateOut])
async def firmware_updates(
    station_id: str = StationId,
    limit: int = Query(50, ge=1, le=500),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> list[FirmwareUpdateOut]:
    """The station's firmware updates, newest first, with how far each got."""
    rows = await firmware.list_updates(ctx, station_id, limit)
    return [
        FirmwareUpdateOut(
            id=r.id,
            location=r.location,
            retrieve_at=r.retrieve_at,
            install_at=r.install_at,
            signed=r.signed,
            requested_by=r.requested_by,
            requested_at=r.requested_at,
            answer=r.answer,
            status=r.status,
            history=r.history,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


class ReservationOut(BaseModel):
    reservation_id: int
    evse_number: int | None
    token_uid: str
    expires_at: datetime
    status: str = Field(description="Requested, the station's answer, then Cancelled/Expired/Removed.")
    requested_by: str
    requested_at: datetime
    updated_at: datetime


@router.get("/{station_id}/reservations", response_model=list[ReservationOut])
async def station_reservations(
    station_id: str = StationId,
    limit: int = Query(50, ge=1, le=500),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> list[ReservationOut]:
    """The station's reservations, newest first."""
    rows = await reservations.list_reservations(ctx, station_id, limit)
    return [
        ReservationOut(
            reservation_id=r.reservation_id,
            evse_number=r.evse_number,
            token_uid=r.token_uid,
            expires_at=r.expires_at,
            status=r.status,
            requested_by=r.requested_by,
            requested_at=r.requested_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]
