"""The OCPI 2.2.1 Commands module, receiver interface (we are the CPO): an eMSP POSTs
`{commands}/{command}` to start or stop a session, unlock a connector, or reserve an EVSE.

The answer comes at once: a CommandResponse saying whether we took the command (ACCEPTED),
and how long the eMSP should wait for the result (`timeout`: our station call timeout plus a
margin for delivery). The station is then called in a background task; its answer (or
"offline", or a timeout) becomes a CommandResult POSTed to the request's `response_url`
through the OCPI outbox, which retries until the eMSP takes it.

Errors while we check the command: a body that does not fit the command is 2001 (HTTP 400),
an unknown command 2001 (HTTP 404: no such resource), an unknown location, EVSE or connector
2003 (HTTP 404, as the spec's status code table names START_SESSION). A session that is not
ours is UNKNOWN_SESSION; one of another eMSP's drivers, a token of another party, or a
reservation the partner never made is REJECTED with a message saying why.

Each command is audited when received (`ocpi.command.received`, with its `command_id`) and
when its result is queued (`ocpi.command.result`); once queued, the result is persistent (the
outbox, key `command:<id>`) and is delivered after a restart too. The background task runs in
the process that took the request and is bounded (`_work_budget`): it queues a result, TIMEOUT
at worst, before the eMSP's `timeout` runs out. A process that dies meanwhile queues nothing;
`sweep_unanswered` (a housekeeping chore run by one process at a time, under the lease
`SWEEP_LEASE`) finds such commands once the eMSP's `timeout` has passed and queues a TIMEOUT
result for them, so no eMSP waits for ever. Both paths queue a result only when none is queued
for that command yet.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.api.deps import get_ctx
from stekker.db.models import AuditEntry, ChargingStation, Evse, Location
from stekker.db.models_ocpi import OcpiOutboxItem
from stekker.ocpi.auth import PartnerAuth, registered_partner
from stekker.ocpi.command_objects import (
    REQUESTS,
    CancelReservation,
    CommandResponseType,
    CommandType,
    ReserveNow,
    StartSession,
    StopSession,
    UnlockConnector,
    command_response,
    command_result,
)
from stekker.ocpi.envelope import INVALID_PARAMETERS, UNKNOWN_LOCATION, OcpiError, ocpi_response
from stekker.ocpi.location_objects import evse_uid, load_location, publishable_evses
from stekker.ocpi.token_objects import to_partner_token
from stekker.services import roaming_commands as commands
from stekker.services.audit import audit, record_audit
from stekker.services.context import ServiceContext
from stekker.services.errors import Invalid
from stekker.services.ocpi_outbox import announce, enqueue
from stekker.services.partner_http import current_correlation
from stekker.services.roaming_commands import CommandOutcome, Outcome, Requester

log = logging.getLogger(__name__)

router = APIRouter(prefix="/ocpi/2.2.1/commands", tags=["ocpi"])

#: Seconds on top of the station call timeout before the eMSP may give up on the result:
#: our own bookkeeping and the outbox's first retries towards the eMSP.
RESULT_MARGIN = 30
#: Commands whose station calls run at the same time, per process; more wait their turn.
CONCURRENT_COMMANDS = 200
#: HTTP status of an unknown command (the URL names no resource).
UNKNOWN_COMMAND_HTTP_STATUS = 404

_LOCATION_ID = re.compile(r"^[1-9][0-9]{0,9}$")
_CONNECTOR_ID = re.compile(r"^[1-9][0-9]{0,2}$")
_MAX_ID = 2**31 - 1

# background tasks are held here: the event loop keeps only weak references to tasks
_running: set[asyncio.Task[None]] = set()

M = TypeVar("M", bound=BaseModel)


# ---- the immediate answer ----------------------------------------------------------------------


def _timeout(ctx: ServiceContext) -> int:
    return math.ceil(ctx.settings.call_timeout) + RESULT_MARGIN


def _work_budget(ctx: ServiceContext) -> float:
    """Seconds the background task may take (waiting for its turn included): half the margin
    before the eMSP's timeout, so its result is queued well before a sweep would act."""
    return ctx.settings.call_timeout + RESULT_MARGIN / 2


