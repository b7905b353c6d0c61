"""Find a driver's session and stop and release it (requirement 152)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stekker.api.deps import DRIVER_SUPPORT, READ, Caller, Role, allow, get_ctx
from stekker.api.params import IsoDateTime
from stekker.db.models import ChargingStation
from stekker.services import helpdesk, redaction
from stekker.services.context import ServiceContext
from stekker.services.remote import NotFound
from stekker.services.stop_release import Flow, FlowBook, resolve_target

router = APIRouter(prefix="/api/helpdesk", tags=["helpdesk"])

# Roles that see whole card numbers; the others (helpdesk included) see the last four.
_FULL_UIDS = (Role.ADMIN, Role.OPERATOR)
_MAX_WAIT = 60.0


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(422, f"{name} needs a UTC offset, e.g. 2026-01-01T08:00:00Z")
    return value


class ConnectorStateOut(BaseModel):
    evse_number: int
    connector_number: int
    evse_id: str | None = Field(description="The EVSE id printed on the station.")
    status: str | None
    error_code: str | None
    status_at: datetime | None


class StationHitOut(BaseModel):
    station_id: str
    online: bool
    status: str | None
    last_seen: datetime | None
    disconnected_at: datetime | None = Field(description="Since when it is offline (None when online).")
    ocpp_version: str | None
    connectors: list[ConnectorStateOut]
    matched_by: str


class SessionHitOut(BaseModel):
    session_id: int
    status: str
    station_id: str
    station_online: bool
    evse_number: int
    connector_number: int
    evse_id: str | None
    connector_status: str | None = Field(description="The connector's status now.")
    token_uid: str | None = Field(description="The whole card number, for roles that may see it.")
    token_uid_masked: str | None = Field(description="The card number's last four characters.")
    start_time: datetime
    stop_time: datetime | None
    energy_wh: int | None
    stop_reason: str | None
    matched_by: str = Field(description="Which key matched: station id, EVSE id, connector, card...")


class SearchOut(BaseModel):
    query: str
    sessions: list[SessionHitOut] = Field(description="Running sessions first, then the most recent.")
    stations: list[StationHitOut]


@router.get("/search", response_model=SearchOut, summary="Find sessions and stations")
async def search(
    q: str = Query(
        min_length=1,
        max_length=helpdesk.MAX_QUERY,
        description="Station id (or its beginning), EVSE id (whole or the part on the sticker), "
        "connector (STATION/2), or card number (whole or its last 4+ characters), or a card's "
        "pseudonym (p:...).",
    ),
    since: IsoDateTime | None = Query(None, alias="from", description="Sessions running at or after this."),
    until: IsoDateTime | None = Query(None, alias="to", description="Sessions started at or before this."),
    limit: int = Query(20, ge=1, le=helpdesk.MAX_LIMIT),
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*READ)),
) -> SearchOut:
    """Find sessions and stations by whatever the driver can read out."""
    # a pseudonym stands for the card it was made of; the roles that see pseudonyms search by
    # those only (else they could test whether a card number they guess has charged)
    cards = redaction.sees_identifiers(caller.role)
    if q.startswith(redaction.PREFIX):
        uids = await redaction.uids_for(ctx, caller.role, q)
        q, cards = (uids[0], True) if uids else (q, cards)
    async with ctx.db() as db:
        result = await helpdesk.search(
            db,
            q,
            since=_aware(since, "from"),
            until=_aware(until, "to"),
            limit=limit,
            full_uids=_full_uids(caller),
            cards=cards,
        )
    found = SearchOut.model_validate(result, from_attributes=True)
    if not redaction.sees_identifiers(caller.role):
        for hit in found.sessions:  # the pseudonym is this role's handle, not the card's digits
            hit.token_uid_masked = None
    return found


def _full_uids(caller: Caller) -> bool:
    """Whole uids for admin and operator; also for the roles the privacy policy pseudonymises
    (`stekker.api.redaction` replaces them on the way out, so their pseudonyms are the ones
    they see everywhere else); the helpdesk sees the last four characters."""
    return caller.role in _FULL_UIDS or not redaction.sees_identifiers(caller.role)


class TimelineItemOut(BaseModel):
    at: datetime
    kind: str = Field(description="status, session, event, action or message")
    summary: str
    detail: dict[str, Any]


class TimelineOut(BaseModel):
    station_id: str
    since: datetime
    until: datetime
    items: list[TimelineItemOut] = Field(description="Oldest first.")
    truncated: bool = Field(description="A source had more items than the limit; the newest are shown.")


@router.get("/stations/{station_id}/timeline", response_model=TimelineOut)
async def station_timeline(
    station_id: str = Path(min_length=1, max_length=48),
    hours: float = Query(6, gt=0, le=helpdesk.MAX_TIMELINE_HOURS),
    include_messages: bool = Query(False, description="Also the OCPP frames in and out."),
    limit: int = Query(500, ge=1, le=helpdesk.MAX_TIMELINE_ITEMS, description="Per source."),
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*READ)),
) -> TimelineOut:
    """What happened at a station in the last hours, merged and in time order."""
    async with ctx.db() as db:
        if await db.get(ChargingStation, station_id) is None:
            raise NotFound(f"no station {station_id!r}")
        result = await helpdesk.timeline(
            db,
            station_id,
            until=ctx.now(),
            hours=hours,
            include_messages=include_messages,
            limit=limit,
            full_uids=_full_uids(caller),
        )
    return TimelineOut.model_validate(result, from_attributes=True)


class StopReleaseIn(BaseModel):
    """Either a session, or a station and EVSE (the connector's current session is stopped)."""

    model_config = ConfigDict(extra="forbid")

    session_id: int | None = Field(None, ge=1, le=2**53)
    station_id: str | None = Field(None, min_length=1, max_length=48)
    evse_number: int | None = Field(None, ge=1, le=1000)
    connector_number: int | None = Field(None, ge=1, le=100)

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        by_station = self.station_id is not None or self.evse_number is not None
        if self.session_id is not None and by_station:
            raise ValueError("give either session_id, or station_id and evse_number, not both")
        if self.session_id is None and (self.station_id is None or self.evse_number is None):
            raise ValueError("give session_id, or station_id and evse_number")
        return self


class StepOut(BaseModel):
    name: str
    title: str
    status: str = Field(description="pending, running, ok, failed or skipped")
    started_at: datetime | None
    ended_at: datetime | None
    answer: str | None = Field(description="What the station answered, when it was asked something.")
    message: str | None


class FlowOut(BaseModel):
    id: str
    status: str = Field(description="running, released, failed or timed_out")
    outcome: str | None = Field(description="In plain words, once the flow is over.")
    actor: str
    station_id: str
    evse_number: int
    connector_number: int
    session_id: int | None
    started_at: datetime
    ended_at: datetime | None
    time_limit_seconds: float
    steps: list[StepOut]


def _flow_out(flow: Flow) -> FlowOut:
    t = flow.target
    return FlowOut(
        id=flow.id,
        status=flow.status.value,
        outcome=flow.outcome,
        actor=flow.actor,
        station_id=t.station_id,
        evse_number=t.evse_number,
        connector_number=t.connector_number,
        session_id=t.session_id,
        started_at=flow.started_at,
        ended_at=flow.ended_at,
        time_limit_seconds=flow.timing.total,
        steps=[StepOut.model_validate(s, from_attributes=True) for s in flow.steps],
    )


def get_book(request: Request) -> FlowBook:
    book: FlowBook = request.app.state.helpdesk_flows
    return book


@router.post("/stop-and-release", response_model=FlowOut, status_code=status.HTTP_202_ACCEPTED)
async def stop_and_release(
    body: StopReleaseIn,
    wait: float = Query(0, ge=0, le=_MAX_WAIT, description="Seconds to wait for the flow to finish."),
    ctx: ServiceContext = Depends(get_ctx),
    book: FlowBook = Depends(get_book),
    caller: Caller = Depends(allow(*DRIVER_SUPPORT)),
) -> FlowOut:
    """Stop the session and free the plug: remote stop, unlock, and resets only if still stuck.
    Answers at once with the flow; follow it at GET /api/helpdesk/flows/{id}."""
    target = await resolve_target(
        ctx,
        session_id=body.session_id,
        station_id=body.station_id,
        evse_number=body.evse_number,
        connector_number=body.connector_number,
    )
    flow = await book.launch(ctx, caller.actor, target)
    return _flow_out(await book.follow(flow, wait))


@router.get("/flows/{flow_id}", response_model=FlowOut, summary="A stop-and-release flow")
async def get_flow(
    flow_id: str = Path(pattern=r"^[0-9a-f]{32}$", description="The id POST /stop-and-release gave."),
    wait: float = Query(0, ge=0, le=_MAX_WAIT, description="Seconds to wait for the flow to finish."),
    book: FlowBook = Depends(get_book),
    caller: Caller = Depends(allow(*DRIVER_SUPPORT)),
) -> FlowOut:
    """A flow's steps so far, whichever process runs it (flows are kept a while after they end;
    the audit log keeps them for good). A flow whose process stopped reads as failed."""
    flow = await book.find(flow_id)
    if flow is None:
        raise NotFound(f"no stop-and-release flow {flow_id} (flows are kept a while after they end)")
    return _flow_out(await book.follow(flow, wait))
