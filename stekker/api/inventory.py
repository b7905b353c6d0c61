"""Locations, EVSEs and connectors of a station, station groups, and bulk imports.

Reads are open to every role; changes need CONFIGURE (operator) and are audited.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select

from stekker.api.deps import CONFIGURE, READ, Caller, allow, get_ctx
from stekker.api.stations import StationOut, get_station
from stekker.db.models import ChargingStation, Location, StationGroup, StationGroupMember
from stekker.domain.inventory_rules import STATION_ID, connector_problem
from stekker.domain.timeutil import HOME_TIME_ZONE
from stekker.services import imports, inventory
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/api", tags=["inventory"])

StationId = Annotated[str, Field(pattern=STATION_ID)]
# Path ids within the databases' 32-bit INTEGER, so a huge number is a 422, not a driver error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Number = Annotated[int, Path(ge=0, le=9999)]


def _problems_to_error(fields: dict[str, Any]) -> None:
    problems = inventory.location_problems(fields)
    if problems:
        raise ValueError("; ".join(problems))


# --- locations ------------------------------------------------------------------------------


class LocationIn(BaseModel):
    """A place with stations. `opening_times` is an OCPI Hours object (null: open 24/7)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    address: str = Field(min_length=1, max_length=255)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str = Field(default="NLD", description="ISO 3166-1 alpha-3, e.g. NLD.")
    latitude: Decimal = Field(description="WGS84 degrees, -90..90, at most 6 decimals.")
    longitude: Decimal = Field(description="WGS84 degrees, -180..180, at most 6 decimals.")
    time_zone: str = Field(default=HOME_TIME_ZONE, description="IANA time zone.")
    opening_times: dict[str, Any] | None = Field(
        default=None,
        description='OCPI Hours, e.g. {"twentyfourseven": false, "regular_hours": '
        '[{"weekday": 1, "period_begin": "07:00", "period_end": "22:00"}]}.',
    )

    @model_validator(mode="after")
    def _valid(self) -> LocationIn:
        _problems_to_error(self.model_dump())
        return self