def _answer(ctx: ServiceContext, result: CommandResponseType, message: str | None = None) -> JSONResponse:
    return ocpi_response(command_response(result, _timeout(ctx), message))


def _requester(partner: PartnerAuth) -> Requester:
    parties = {(c, p) for c, p, _ in partner.roles if c and p}
    if partner.country_code and partner.party_id:
        parties.add((partner.country_code.upper(), partner.party_id.upper()))
    return Requester(partner.id, partner.name, frozenset(parties))


def _command_type(command: str) -> CommandType:
    try:
        return CommandType(command)
    except ValueError:
        shown = command if len(command) <= 40 else command[:40] + "..."
        known = ", ".join(c.value for c in CommandType)
        raise OcpiError(
            INVALID_PARAMETERS,
            f"unknown command {shown!r} (known: {known})",
            http_status=UNKNOWN_COMMAND_HTTP_STATUS,
        ) from None


def _parse(model: type[M], body: dict[str, Any], command: CommandType) -> M:
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise OcpiError(INVALID_PARAMETERS, f"invalid {command.value}: {problems}"[:500]) from None
    return parsed


# ---- where: location, EVSE, connector ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Place:
    """A station, and the EVSE and connector on it when the command names them."""

    station_id: str
    evse_number: int | None
    connector_number: int | None


def _unknown(what: str) -> OcpiError:
    return OcpiError(UNKNOWN_LOCATION, f"unknown {what}", http_status=404)


def _live(location: Location) -> list[tuple[ChargingStation, Evse]]:
    if location.retired_at is not None:
        return []
    return [(s, e) for s, e in publishable_evses(location) if s.retired_at is None]


async def _place(
    ctx: ServiceContext, location_id: str, uid: str | None, connector_id: str | None
) -> _Place | None:
    """The station (and EVSE, connector) named; None when no EVSE is named and the location
    has several stations (we cannot choose for the driver). Unknown: 2003."""
    if not _LOCATION_ID.match(location_id) or int(location_id) > _MAX_ID:
        raise _unknown(f"location {location_id!r}")
    async with ctx.db() as db:
        location = await load_location(db, int(location_id))
    evses = [] if location is None else _live(location)
    if location is None or not evses:
        raise _unknown(f"location {location_id!r}")
    if uid is None:
        stations = {s.id for s, _ in evses}
        return _Place(stations.pop(), None, None) if len(stations) == 1 else None
    wanted = uid.upper()  # CiString: case-insensitive
    for station, evse in evses:
        if evse_uid(station.id, evse.evse_number, evse.evse_id).upper() == wanted:
            break
    else:
        raise _unknown(f"EVSE {uid!r} at location {location_id}")
    if connector_id is None:
        return _Place(station.id, evse.evse_number, None)
    numbers = {c.connector_number for c in evse.connectors}
    if not _CONNECTOR_ID.match(connector_id) or int(connector_id) not in numbers:
        raise _unknown(f"connector {connector_id!r} of EVSE {uid!r}")
    return _Place(station.id, evse.evse_number, int(connector_id))


_SEVERAL_STATIONS = "this location has several charging stations: name the EVSE (evse_uid)"


# ---- the result, later ------------------------------------------------------------------------


