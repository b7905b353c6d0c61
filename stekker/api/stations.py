"""Stations: register, change, retire, list with live connection state, remote start, events timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from stekker.api import paging as api_paging
from stekker.api.deps import CONFIGURE, DRIVER_SUPPORT, READ, Caller, allow, get_ctx
from stekker.db.models import ChargingStation, Evse, StationEvent
from stekker.domain.health import heartbeat_overdue
from stekker.domain.inventory_rules import STATION_ID
from stekker.domain.station_auth import Authentication, authentication_of
from stekker.domain.station_status import StationStatus
from stekker.services import inventory, paging, remote, station_status
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/api/stations", tags=["stations"])

REGISTRATION_STATUS = "^(Accepted|Pending|Rejected)$"


class StationCreate(BaseModel):
    id: str = Field(pattern=STATION_ID, description="The OCPP identity: last segment of its URL.")
    password: str | None = Field(
        default=None, min_length=16, max_length=40, description="Basic-auth password (profile 1/2)."
    )
    evse_count: int = Field(default=0, ge=0, le=64)
    location_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    registration_status: str = Field(default="Accepted", pattern=REGISTRATION_STATUS)
    security_profile: int | None = Field(
        default=None,
        ge=0,
        le=3,
        description="Lowest OCPP security profile it may connect at: 0 none, 1 password (ws or wss), "
        "2 password over wss, 3 wss client certificate whose subject CN is the station id. "
        "Null: the password is required iff one is set.",
    )
    authentication: Literal["none"] | None = Field(
        default=None,
        description='"none": register it explicitly without authentication (security profile 0), so '
        "anyone who knows its id can connect as it; audited and shown as a risk. Without it a "
        "station needs a password or security profile 3.",
    )

    @model_validator(mode="after")
    def _profile_fits_credentials(self) -> StationCreate:
        inventory.credentials_of(
            self.security_profile, self.password is not None, self.authentication == "none"
        )
        return self


class StationPatch(BaseModel):
    """Only the fields given change. `password` rotates the Basic-auth secret; null removes it."""

    model_config = ConfigDict(extra="forbid")

    location_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="null: not at a location.")
    registration_status: str | None = Field(default=None, pattern=REGISTRATION_STATUS)
    security_profile: int | None = Field(default=None, ge=0, le=3)
    password: str | None = Field(default=None, min_length=16, max_length=40)
    authentication: Literal["none"] | None = Field(
        default=None, description='"none": from now on without authentication (profile 0), audited.'
    )
    notes: str | None = Field(default=None, max_length=2000)


class ConnectorOut(BaseModel):
    connector_number: int
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None
    status: str | None
    error_code: str | None
    status_at: datetime | None
    assumed: bool = Field(
        description="True: standard, format, power and limits are our placeholder (the station did "
        "not report them and no operator entered them yet); fill them in with PATCH .../connectors/{n}."
    )


class EvseOut(BaseModel):
    evse_number: int
    evse_id: str | None
    status: StationStatus = Field(
        description="The EVSE's status from its connectors (the most telling one: Faulted, Charging, "
        "Occupied, Reserved, Available, Unavailable, Unknown); a 2.0.1 connector Occupied whose "
        "transaction reports chargingState Charging is Charging, as 1.6 reports it."
    )
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
    authentication: Authentication = Field(
        description="What it connects with: password, certificate (profile 3), none (registered "
        "without authentication: anyone who knows its id can connect as it) or missing (no "
        "credentials: refused at connect)."
    )
    status: StationStatus = Field(
        description="One status for the station, derived from its connection and its EVSEs, the first "
        "that holds: Offline (not connected), Faulted (it or any EVSE), Charging (an EVSE delivers "
        "energy), Occupied (an EVSE in use without energy flowing), Unavailable (the station as a "
        "whole says so), Reserved, Available, Unavailable (every EVSE), Unknown (nothing reported yet)."
    )
    reported_status: str | None = Field(
        description="The status the station reported for itself (OCPP 1.6 connectorId 0: Available, "
        "Unavailable or Faulted); null when it never did, as 2.0.1 stations do not."
    )
    online: bool
    last_seen: datetime | None
    seconds_since_seen: int | None = Field(description="Since the station last sent anything.")
    heartbeat_overdue: bool = Field(description="Connected, but silent for over two heartbeat intervals.")
    connected_at: datetime | None
    disconnected_at: datetime | None
    reconnect_count: int
    local_list_version: int | None
    location_id: int | None
    notes: str | None
    created_at: datetime
    retired_at: datetime | None = Field(description="Set: refused at connect, left out of lists.")
    groups: list[str] = Field(description="Names of the groups the station is in.")
    evses: list[EvseOut]


def _station_out(
    s: ChargingStation, ctx: ServiceContext, groups: list[str], charging: dict[int, str | None]
) -> StationOut:
    online = ctx.commands.is_connected(s.id) if ctx.commands is not None else False
    now = ctx.now()
    derived = station_status.of_station(s, online, charging)
    return StationOut(
        id=s.id,
        vendor=s.vendor,
        model=s.model,
        serial_number=s.serial_number,
        firmware_version=s.firmware_version,
        ocpp_version=s.ocpp_version,
        registration_status=s.registration_status,
        security_profile=s.security_profile,
        authentication=authentication_of(s.security_profile, s.password_hash is not None),
        status=derived.status,
        reported_status=s.status,
        online=online,
        last_seen=s.last_seen,
        seconds_since_seen=None if s.last_seen is None else int((now - s.last_seen).total_seconds()),
        heartbeat_overdue=heartbeat_overdue(online, s.last_seen, ctx.settings.heartbeat_interval, now),
        connected_at=s.connected_at,
        disconnected_at=s.disconnected_at,
        reconnect_count=s.reconnect_count,
        local_list_version=s.local_list_version,
        location_id=s.location_id,
        notes=s.notes,
        created_at=s.created_at,
        retired_at=s.retired_at,
        groups=groups,
        evses=[
            EvseOut(
                evse_number=e.evse_number,
                evse_id=e.evse_id,
                status=derived.evses[e.evse_number],
                connectors=[
                    ConnectorOut(
                        connector_number=c.connector_number,
                        standard=c.standard,
                        format=c.format,
                        power_type=c.power_type,
                        max_voltage=c.max_voltage,
                        max_amperage=c.max_amperage,
                        max_electric_power=c.max_electric_power,
                        status=c.status,
                        error_code=c.error_code,
                        status_at=c.status_at,
                        assumed=c.assumed,
                    )
                    for c in e.connectors
                ],
            )
            for e in s.evses
        ],
    )


def _loaded() -> Any:
    return select(ChargingStation).options(selectinload(ChargingStation.evses).selectinload(Evse.connectors))


@router.get("", response_model=list[StationOut], responses=api_paging.LINK)
async def list_stations(
    request: Request,
    response: Response,
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
    limit: int = Query(100, ge=1, le=1000),
    after: str | None = Query(None, pattern=STATION_ID, description=api_paging.AFTER),
    offset: int = api_paging.old_offset(),
    include_retired: bool = Query(False, description="Also list retired stations."),
) -> list[StationOut]:
    """Stations by id; key-set pages (`after`: the last station's id; `Link` header)."""
    api_paging.position(after, offset)
    async with ctx.db() as db:
        query = paging.by_id(_loaded(), ChargingStation.id, after, newest_first=False, limit=limit).offset(
            offset
        )
        if not include_retired:
            query = query.where(ChargingStation.retired_at.is_(None))
        page = paging.cut(list((await db.execute(query)).scalars()), limit, lambda s: s.id)
        ids = [s.id for s in page.rows]
        groups = await inventory.groups_of(db, ids)  # one query for the page
        charging = await station_status.charging_states(db, ids)
        api_paging.link_next(request, response, page)
        return [_station_out(s, ctx, groups[s.id], charging[s.id]) for s in page.rows]


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
            body.authentication == "none",
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
        groups = await inventory.groups_of(db, [station_id])
        charging = await station_status.charging_states(db, [station_id])
        return _station_out(station, ctx, groups[station_id], charging[station_id])


@router.patch("/{station_id}", response_model=StationOut)
async def update_station(
    station_id: str,
    body: StationPatch,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> StationOut:
    """Change location, registration status, security profile, password (rotation; null
    removes it) or notes. The profile must fit the credentials the station ends up with, and
    it must end up with some unless `authentication` is "none"."""
    changes = body.model_dump(include=body.model_fields_set)
    if "registration_status" in changes and changes["registration_status"] is None:
        raise HTTPException(422, "registration_status cannot be null: Accepted, Pending or Rejected")
    await inventory.update_station(ctx, caller.actor, station_id, changes)
    return await get_station(station_id, ctx, caller)


@router.post("/{station_id}/retire", response_model=StationOut)
async def retire_station(
    station_id: str, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> StationOut:
    """Take a station out of service: refused at its next connect, left out of lists (see
    `include_retired`) and selections. Its sessions and history stay."""
    await inventory.set_station_retired(ctx, caller.actor, station_id, True)
    return await get_station(station_id, ctx, caller)


@router.post("/{station_id}/unretire", response_model=StationOut)
async def unretire_station(
    station_id: str, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> StationOut:
    """Bring a retired station back into service."""
    await inventory.set_station_retired(ctx, caller.actor, station_id, False)
    return await get_station(station_id, ctx, caller)


class RemoteStartIn(BaseModel):
    token_uid: str = Field(min_length=1, max_length=36, description="The idTag to start for.")
    evse_number: int | None = Field(default=None, ge=1, description="Omit to let the station choose.")
    profile: remote.RemoteStartProfile | None = Field(
        default=None,
        description="A TxProfile for the transaction, in the shape of the set_charging_profile function.",
    )


class RemoteResult(BaseModel):
    """A station's answer to a remote command, and the session it concerns."""

    status: str = Field(description="The station's answer: Accepted or Rejected.")
    station_id: str
    session_id: int | None = None


class RemoteStartResult(RemoteResult):
    """A station's answer to a remote start, and the session it began if it did so within the call."""

    session_id: int | None = Field(
        default=None,
        description="The session the station began for this remote start, when it began within "
        "`remote_start_session_wait` seconds; else null: follow `follow_url`.",
    )
    remote_start_id: int | None = Field(
        default=None, description="The recorded request (2.0.1: the remoteStartId the station echoes)."
    )
    session_url: str | None = Field(default=None, description="The session, once it began.")
    follow_url: str | None = Field(
        default=None,
        description="Poll this remote start until its `session_id` is set (also in `Location`).",
    )


@router.post(
    "/{station_id}/remote-start",
    response_model=RemoteStartResult,
    responses={200: {"headers": {"Location": {"description": "The session, or the remote start to poll."}}}},
)
async def remote_start(
    station_id: str,
    body: RemoteStartIn,
    response: Response,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*DRIVER_SUPPORT)),
) -> RemoteStartResult:
    """Ask the station to start a session; when it accepts, wait up to `remote_start_session_wait`
    seconds (10) for the session to begin and answer its `session_id`. A station that accepts but
    has not begun by then (the car not yet plugged in) is answered with `session_id: null` and a
    `follow_url` (and `Location`) to poll: `GET /api/sessions/remote-starts/{id}`. 409 if
    offline or the token is refused, 504 when the station does not answer in time."""
    outcome = await remote.remote_start(
        ctx, caller.actor, station_id, body.token_uid, body.evse_number, profile=body.profile
    )
    result = RemoteStartResult(
        status=outcome.status, station_id=outcome.station_id, remote_start_id=outcome.remote_start_id
    )
    if outcome.status != "Accepted" or outcome.remote_start_id is None:
        return result
    result.follow_url = f"/api/sessions/remote-starts/{outcome.remote_start_id}"
    result.session_id = await remote.wait_for_session(
        ctx, outcome.remote_start_id, station_id, ctx.settings.remote_start_session_wait
    )
    if result.session_id is not None:
        result.session_url = f"/api/sessions/{result.session_id}"
    response.headers["Location"] = result.session_url or result.follow_url
    return result


class EventOut(BaseModel):
    id: int = Field(description="The key-set cursor (`after`) of the list.")
    kind: str
    occurred_at: datetime
    detail: dict[str, Any]


@router.get("/{station_id}/events", response_model=list[EventOut], responses=api_paging.LINK)
async def station_events(
    station_id: str,
    request: Request,
    response: Response,
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
    limit: int = Query(100, ge=1, le=1000),
    after: int | None = api_paging.after_id(),
) -> list[EventOut]:
    """The station's timeline, newest first; key-set pages (`after`, `Link` header). An id that
    is no registered station shows the handshakes refused under it (`connection_refused`), and
    is a 404 when nothing was ever recorded for it."""
    query = select(StationEvent).where(StationEvent.station_id == station_id)
    async with ctx.db() as db:
        if (
            await db.get(ChargingStation, station_id) is None
            and (await db.execute(query.with_only_columns(StationEvent.id).limit(1))).first() is None
        ):
            raise HTTPException(404, f"no station {station_id!r}")
        rows = (
            await db.execute(paging.by_id(query, StationEvent.id, after, newest_first=True, limit=limit))
        ).scalars()
        page = paging.cut(list(rows), limit, lambda e: e.id)
    api_paging.link_next(request, response, page)
    return [EventOut(id=e.id, kind=e.kind, occurred_at=e.occurred_at, detail=e.detail) for e in page.rows]
