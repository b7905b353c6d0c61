"""Sessions: watch them, read their meter values, stop them remotely."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.api import paging as api_paging
from stekker.api.deps import DRIVER_SUPPORT, READ, Caller, allow, get_ctx
from stekker.api.stations import RemoteResult
from stekker.db.models import ChargingSession, RemoteStart, SessionStatus
from stekker.domain.metering import session_energy_wh
from stekker.services import paging, redaction, remote, transactions
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


class SessionOut(BaseModel):
    id: int
    station_id: str
    evse_number: int
    connector_number: int
    transaction_id: str | None
    token_uid: str | None
    auth_status: str
    status: str
    start_time: datetime
    stop_time: datetime | None
    meter_start_wh: int | None
    meter_stop_wh: int | None
    energy_wh: int | None
    stop_reason: str | None
    remote_start_id: int | None
    offline: bool = Field(description="The station ran (part of) it while offline.")
    charging_state: str | None = Field(description="2.0.1: Charging, SuspendedEV, EVConnected, Idle...")
    id_token_type: str | None = Field(description="2.0.1: how the driver identified (ISO14443, eMAID...).")
    started_remotely_by: str | None = Field(description="Who asked the station to start it, if anyone.")
    energy_supplier: str | None = Field(
        default=None, description="The token's electricity supplier when the session started."
    )
    energy_contract_id: str | None = Field(default=None, description="The token's supplier contract id then.")


async def _remote_actors(db: AsyncSession, sessions: list[ChargingSession]) -> dict[int, str]:
    ids = [s.remote_start_id for s in sessions if s.remote_start_id is not None]
    if not ids:
        return {}
    rows = await db.execute(select(RemoteStart.id, RemoteStart.actor).where(RemoteStart.id.in_(ids)))
    return {row.id: row.actor for row in rows}


def _out(s: ChargingSession, actors: dict[int, str]) -> SessionOut:
    energy = s.energy_wh
    if s.status == SessionStatus.ACTIVE:
        energy = session_energy_wh(s.meter_start_wh, s.meter_last_wh)
    return SessionOut(
        id=s.id,
        station_id=s.station_id,
        evse_number=s.evse_number,
        connector_number=s.connector_number,
        transaction_id=s.transaction_id,
        token_uid=s.token_uid,
        auth_status=s.auth_status,
        status=s.status,
        start_time=s.start_time,
        stop_time=s.stop_time,
        meter_start_wh=s.meter_start_wh,
        meter_stop_wh=s.meter_stop_wh,
        energy_wh=energy,
        stop_reason=s.stop_reason,
        remote_start_id=s.remote_start_id,
        offline=s.offline,
        charging_state=s.charging_state,
        id_token_type=s.id_token_type,
        started_remotely_by=None if s.remote_start_id is None else actors.get(s.remote_start_id),
        energy_supplier=s.energy_supplier,
        energy_contract_id=s.energy_contract_id,
    )


@router.get("", response_model=list[SessionOut], responses=api_paging.LINK)
async def list_sessions(
    request: Request,
    response: Response,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*READ)),
    status: SessionStatus | None = None,
    station_id: str | None = None,
    token_uid: str | None = Query(
        None, max_length=64, description="A token uid, or its pseudonym (p:...), as this role sees it."
    ),
    limit: int = Query(100, ge=1, le=1000),
    after: int | None = api_paging.after_id(),
    offset: int = api_paging.old_offset(),
) -> list[SessionOut]:
    """Newest first. Filter by status, station or token; key-set pages (`after`, `Link` header)."""
    api_paging.position(after, offset)
    query = paging.by_id(
        select(ChargingSession), ChargingSession.id, after, newest_first=True, limit=limit
    ).offset(offset)
    if status is not None:
        query = query.where(ChargingSession.status == status)
    if station_id is not None:
        query = query.where(ChargingSession.station_id == station_id)
    if token_uid is not None:
        query = query.where(
            ChargingSession.token_uid.in_(await redaction.uids_for(ctx, caller.role, token_uid))
        )
    async with ctx.db() as db:
        page = paging.cut(list((await db.execute(query)).scalars()), limit, lambda s: s.id)
        actors = await _remote_actors(db, page.rows)
        api_paging.link_next(request, response, page)
        return [_out(s, actors) for s in page.rows]


class RemoteStartOut(BaseModel):
    """A remote start as it stands, to poll after `POST /api/stations/{id}/remote-start` answered
    before the station began the session."""

    id: int
    station_id: str
    evse_number: int | None = Field(description="The EVSE asked for; null: the station chose.")
    token_uid: str
    requested_by: str = Field(description="Who asked (user:NAME, ocpi:PARTNER, ...).")
    requested_at: datetime
    answer: str | None = Field(
        description="The station's answer (Accepted, Rejected), the error of a failed call "
        "(StationTimeout, ...), or null while it has not answered."
    )
    session_id: int | None = Field(description="The session it led to; null until the station begins one.")
    session_url: str | None = Field(description="The session, once it began.")


@router.get("/remote-starts/{remote_start_id}", response_model=RemoteStartOut)
async def get_remote_start(
    remote_start_id: int = Path(ge=1, lt=2**53),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> RemoteStartOut:
    """A remote start and the session it led to: poll it until `session_id` is set. A 1.6
    station's next start for the token on that EVSE within 10 minutes counts as its result; a
    2.0.1 station names the remote start in its TransactionEvent."""
    state = await remote.remote_start_state(ctx, remote_start_id)
    return RemoteStartOut(
        id=state.id,
        station_id=state.station_id,
        evse_number=state.evse_number,
        token_uid=state.token_uid,
        requested_by=state.actor,
        requested_at=state.requested_at,
        answer=state.answer,
        session_id=state.session_id,
        session_url=None if state.session_id is None else f"/api/sessions/{state.session_id}",
    )


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(
    session_id: int, ctx: ServiceContext = Depends(get_ctx), _caller: Caller = Depends(allow(*READ))
) -> SessionOut:
    async with ctx.db() as db:
        session = await db.get(ChargingSession, session_id)
        if session is None:
            raise HTTPException(404, f"no session {session_id}")
        return _out(session, await _remote_actors(db, [session]))


class MeterValueOut(BaseModel):
    id: int = Field(description="The key-set cursor (`after`) of the list.")
    timestamp: datetime
    measurand: str
    value: str
    unit: str | None
    phase: str | None
    context: str | None
    location: str | None


@router.get("/{session_id}/meter-values", response_model=list[MeterValueOut], responses=api_paging.LINK)
async def session_meter_values(
    session_id: int,
    request: Request,
    response: Response,
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
    limit: int = Query(1000, ge=1, le=10000),
    after: int | None = api_paging.after_id(),
) -> list[MeterValueOut]:
    """The session's sampled values, oldest first (by the station's time, then id); key-set
    pages (`after`, `Link` header). 404 for a session that does not exist."""
    async with ctx.db() as db:
        if await db.get(ChargingSession, session_id) is None:
            raise HTTPException(404, f"no session {session_id}")
    rows = await transactions.meter_values_of(ctx, session_id, limit + paging.PEEK, after=after)
    page = paging.cut(rows, limit, lambda m: m.id)
    api_paging.link_next(request, response, page)
    return [
        MeterValueOut(
            id=m.id,
            timestamp=m.timestamp,
            measurand=m.measurand,
            value=m.value,
            unit=m.unit,
            phase=m.phase,
            context=m.context,
            location=m.location,
        )
        for m in page.rows
    ]


@router.post("/{session_id}/remote-stop", response_model=RemoteResult)
async def remote_stop(
    session_id: int,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*DRIVER_SUPPORT)),
) -> RemoteResult:
    """Ask the station to stop the session. 409 if it is not running or the station is offline."""
    outcome = await remote.remote_stop(ctx, caller.actor, session_id)
    return RemoteResult(status=outcome.status, station_id=outcome.station_id, session_id=session_id)