async def _finish(
    ctx: ServiceContext,
    partner: Requester,
    command: CommandType,
    command_id: str,
    response_url: str,
    work: Callable[[], Awaitable[CommandOutcome]],
) -> None:
    try:
        async with asyncio.timeout(_work_budget(ctx)):
            async with ctx.limiter("ocpi-commands", CONCURRENT_COMMANDS):
                outcome = await work()
    except TimeoutError:
        outcome = CommandOutcome(Outcome.TIMEOUT, "no answer from the station in time")
    except Exception as exc:  # the eMSP gets a result whatever went wrong here
        log.exception("OCPI command %s %s failed", command.value, command_id)
        outcome = CommandOutcome(Outcome.FAILED, f"internal error: {exc.__class__.__name__}")
    body = command_result(outcome)
    cause = current_correlation()  # the command request's (this task inherited its context)

    async def job(db: AsyncSession) -> None:
        now = ctx.now()
        if await _result_queued(db, partner.partner_id, command_id):
            return  # a sweep gave up on this command already (this process was very late)
        enqueue(
            db, partner_id=partner.partner_id, kind="commands.result", key=f"command:{command_id}",
            method="POST", url=response_url, body=body, at=now, correlation_id=cause,
        )  # fmt: skip
        audit(
            db, actor=partner.actor, action="ocpi.command.result", object_type="ocpi_partner",
            object_id=partner.partner_id, at=now, result=body["result"], command=command.value,
            command_id=command_id, detail=outcome.detail,
        )  # fmt: skip

    try:
        await ctx.write(job)
    except Exception:  # nothing more we can do than say so: the eMSP's timeout runs out
        log.exception("OCPI command %s %s: result %s not queued", command.value, command_id, body["result"])
    else:
        await announce(ctx)  # the outbox's deliverer may run in another process


async def _launch(
    ctx: ServiceContext,
    partner: Requester,
    command: CommandType,
    response_url: str,
    work: Callable[[], Awaitable[CommandOutcome]],
    **detail: Any,
) -> JSONResponse:
    """Audit the command, start its station call in the background, answer ACCEPTED."""
    command_id = uuid.uuid4().hex
    await record_audit(
        ctx, actor=partner.actor, action="ocpi.command.received", object_type="ocpi_partner",
        object_id=partner.partner_id, result="accepted", command=command.value, command_id=command_id,
        response_url=response_url, **detail,
    )  # fmt: skip
    task = asyncio.create_task(
        _finish(ctx, partner, command, command_id, response_url, work), name=f"ocpi-command-{command_id}"
    )
    track(task)
    return _answer(ctx, CommandResponseType.ACCEPTED)


async def _result_queued(db: AsyncSession, partner_id: int, command_id: str) -> bool:
    query = select(OcpiOutboxItem.id).where(
        OcpiOutboxItem.partner_id == partner_id, OcpiOutboxItem.key == f"command:{command_id}"
    )
    return (await db.execute(query.limit(1))).first() is not None


# ---- commands whose process died ----------------------------------------------------------------

#: The lease under which one process of the cluster runs `sweep_unanswered`.
SWEEP_LEASE = "ocpi-command-sweep"
#: How far back the sweep looks: a command older than this is the eMSP's own business.
SWEEP_HORIZON = timedelta(hours=24)
_SWEEP_BATCH = 5_000


async def sweep_unanswered(ctx: ServiceContext) -> int:
    """Queue a TIMEOUT result for every command received at least the eMSP's `timeout` ago
    (within `SWEEP_HORIZON`) that has none queued: its process died before the station
    answered. Returns how many. Run by one process at a time (lease `SWEEP_LEASE`); a second
    runner at once would find the results queued by the first, bar a race of milliseconds."""
    now = ctx.now()
    due = now - timedelta(seconds=_timeout(ctx))
    async with ctx.db() as db:
        received = (
            (
                await db.execute(
                    select(AuditEntry)
                    .where(
                        AuditEntry.action == "ocpi.command.received",
                        AuditEntry.occurred_at <= due,
                        AuditEntry.occurred_at > now - SWEEP_HORIZON,
                    )
                    .order_by(AuditEntry.id)
                    .limit(_SWEEP_BATCH)
                )
            )
            .scalars()
            .all()
        )
        candidates: dict[str, AuditEntry] = {}
        for entry in received:
            command_id, url = (entry.detail or {}).get("command_id"), (entry.detail or {}).get("response_url")
            if isinstance(command_id, str) and isinstance(url, str) and entry.object_id.isdigit():
                candidates[f"command:{command_id}"] = entry
        if not candidates:
            return 0
        queued = set(
            (
                await db.execute(select(OcpiOutboxItem.key).where(OcpiOutboxItem.key.in_(list(candidates))))
            ).scalars()
        )
    swept = 0
    for key, entry in candidates.items():
        if key in queued:
            continue
        try:
            swept += await _give_up(ctx, entry)
        except Exception:  # one partner's trouble (gone since) must not stop the others
            log.exception("OCPI command sweep: no result queued for %s", key)
    return swept


