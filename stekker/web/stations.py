"""The console's stations: a filtered, paged list with live status and a page per station.

Paging is by key (the station id), not by offset, so page 200 of 10,000 stations costs what
page 1 costs; filters are a substring of the station or EVSE id, a substring of the
location's name, address or city (or one location, from the map), a group, and the
connection state. Above the list, a map of the locations of the filtered stations.

A station's configuration, timeline and remote functions are pages of their own
(`station_actions`), included here under the same prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, selectinload

from stekker.api.deps import READ
from stekker.db.models import (
    ChargingSession,
    ChargingStation,
    Connector,
    Evse,
    Location,
    StationGroup,
    StationGroupMember,
    StatusHistory,
)
from stekker.domain.station_auth import authentication_of
from stekker.domain.station_status import StationStatus
from stekker.services import station_status
from stekker.web import auth, station_actions, station_map
from stekker.web.templating import ConsoleRoute, PageNotFound, is_htmx, render

router = APIRouter(prefix="/console/stations", route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
StatusFilter = Literal["", "online", "offline", "faulted"]
_STATION_ID = r"^[A-Za-z0-9*._:+|@-]{1,48}$"


@dataclass(frozen=True, slots=True)
class EvseState:
    """An EVSE on the list: its public id and its status (stekker.domain.station_status)."""

    evse_id: str | None
    evse_number: int
    status: StationStatus


@dataclass(frozen=True, slots=True)
class StationRow:
    """One line of the list: the station, where it is, its one derived status (Offline when
    not connected) and its EVSEs."""

    station_id: str
    online: bool
    status: StationStatus
    last_seen: object
    location: str | None
    city: str | None
    evses: list[EvseState]
    authentication: str = "password"  # stekker.domain.station_auth: none and missing are a risk


@dataclass(frozen=True, slots=True)
class StationPage:
    rows: list[StationRow]
    total: int
    first_id: str | None
    last_id: str | None
    has_next: bool
    has_previous: bool


def _contains(
    column: ColumnElement[str] | InstrumentedAttribute[str | None], text: str
) -> ColumnElement[bool]:
    return func.lower(column).contains(text.lower(), autoescape=True)


def _filters(
    q: str, location: str, status: StatusFilter, group: str = "", location_id: int | None = None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [ChargingStation.retired_at.is_(None)]
    if group:
        members = (
            select(StationGroupMember.station_id)
            .join(StationGroup, StationGroup.id == StationGroupMember.group_id)
            .where(StationGroup.name == group)
        )
        where.append(ChargingStation.id.in_(members))
    if location_id is not None:
        where.append(ChargingStation.location_id == location_id)
    if q:
        by_evse = select(Evse.station_id).where(_contains(Evse.evse_id, q))
        where.append(or_(_contains(ChargingStation.id, q), ChargingStation.id.in_(by_evse)))
    if location:
        where.append(
            or_(
                _contains(Location.name, location),
                _contains(Location.address, location),
                _contains(Location.city, location),
            )
        )
    if status == "online":
        where.append(ChargingStation.online.is_(True))
    elif status == "offline":
        where.append(ChargingStation.online.is_(False))
    elif status == "faulted":
        faulted = (
            select(Evse.station_id)
            .join(Connector, Connector.evse_id == Evse.id)
            .where(Connector.status == "Faulted")
        )
        where.append(or_(ChargingStation.status == "Faulted", ChargingStation.id.in_(faulted)))
    return where


async def station_page(
    request: Request,
    q: str,
    location: str,
    status: StatusFilter,
    after: str | None,
    before: str | None,
    group: str = "",
    location_id: int | None = None,
) -> StationPage:
    ctx = auth.get_ctx(request)
    where = _filters(q, location, status, group, location_id)
    base = (
        select(
            ChargingStation.id,
            ChargingStation.online,
            ChargingStation.last_seen,
            Location.name,
            Location.city,
            ChargingStation.security_profile,
            ChargingStation.password_hash.is_not(None),
        )
        .outerjoin(Location, Location.id == ChargingStation.location_id)
        .where(and_(*where))
    )
    if before is not None:
        query = base.where(ChargingStation.id < before).order_by(ChargingStation.id.desc())
    else:
        query = base.order_by(ChargingStation.id)
        if after is not None:
            query = query.where(ChargingStation.id > after)
    async with ctx.db() as db:
        found = list((await db.execute(query.limit(PAGE_SIZE + 1))).all())
        more = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        if before is not None:
            found.reverse()
        total = (
            await db.execute(
                select(func.count())
                .select_from(ChargingStation)
                .outerjoin(Location, Location.id == ChargingStation.location_id)
                .where(and_(*where))
            )
        ).scalar_one()
        ids = [r[0] for r in found]
        derived = await station_status.statuses(db, ids)
        evse_rows = (
            (
                await db.execute(
                    select(Evse.station_id, Evse.evse_number, Evse.evse_id)
                    .where(Evse.station_id.in_(ids))
                    .order_by(Evse.station_id, Evse.evse_number)
                )
            ).all()
            if ids
            else []
        )
    evses: dict[str, list[EvseState]] = {}
    for station_id, number, evse_id in evse_rows:
        evse_status = derived[station_id].evses.get(number, StationStatus.UNKNOWN)
        evses.setdefault(station_id, []).append(EvseState(evse_id, number, evse_status))
    rows = [
        StationRow(
            r[0],
            bool(r[1]),
            derived[r[0]].status,
            r[2],
            r[3],
            r[4],
            evses.get(r[0], []),
            authentication_of(r[5], bool(r[6])).value,
        )
        for r in found
    ]
    return StationPage(
        rows=rows,
        total=int(total),
        first_id=ids[0] if ids else None,
        last_id=ids[-1] if ids else None,
        has_next=more if before is None else True,
        has_previous=(after is not None) or (before is not None and more),
    )


_Text = Annotated[str, Query(max_length=100)]
_Key = Annotated[str | None, Query(max_length=48)]


@router.get("", response_class=HTMLResponse)
async def stations(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
    q: _Text = "",
    location: _Text = "",
    status: Annotated[StatusFilter, Query()] = "",
    after: _Key = None,
    before: _Key = None,
    group: Annotated[str, Query(max_length=100)] = "",
    location_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    group = group.strip()
    page = await station_page(request, q.strip(), location.strip(), status, after, before, group, location_id)
    if is_htmx(request):
        return render(request, "_station_results.html", user=user, page=page)
    ctx = auth.get_ctx(request)
    async with ctx.db() as db:
        groups = list(
            (await db.execute(select(StationGroup.name).order_by(StationGroup.name).limit(500))).scalars()
        )
        where = _filters(q.strip(), location.strip(), status, group, location_id)
        found_map = await station_map.locations(db, where)
    tiles = station_map.TileLayer.of(ctx.settings)
    return render(
        request,
        "stations.html",
        user=user,
        page=page,
        q=q,
        location=location,
        status=status,
        group=group,
        groups=groups,
        location_id=location_id,
        map=found_map,
        tiles=tiles,
        img_sources=tiles.img_sources,  # the map's tile server, for images only
    )


@router.get("/{station_id}", response_class=HTMLResponse)
async def station(
    request: Request,
    station_id: Annotated[str, Path(max_length=48, pattern=_STATION_ID)],
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
) -> Response:
    ctx = auth.get_ctx(request)
    async with ctx.db() as db:
        found = (
            await db.execute(
                select(ChargingStation)
                .options(
                    selectinload(ChargingStation.evses).selectinload(Evse.connectors),
                    selectinload(ChargingStation.location),
                )
                .where(ChargingStation.id == station_id)
            )
        ).scalar_one_or_none()
        if found is None:
            raise PageNotFound()
        running = await station_status.charging_states(db, [station_id])
        derived = station_status.of_station(found, found.online, running[station_id])
        history = (
            (
                await db.execute(
                    select(StatusHistory)
                    .where(StatusHistory.station_id == station_id)
                    .order_by(StatusHistory.timestamp.desc())
                    .limit(20)
                )
            )
            .scalars()
            .all()
        )
        sessions = (
            (
                await db.execute(
                    select(ChargingSession)
                    .where(ChargingSession.station_id == station_id)
                    .order_by(ChargingSession.start_time.desc())
                    .limit(10)
                )
            )
            .scalars()
            .all()
        )
    template = "_station_live.html" if is_htmx(request) else "station.html"
    return render(request, template, user=user, s=found, derived=derived, history=history, sessions=sessions)


router.include_router(station_actions.router)
