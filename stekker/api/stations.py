"""Stations: register, list with live connection state, remote start, events timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from stekker.api.deps import CONFIGURE, DRIVER_SUPPORT, READ, Caller, allow, get_ctx
from stekker.db.models import ChargingStation, Evse, StationEvent
from stekker.domain.health import heartbeat_overdue
from stekker.services import inventory, remote
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/api/stations", tags=["stations"])

STATION_ID = r"^[A-Za-z0-9._:*\-]{1,48}$"


class StationCreate(BaseModel):
    id: str = Field(pattern=STATION_ID, description="The OCPP identity: last segment of its URL.")
    password: str | None = Field(
        default=None, min_length=16, max_length=40, description="Basic-auth password (profile 1/2)."
    )
    evse_count: int = Field(default=0, ge=0, le=64)
    location_id: int | None = None
    registration_status: str = Field(default="Accepted", pattern="^(Accepted|Pending|Rejected)$")
    security_profile: int | None = Field(
        default=None,
        ge=0,
        le=3,
        description="Lowest OCPP security profile it may connect at: 0 none, 1 password (ws or wss), "
        "2 password over wss, 3 wss client certificate whose subject CN is the station id. "
        "Null: the password is required iff one is set.",
    )

    @model_validator(mode="after")
    def _profile_fits_credentials(self) -> StationCreate:
        problem = inventory.security_profile_problem(self.security_profile, self.password is not None)
        if problem is not None:
            raise ValueError(problem)
        return self


class ConnectorOut(BaseModel):
    connector_number: int
    standard: str
    power_type: str
    status: str | None
    error_code: str | None
    status_at: datetime | None


class EvseOut(BaseModel):
    evse_number: int
    evse_id: str | None
    connectors: list[ConnectorOut]


class StationOut(BaseModel):
    id: str
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    ocpp_version: str | None
    registration_status: str
    security_profile: int | None
    status: str | None
    online: bool
    last_seen: datetime | None
    seconds_since_seen: int | None = Field(description="Since the station last sent anything.")
    heartbeat_overdue: bool = Field(description="Connected, but silent for over two heartbeat intervals.")
    connected_at: datetime | None
    disconnected_at: datetime | None
    reconnect_count: int
    local_list_version: int | None
    evses: list[EvseOut]


def _station_out(s: ChargingStation, ctx: ServiceContext) -> StationOut:
    online = ctx.commands.is_connected(s.id) if ctx.commands is not None else False
    now = ctx.now()
    return StationOut(
        id=s.id,
        vendor=s.vendor,
        model=s.model,
        serial_number=s.serial_number,
        firmware_version=s.firmware_version,
        ocpp_version=s.ocpp_version,
        registration_status=s.registration_status,
        security_profile=s.security_profile,
        status=s.status,
        online=online,
        last_seen=s.last_seen,
        seconds_since_seen=None if s.last_seen is None else int((now - s.last_seen).total_seconds()),
        heartbeat_overdue=heartbeat_overdue(online, s.last_seen, ctx.settings.heartbeat_interval, now),
        connected_at=s.connected_at,
        disconnected_at=s.disconnected_at,
        reconnect_count=s.reconnect_count,
        local_list_version=s.local_list_version,
        evses=[
            EvseOut(
                evse_number=e.evse_number,
                evse_id=e.evse_id,
                connectors=[
                    ConnectorOut(
                        connector_number=c.connector_number,
                        standard=c.standard,
                        power_type=c.power_type,
                        status=c.status,
                        error_code=c.error_code,
                        status_at=c.status_at,
                    )
                    for c in e.connectors
                ],
            )
            for e in s.evses
        ],
    )


def _loaded() -> Any:
    return select(ChargingStation).options(selectinload(ChargingStation.evses).selectinload(Evse.connectors))


@router.get("", response_model=list[StationOut])
async def list_stations(
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[StationOut]:
    async with ctx.db() as db:
        rows = (
            await db.execute(_loaded().order_by(ChargingStation.id).limit(limit).offset(offset))
        ).scalars()
        return [_station_out(s, ctx) for s in rows]


@router.post("", response_model=StationOut, status_code=201)
async def register_station(
    body: StationCreate, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> StationOut:
    await inventory.register_station(
        ctx,
        caller.actor,
        inventory.StationInput(
            body.id,
            body.password,
            body.evse_count,
            body.location_id,
            body.registration_status,
            body.security_profile,
        ),
    )
    return await get_station(body.id, ctx, caller)


@router.get("/{station_id}", response_model=StationOut)
async def get_station(
    station_id: str, ctx: ServiceContext = Depends(get_ctx), _caller: Caller = Depends(allow(*READ))
) -> StationOut:
    async with ctx.db() as db:
        station = (await db.execute(_loaded().where(ChargingStation.id == station_id))).scalar_one_or_none()
        if station is None:
            raise HTTPException(404, f"no station {station_id!r}")
        return _station_out(station, ctx)


class RemoteStartIn(BaseModel):
    token_uid: str = Field(min_length=1, max_length=36, description="The idTag to start for.")
    evse_number: int | None = Field(default=None, ge=1, description="Omit to let the station choose.")


class RemoteResult(BaseModel):
    status: str = Field(description="The station's answer: Accepted or Rejected.")
    station_id: str
    session_id: int | None = None


@router.post("/{station_id}/remote-start", response_model=RemoteResult)
async def remote_start(
    station_id: str,
    body: RemoteStartIn,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*DRIVER_SUPPORT)),
) -> RemoteResult:
    """Ask the station to start a session. 409 if offline or the token is refused, 504 on timeout."""
    outcome = await remote.remote_start(ctx, caller.actor, station_id, body.token_uid, body.evse_number)
    return RemoteResult(status=outcome.status, station_id=outcome.station_id)


class EventOut(BaseModel):
    kind: str
    occurred_at: datetime
    detail: dict[str, Any]


@router.get("/{station_id}/events", response_model=list[EventOut])
async def station_events(
    station_id: str,
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
    limit: int = Query(100, ge=1, le=1000),
) -> list[EventOut]:
    async with ctx.db() as db:
        rows = (
            await db.execute(
                select(StationEvent)
                .where(StationEvent.station_id == station_id)
                .order_by(StationEvent.id.desc())
                .limit(limit)
            )
        ).scalars()
        return [EventOut(kind=e.kind, occurred_at=e.occurred_at, detail=e.detail) for e in rows]