async def _give_up(ctx: ServiceContext, received: AuditEntry) -> int:
    detail = received.detail
    command_id, url = str(detail["command_id"]), str(detail["response_url"])
    partner_id = int(received.object_id)
    body = command_result(
        CommandOutcome(
            Outcome.TIMEOUT, "no answer: the process handling the command stopped before the station answered"
        )
    )

    async def job(db: AsyncSession) -> int:
        if await _result_queued(db, partner_id, command_id):
            return 0
        now = ctx.now()
        enqueue(
            db, partner_id=partner_id, kind="commands.result", key=f"command:{command_id}",
            method="POST", url=url, body=body, at=now,
        )  # fmt: skip
        audit(
            db, actor="ocpi", action="ocpi.command.result", object_type="ocpi_partner",
            object_id=partner_id, at=now, result=body["result"], command=detail.get("command"),
            command_id=command_id, detail="swept: the process handling it stopped", swept=True,
        )  # fmt: skip
        return 1

    count: int = await ctx.write(job)
    if count:
        await announce(ctx)
        log.warning(
            "OCPI command %s %s: its process stopped; TIMEOUT queued", detail.get("command"), command_id
        )
    return count


def track(task: asyncio.Task[None]) -> None:
    """Keep a background station call (a command's, a charging profile's) until it ends, so a
    shutdown cancels it before the database closes (`stop_running`)."""
    _running.add(task)
    task.add_done_callback(_running.discard)


async def stop_running() -> None:
    """Cancel commands still waiting for a station (at shutdown; their results are lost)."""
    tasks = list(_running)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def wait_running() -> None:
    """Wait until every command started so far has queued its result (tests, orderly stop)."""
    while _running:
        await asyncio.gather(*list(_running), return_exceptions=True)


# ---- the endpoint -----------------------------------------------------------------------------

CommandName = Annotated[str, Path(max_length=64, description="CommandType, e.g. START_SESSION")]


