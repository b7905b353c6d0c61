"""Sessions and CDRs: lists with filters and paging, a page per session with a chart of
power and energy over time (inline SVG drawn on the server, with a table of the same
numbers), and a page per CDR.

Reading only, for every reading role, as the API allows (`READ`). Sessions are read as
`GET /api/sessions` reads them; CDRs through `services.cdrs`, as `GET /api/cdrs` does.
Paging is by key (the id, newest first), so a deep page costs what the first costs.
A token uid is personal data: the municipality and read-only roles see its pseudonym (p:...),
the same one the API and the export show them (`stekker.services.redaction`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import ColumnElement, func, select

from stekker.api.deps import DRIVER_SUPPORT, READ, Role
from stekker.db.models import ChargingSession, Evse, SessionStatus
from stekker.db.models_tariffs import CdrKind, TariffRecord, TariffVersion
from stekker.domain.metering import SampledValue, session_energy_wh
from stekker.services import cdrs, redaction, tariffs, transactions
from stekker.services.errors import Missing
from stekker.web import auth, charts
from stekker.web.format import HOME
from stekker.web.templating import ConsoleRoute, PageNotFound, is_htmx, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
#: Meter values read for one session's chart (a week of 10-second samples of 3 measurands).
MAX_METER_VALUES = 200_000
_STATION = Annotated[str, Query(max_length=100)]
_DAY = Annotated[str, Query(max_length=10)]
_KEY = Annotated[int | None, Query(ge=1, le=2**53)]
_CDR_UID = r"^[A-Za-z0-9._\-]{1,39}$"


T = TypeVar("T")


class BadFilter(auth.BadForm):
    """A filter the user typed that we cannot read; the page says which."""


def day_start(text: str, name: str, *, next_day: bool = False) -> datetime | None:
    """A `YYYY-MM-DD` day as the UTC moment its local (home) midnight is; None for empty.
    `next_day` gives the end of the day (the next midnight), for an inclusive "to"."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadFilter(f"{name}: write a date as YYYY-MM-DD, got {text!r}") from None
    if next_day:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), HOME).astimezone(UTC)


async def masked_token(request: Request, uid: str | None, role: Role) -> str | None:
    """The token uid as this role may see it (`stekker.services.redaction`): as it is for the
    roles that run the network or help drivers, its pseudonym (p:...) for the others."""
    if uid is None:
        return None
    return (await redaction.redactor_for(auth.get_ctx(request), role)).uid(uid)


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    station_id: str
    evse_number: int
    connector_number: int
    status: str
    start_time: datetime
    stop_time: datetime | None
    energy_wh: int | None
    token: str | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: list[T]
    total: int | None
    first_key: Any
    last_key: Any
    has_next: bool
    has_previous: bool


def _energy(s: ChargingSession) -> int | None:
    if s.status == SessionStatus.ACTIVE:
        return session_energy_wh(s.meter_start_wh, s.meter_last_wh)
    return s.energy_wh