class LocationPatch(BaseModel):
    """Only the fields given change (`postal_code` and `opening_times` may be null)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    address: str | None = Field(default=None, min_length=1, max_length=255)
    city: str | None = Field(default=None, min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = None
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    time_zone: str | None = None
    opening_times: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _valid(self) -> LocationPatch:
        given = self.model_dump(include=self.model_fields_set)
        for name in ("name", "address", "city", "country", "latitude", "longitude", "time_zone"):
            if name in given and given[name] is None:
                raise ValueError(f"{name} cannot be null")
        _problems_to_error(given)
        return self


class LocationOut(BaseModel):
    id: int
    name: str
    address: str
    city: str
    postal_code: str | None
    country: str
    latitude: str = Field(description="WGS84 degrees with 6 decimals, as OCPI writes them.")
    longitude: str
    time_zone: str
    opening_times: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None
    station_ids: list[str] = Field(description="Stations in service at this location.")


def _location_out(location: Location, station_ids: list[str]) -> LocationOut:
    return LocationOut(
        id=location.id,
        name=location.name,
        address=location.address,
        city=location.city,
        postal_code=location.postal_code,
        country=location.country,
        latitude=f"{location.latitude:.6f}",
        longitude=f"{location.longitude:.6f}",
        time_zone=location.time_zone,
        opening_times=location.opening_times,
        created_at=location.created_at,
        updated_at=location.updated_at,
        retired_at=location.retired_at,
        station_ids=station_ids,
    )


async def _stations_at(ctx: ServiceContext, location_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {i: [] for i in location_ids}
    if not location_ids:
        return found
    async with ctx.db() as db:
        rows = await db.execute(
            select(ChargingStation.location_id, ChargingStation.id)
            .where(ChargingStation.location_id.in_(location_ids), ChargingStation.retired_at.is_(None))
            .order_by(ChargingStation.id)
        )
        for location_id, station_id in rows:
            found.setdefault(location_id or 0, []).append(station_id)
    return found


@router.post("/locations", response_model=LocationOut, status_code=201)
async def create_location(
    body: LocationIn, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> LocationOut:
    location = await inventory.create_location(ctx, caller.actor, body.model_dump())
    return _location_out(location, [])


@router.get("/locations", response_model=list[LocationOut])
async def list_locations(
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
    include_retired: bool = Query(False, description="Also list retired locations."),
    city: str | None = Query(None, max_length=100),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[LocationOut]:
    async with ctx.db() as db:
        query = select(Location).order_by(Location.id).limit(limit).offset(offset)
        if not include_retired:
            query = query.where(Location.retired_at.is_(None))
        if city is not None:
            query = query.where(Location.city == city)
        locations = list((await db.execute(query)).scalars())
    stations = await _stations_at(ctx, [loc.id for loc in locations])
    return [_location_out(loc, stations[loc.id]) for loc in locations]


@router.get("/locations/{location_id}", response_model=LocationOut)
async def get_location(
    location_id: RowId, ctx: ServiceContext = Depends(get_ctx), _caller: Caller = Depends(allow(*READ))
) -> LocationOut:
    async with ctx.db() as db:
        location = await db.get(Location, location_id)
    if location is None:
        raise HTTPException(404, f"no location {location_id}")
    return _location_out(location, (await _stations_at(ctx, [location_id]))[location_id])


@router.patch("/locations/{location_id}", response_model=LocationOut)
async def update_location(
    location_id: RowId,
    body: LocationPatch,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> LocationOut:
    await inventory.update_location(
        ctx, caller.actor, location_id, body.model_dump(include=body.model_fields_set)
    )
    return await get_location(location_id, ctx, caller)


@router.post("/locations/{location_id}/retire", response_model=LocationOut)
async def retire_location(
    location_id: RowId, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> LocationOut:
    """Retire a location (kept for history, left out of lists). 409 while stations in
    service stand there: move or retire them first."""
    await inventory.set_location_retired(ctx, caller.actor, location_id, True)
    return await get_location(location_id, ctx, caller)


@router.post("/locations/{location_id}/unretire", response_model=LocationOut)
async def unretire_location(
    location_id: RowId, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> LocationOut:
    await inventory.set_location_retired(ctx, caller.actor, location_id, False)
    return await get_location(location_id, ctx, caller)


# --- EVSEs and connectors ------------------------------------------------------------------


class ConnectorIn(BaseModel):
    """A connector in OCPI's vocabulary (standard e.g. IEC_62196_T2, format SOCKET|CABLE,
    power_type AC_1_PHASE|AC_3_PHASE|DC...); power in W."""

    model_config = ConfigDict(extra="forbid")

    connector_number: int = Field(default=1, ge=1, le=99)
    standard: str = "IEC_62196_T2"
    format: str = "SOCKET"
    power_type: str = "AC_3_PHASE"
    max_voltage: int = 230
    max_amperage: int = 32
    max_electric_power: int | None = None

    @model_validator(mode="after")
    def _valid(self) -> ConnectorIn:
        _connector_problems(self.model_dump())
        return self


class ConnectorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    standard: str | None = None
    format: str | None = None
    power_type: str | None = None
    max_voltage: int | None = None
    max_amperage: int | None = None
    max_electric_power: int | None = None

    @model_validator(mode="after")
    def _valid(self) -> ConnectorPatch:
        given = self.model_dump(include=self.model_fields_set)
        for name, value in given.items():
            if value is None and name != "max_electric_power":
                raise ValueError(f"{name} cannot be null")
        _connector_problems(given)
        return self


def _connector_problems(fields: dict[str, Any]) -> None:
    problems = [p for name, value in fields.items() if (p := connector_problem(name, value)) is not None]
    if problems:
        raise ValueError("; ".join(problems))


class EvseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evse_number: int = Field(ge=1, le=999, description="The OCPP EVSE id (1.6: connectorId).")
    evse_id: str | None = Field(
        default=None,
        max_length=48,
        description="eMI3 id on the sticker, e.g. NL*STK*E0001*1; omitted: generated from the station id.",
    )
    connectors: list[ConnectorIn] = Field(
        default_factory=list, max_length=8, description="Omitted: one Type 2 socket, 3-phase AC."
    )


class EvsePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evse_id: str = Field(max_length=48, description="eMI3 id on the sticker, e.g. NL*STK*E0001*1.")


@router.post("/stations/{station_id}/evses", response_model=StationOut, status_code=201)
async def add_evse(
    station_id: str,
    body: EvseIn,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> StationOut:
    """Register an EVSE (with its connectors) before the station reports it."""
    numbers = [c.connector_number for c in body.connectors]
    if len(numbers) != len(set(numbers)):
        raise HTTPException(422, "connector_number given twice")
    await inventory.add_evse(
        ctx,
        caller.actor,
        station_id,
        body.evse_number,
        body.evse_id,
        [c.model_dump() for c in body.connectors],
    )
    return await get_station(station_id, ctx, caller)


@router.patch("/stations/{station_id}/evses/{evse_number}", response_model=StationOut)
async def update_evse(
    station_id: str,
    evse_number: Number,
    body: EvsePatch,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> StationOut:
    """Change the public eMI3 EVSE id (what drivers read on the sticker)."""
    await inventory.update_evse(ctx, caller.actor, station_id, evse_number, body.evse_id)
    return await get_station(station_id, ctx, caller)


@router.delete("/stations/{station_id}/evses/{evse_number}", status_code=204)
async def remove_evse(
    station_id: str,
    evse_number: Number,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> Response:
    """Remove an EVSE registered by mistake; 409 if it has sessions on record."""
    await inventory.remove_evse(ctx, caller.actor, station_id, evse_number)
    return Response(status_code=204)


@router.post(
    "/stations/{station_id}/evses/{evse_number}/connectors", response_model=StationOut, status_code=201
)
async def add_connector(
    station_id: str,
    evse_number: Number,
    body: ConnectorIn,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> StationOut:
    await inventory.add_connector(ctx, caller.actor, station_id, evse_number, body.model_dump())
    return await get_station(station_id, ctx, caller)


@router.patch(
    "/stations/{station_id}/evses/{evse_number}/connectors/{connector_number}", response_model=StationOut
)
async def update_connector(
    station_id: str,
    evse_number: Number,
    connector_number: Number,
    body: ConnectorPatch,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> StationOut:
    changes = body.model_dump(include=body.model_fields_set)
    await inventory.update_connector(ctx, caller.actor, station_id, evse_number, connector_number, changes)
    return await get_station(station_id, ctx, caller)


@router.delete("/stations/{station_id}/evses/{evse_number}/connectors/{connector_number}", status_code=204)
async def remove_connector(
    station_id: str,
    evse_number: Number,
    connector_number: Number,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> Response:
    await inventory.remove_connector(ctx, caller.actor, station_id, evse_number, connector_number)
    return Response(status_code=204)


# --- groups ---------------------------------------------------------------------------------


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Unique; not only digits; no ';'.")
    description: str | None = Field(default=None, max_length=2000)


class GroupPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)


class GroupOut(BaseModel):
    id: int
    name: str
    description: str | None
    created_at: datetime
    member_count: int


class GroupDetail(GroupOut):
    station_ids: list[str]


class Members(BaseModel):
    model_config = ConfigDict(extra="forbid")

    station_ids: list[StationId] = Field(min_length=1, max_length=10_000)


async def _group_detail(ctx: ServiceContext, ref: str) -> GroupDetail:
    async with ctx.db() as db:
        group = await inventory.find_group(db, ref)
        ids = list(
            (
                await db.execute(
                    select(StationGroupMember.station_id)
                    .where(StationGroupMember.group_id == group.id)
                    .order_by(StationGroupMember.station_id)
                )
            ).scalars()
        )
    return GroupDetail(
        id=group.id,
        name=group.name,
        description=group.description,
        created_at=group.created_at,
        member_count=len(ids),
        station_ids=ids,
    )


@router.post("/groups", response_model=GroupDetail, status_code=201)
async def create_group(
    body: GroupIn, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> GroupDetail:
    group = await inventory.create_group(ctx, caller.actor, body.name, body.description)
    return await _group_detail(ctx, str(group.id))


@router.get("/groups", response_model=list[GroupOut])
async def list_groups(
    ctx: ServiceContext = Depends(get_ctx), _caller: Caller = Depends(allow(*READ))
) -> list[GroupOut]:
    async with ctx.db() as db:
        counts = (
            select(StationGroupMember.group_id, func.count().label("n"))
            .group_by(StationGroupMember.group_id)
            .subquery()
        )
        rows = await db.execute(
            select(StationGroup, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.group_id == StationGroup.id)
            .order_by(StationGroup.name)
        )
        return [
            GroupOut(id=g.id, name=g.name, description=g.description, created_at=g.created_at, member_count=n)
            for g, n in rows
        ]


@router.get("/groups/{group}", response_model=GroupDetail)
async def get_group(
    group: str, ctx: ServiceContext = Depends(get_ctx), _caller: Caller = Depends(allow(*READ))
) -> GroupDetail:
    """A group by id or by name, with its members."""
    return await _group_detail(ctx, group)


@router.get("/groups/{group}/members", response_model=list[str])
async def group_members(
    group: str, ctx: ServiceContext = Depends(get_ctx), _caller: Caller = Depends(allow(*READ))
) -> list[str]:
    return (await _group_detail(ctx, group)).station_ids


@router.patch("/groups/{group}", response_model=GroupDetail)
async def update_group(
    group: str,
    body: GroupPatch,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> GroupDetail:
    changes = body.model_dump(include=body.model_fields_set)
    if "name" in changes and changes["name"] is None:
        raise HTTPException(422, "name cannot be null")
    updated = await inventory.update_group(ctx, caller.actor, group, changes)
    return await _group_detail(ctx, str(updated.id))


@router.delete("/groups/{group}", status_code=204)
async def delete_group(
    group: str, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> Response:
    """Delete a group; its stations stay."""
    await inventory.delete_group(ctx, caller.actor, group)
    return Response(status_code=204)


@router.post("/groups/{group}/members", response_model=GroupDetail)
async def add_members(
    group: str,
    body: Members,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> GroupDetail:
    """Add stations to the group; 404 (and nothing changes) if any id is unknown."""
    found, _ = await inventory.change_members(ctx, caller.actor, group, body.station_ids, add=True)
    return await _group_detail(ctx, str(found.id))


@router.post("/groups/{group}/members/remove", response_model=GroupDetail)
async def remove_members(
    group: str,
    body: Members,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> GroupDetail:
    """Take stations out of the group; 404 (and nothing changes) if any id is unknown."""
    found, _ = await inventory.change_members(ctx, caller.actor, group, body.station_ids, add=False)
    return await _group_detail(ctx, str(found.id))


# --- imports --------------------------------------------------------------------------------


def _columns(columns: dict[str, str]) -> str:
    return "\n".join(f"- `{name}`: {text}" for name, text in columns.items())


_IMPORT_HELP = f"""
The body is CSV (`Content-Type: text/csv`; comma, semicolon or tab separated, UTF-8 with or
without BOM, or Windows-1252) with a header line, or JSON (`application/json`): an array of
objects with the same keys. At most {imports.MAX_BYTES // (1024 * 1024)} MB (413) and
{imports.MAX_ROWS} rows (413).

**`dry_run` is true unless you say `dry_run=false`**: the answer is the report of what would
change, per row: `create`, `update` (with `changes`: field → [old, new]), `unchanged`, or
`error` (with the `line` and what is wrong), and the totals. With `dry_run=false` everything
is applied in one transaction, or nothing at all when any row has an error (422, with the
report). An empty cell leaves the field as it is. Cells that start like a spreadsheet
formula (`=`, `+`, `@`, `-` before text) are refused.
"""


_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


async def _read_body(request: Request) -> tuple[bytes, str]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in ("application/json",):
        kind = "json"
    elif media in ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"):
        kind = "csv"
    else:
        raise HTTPException(
            415, f"send CSV (Content-Type: text/csv) or JSON (application/json), not {media!r}"
        )
    limit = imports.MAX_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the file is over {limit // (1024 * 1024)} MB: split it")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, f"the file is over {limit // (1024 * 1024)} MB: split it")
    if not body.strip():
        raise HTTPException(422, "the body is empty: send the file")
    return bytes(body), kind


async def _import(
    request: Request, ctx: ServiceContext, caller: Caller, kind: str, dry_run: bool
) -> JSONResponse:
    body, media = await _read_body(request)
    columns = imports.STATION_COLUMNS if kind == "stations" else imports.TOKEN_COLUMNS
    try:
        # up to 5 MB of CSV or JSON: decoded and split in a worker thread, so the event loop
        # (which also answers every station) is not held for the parse
        rows = await asyncio.to_thread(imports.parse, body, media, columns)
    except imports.ImportTooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    except imports.ImportRejected as exc:
        raise HTTPException(422, str(exc)) from None
    if not rows:
        raise HTTPException(422, "the file has a header but no rows")
    run = imports.import_stations if kind == "stations" else imports.import_tokens
    try:
        report = await run(ctx, caller.actor, rows, dry_run)
    except imports.ImportHasErrors as exc:
        return JSONResponse(
            {"error": "invalid_rows", "detail": str(exc), "report": exc.report.as_dict()}, status_code=422
        )
    return JSONResponse(report.as_dict())


@router.post(
    "/import/stations",
    description="Import stations. Columns:\n\n" + _columns(imports.STATION_COLUMNS) + "\n" + _IMPORT_HELP,
    responses={413: {"description": "Too large"}, 415: {"description": "Not CSV or JSON"}},
    openapi_extra=_IMPORT_BODY,
)
async def import_stations(
    request: Request,
    dry_run: bool = Query(True, description="true (default): only report; false: apply."),
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> JSONResponse:
    return await _import(request, ctx, caller, "stations", dry_run)


@router.post(
    "/import/tokens",
    description="Import tokens (keyed by country_code, party_id, uid). Columns:\n\n"
    + _columns(imports.TOKEN_COLUMNS)
    + "\n"
    + _IMPORT_HELP,
    responses={413: {"description": "Too large"}, 415: {"description": "Not CSV or JSON"}},
    openapi_extra=_IMPORT_BODY,
)
async def import_tokens(
    request: Request,
    dry_run: bool = Query(True, description="true (default): only report; false: apply."),
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> JSONResponse:
    return await _import(request, ctx, caller, "tokens", dry_run)