@router.post("/{command}", summary="Send a command to one of our stations")
async def post_command(
    command: CommandName,
    body: Annotated[dict[str, Any], Body(description="The command's object: StartSession, StopSession, ...")],
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    kind = _command_type(command)
    request = _parse(REQUESTS[kind], body, kind)
    requester = _requester(partner)
    try:
        if isinstance(request, StartSession):
            return await _start_session(ctx, requester, request)
        if isinstance(request, StopSession):
            return await _stop_session(ctx, requester, request)
        if isinstance(request, UnlockConnector):
            return await _unlock_connector(ctx, requester, request)
        if isinstance(request, ReserveNow):
            return await _reserve_now(ctx, requester, request)
        assert isinstance(request, CancelReservation)
        return await _cancel_reservation(ctx, requester, request)
    except commands.CommandRefused as exc:
        return _answer(ctx, CommandResponseType.REJECTED, str(exc))
    except Invalid as exc:
        raise OcpiError(INVALID_PARAMETERS, f"invalid {kind.value}: {exc}") from None


async def _start_session(ctx: ServiceContext, requester: Requester, request: StartSession) -> JSONResponse:
    place = await _place(ctx, request.location_id, request.evse_uid, request.connector_id)
    if place is None:
        return _answer(ctx, CommandResponseType.REJECTED, _SEVERAL_STATIONS)
    await commands.adopt_token(ctx, requester, to_partner_token(request.token))
    uid = request.token.uid

    async def work() -> CommandOutcome:
        return await commands.start_session(
            ctx, requester, station_id=place.station_id, evse_number=place.evse_number, token_uid=uid
        )

    return await _launch(
        ctx, requester, CommandType.START_SESSION, request.response_url, work,
        station_id=place.station_id, evse_number=place.evse_number, token_uid=uid,
        authorization_reference=request.authorization_reference,
    )  # fmt: skip


async def _stop_session(ctx: ServiceContext, requester: Requester, request: StopSession) -> JSONResponse:
    try:
        session_id = await commands.stoppable_session(ctx, requester, request.session_id)
    except commands.UnknownSession as exc:
        return _answer(ctx, CommandResponseType.UNKNOWN_SESSION, str(exc))

    async def work() -> CommandOutcome:
        return await commands.stop_session(ctx, requester, session_id)

    return await _launch(
        ctx, requester, CommandType.STOP_SESSION, request.response_url, work, session_id=session_id
    )


async def _unlock_connector(
    ctx: ServiceContext, requester: Requester, request: UnlockConnector
) -> JSONResponse:
    place = await _place(ctx, request.location_id, request.evse_uid, request.connector_id)
    assert place is not None and place.evse_number is not None and place.connector_number is not None
    await commands.check_unlock(ctx, requester, place.station_id, place.evse_number)
    evse_number, connector_number = place.evse_number, place.connector_number

    async def work() -> CommandOutcome:
        return await commands.unlock_connector(
            ctx, requester, station_id=place.station_id, evse_number=evse_number,
            connector_number=connector_number,
        )  # fmt: skip

    return await _launch(
        ctx, requester, CommandType.UNLOCK_CONNECTOR, request.response_url, work,
        station_id=place.station_id, evse_number=evse_number, connector_number=connector_number,
    )  # fmt: skip


async def _reserve_now(ctx: ServiceContext, requester: Requester, request: ReserveNow) -> JSONResponse:
    if request.expiry_date <= ctx.now():
        raise Invalid("expiry_date is in the past")
    place = await _place(ctx, request.location_id, request.evse_uid, None)
    if place is None:
        return _answer(ctx, CommandResponseType.REJECTED, _SEVERAL_STATIONS)
    await commands.adopt_token(ctx, requester, to_partner_token(request.token))
    uid, expires_at, reference = request.token.uid, request.expiry_date, request.reservation_id

    async def work() -> CommandOutcome:
        return await commands.reserve_now(
            ctx, requester, station_id=place.station_id, evse_number=place.evse_number, token_uid=uid,
            expires_at=expires_at, reference=reference,
        )  # fmt: skip

    return await _launch(
        ctx, requester, CommandType.RESERVE_NOW, request.response_url, work,
        station_id=place.station_id, evse_number=place.evse_number, token_uid=uid, reservation_id=reference,
    )  # fmt: skip


async def _cancel_reservation(
    ctx: ServiceContext, requester: Requester, request: CancelReservation
) -> JSONResponse:
    reference = request.reservation_id
    try:
        station_id, reservation_id = await commands.reservation_to_cancel(ctx, requester, reference)
    except commands.UnknownReservation as exc:
        return _answer(ctx, CommandResponseType.REJECTED, str(exc))

    async def work() -> CommandOutcome:
        return await commands.cancel_reservation(
            ctx, requester, station_id=station_id, reservation_id=reservation_id, reference=reference
        )

    return await _launch(
        ctx, requester, CommandType.CANCEL_RESERVATION, request.response_url, work,
        station_id=station_id, reservation_id=reference,
    )  # fmt: skip