def _session_filters(
    station: str, status: str, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if station:
        where.append(func.lower(ChargingSession.station_id).contains(station.lower(), autoescape=True))
    if status:
        where.append(ChargingSession.status == status)
    if since is not None:
        where.append(ChargingSession.start_time >= since)
    if until is not None:
        where.append(ChargingSession.start_time < until)
    return where


async def session_page(
    request: Request,
    role: Role,
    *,
    station: str,
    status: str,
    since: datetime | None,
    until: datetime | None,
    before: int | None,
    after: int | None,
) -> Page[SessionRow]:
    """Newest first; `before` continues to older sessions, `after` goes back to newer ones."""
    where = _session_filters(station, status, since, until)
    query = select(ChargingSession).where(*where)
    if after is not None:
        query = query.where(ChargingSession.id > after).order_by(ChargingSession.id)
    else:
        query = query.order_by(ChargingSession.id.desc())
        if before is not None:
            query = query.where(ChargingSession.id < before)
    async with auth.get_ctx(request).db() as db:
        found = list((await db.execute(query.limit(PAGE_SIZE + 1))).scalars())
        total = (
            await db.execute(select(func.count()).select_from(ChargingSession).where(*where))
        ).scalar_one()
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    if after is not None:
        found.reverse()
    rows = [
        SessionRow(
            s.id,
            s.station_id,
            s.evse_number,
            s.connector_number,
            s.status,
            s.start_time,
            s.stop_time,
            _energy(s),
            await masked_token(request, s.token_uid, role),
        )
        for s in found
    ]
    return Page(
        rows=rows,
        total=int(total),
        first_key=rows[0].id if rows else None,
        last_key=rows[-1].id if rows else None,
        has_next=more if after is None else True,
        has_previous=(before is not None) or (after is not None and more),
    )


@router.get("/console/sessions", response_class=HTMLResponse)
async def sessions(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
    station: _STATION = "",
    status: Annotated[Literal["", "active", "completed"], Query()] = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: _DAY = "",
    before: _KEY = None,
    after: _KEY = None,
) -> Response:
    since = day_start(from_.strip(), "from")
    until = day_start(to.strip(), "to", next_day=True)
    page = await session_page(
        request,
        user.role,
        station=station.strip(),
        status=status,
        since=since,
        until=until,
        before=before,
        after=after,
    )
    return render(
        request,
        "sessions.html",
        user=user,
        page=page,
        station=station,
        status=status,
        from_=from_,
        to=to,
    )


async def _meter_samples(request: Request, session_id: int) -> list[SampledValue]:
    return [
        SampledValue(
            timestamp=m.timestamp,
            value=m.value,
            measurand=m.measurand,
            phase=m.phase,
            unit=m.unit,
            context=m.context,
            location=m.location,
            format=m.format,
        )
        for m in await transactions.meter_values_of(auth.get_ctx(request), session_id, MAX_METER_VALUES)
    ]


@router.get("/console/sessions/{session_id}", response_class=HTMLResponse)
async def session_detail(
    request: Request,
    session_id: Annotated[int, Path(ge=1, le=2**53)],
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
) -> Response:
    ctx = auth.get_ctx(request)
    async with ctx.db() as db:
        found = await db.get(ChargingSession, session_id)
        if found is None:
            raise PageNotFound("session_not_found")
        evse_uid = None
        if found.evse_pk is not None:
            evse_uid = (await db.execute(select(Evse.evse_id).where(Evse.id == found.evse_pk))).scalar()
    samples = charts.samples_of(await _meter_samples(request, session_id), found.meter_start_wh)
    chart = charts.build(samples)
    bills = await cdrs.list_cdrs(ctx, cdrs.CdrFilter(session_id=session_id, limit=100))
    bills.sort(key=lambda c: c.sequence)
    template = "_session_live.html" if is_htmx(request) else "session_detail.html"
    return render(
        request,
        template,
        user=user,
        s=found,
        energy_wh=_energy(found),
        token=await masked_token(request, found.token_uid, user.role),
        evse_uid=evse_uid,
        chart=chart,
        cdrs=bills,
        # who may stop it (after a confirmation on the station's functions pages)
        can_stop=user.role is Role.ADMIN or user.role in DRIVER_SUPPORT,
    )


# --- CDRs ----------------------------------------------------------------------------------------


@router.get("/console/cdrs", response_class=HTMLResponse)
async def cdr_list(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
    station: _STATION = "",
    kind: Annotated[Literal["", "charge", "credit"], Query()] = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: _DAY = "",
    before: _KEY = None,
) -> Response:
    since = day_start(from_.strip(), "from")
    until = day_start(to.strip(), "to", next_day=True)
    if since is not None and until is not None and until <= since:
        raise BadFilter("to: the last day is before the first")
    station = station.strip()
    views = await cdrs.list_cdrs(
        auth.get_ctx(request),
        cdrs.CdrFilter(
            station_id=station or None,
            kind=CdrKind(kind) if kind else None,
            since=since,
            until=until,
            before_id=before,
            limit=PAGE_SIZE + 1,
        ),
    )
    more = len(views) > PAGE_SIZE
    views = views[:PAGE_SIZE]
    page = Page(
        rows=views,
        total=None,
        first_key=views[0].id if views else None,
        last_key=views[-1].id if views else None,
        has_next=more,
        has_previous=before is not None,
    )
    return render(request, "cdrs.html", user=user, page=page, station=station, kind=kind, from_=from_, to=to)


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime | None
    dimensions: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Reading:
    at: datetime | None
    wh: int | None
    kind: str


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def readings_of(items: list[dict[str, Any]]) -> list[Reading]:
    """The meter register readings a CDR rests on (`{"at", "wh", "kind"}`)."""
    out = []
    for item in items:
        if isinstance(item, dict):
            wh = item.get("wh")
            out.append(
                Reading(
                    _moment(item.get("at")), wh if isinstance(wh, int) else None, str(item.get("kind", ""))
                )
            )
    return out


def charging_periods(document: dict[str, Any]) -> list[Period]:
    """The OCPI CDR's charging periods: when each began and its (dimension, volume) pairs."""
    found = document.get("charging_periods")
    out: list[Period] = []
    for item in found if isinstance(found, list) else []:
        if not isinstance(item, dict):
            continue
        start = _moment(item.get("start_date_time", ""))
        dims = [
            (str(d.get("type", "")), str(d.get("volume", "")))
            for d in item.get("dimensions") or []
            if isinstance(d, dict)
        ]
        out.append(Period(start, dims))
    return out


@router.get("/console/cdrs/{cdr_uid}", response_class=HTMLResponse)
async def cdr_detail(
    request: Request,
    cdr_uid: Annotated[str, Path(max_length=39, pattern=_CDR_UID)],
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
) -> Response:
    ctx = auth.get_ctx(request)
    try:
        view = await cdrs.get_cdr(ctx, cdr_uid)
    except Missing:
        raise PageNotFound("cdr_not_found") from None
    tariff = None
    tariff_never_approved = False
    if view.tariff_version_id is not None:
        async with ctx.db() as db:
            tariff = (
                await db.execute(
                    select(TariffRecord.code, TariffRecord.name, TariffVersion.version)
                    .join(TariffVersion, TariffVersion.tariff_id == TariffRecord.id)
                    .where(TariffVersion.id == view.tariff_version_id)
                )
            ).first()
            unapproved = await tariffs.never_approved_versions(db, [view.tariff_version_id])
            tariff_never_approved = view.tariff_version_id in unapproved
    periods = charging_periods(view.data)
    return render(
        request,
        "cdr_detail.html",
        user=user,
        c=view,
        token=await masked_token(request, view.token_uid, user.role),
        tariff=tariff,
        tariff_never_approved=tariff_never_approved,
        periods=periods,
        readings=readings_of(view.readings),
    )
