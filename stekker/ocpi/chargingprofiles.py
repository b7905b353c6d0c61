"""The OCPI 2.2.1 ChargingProfiles module, receiver interface (we are the CPO): an eMSP or a
smart charging service provider limits, reads or frees one of its drivers' running sessions
at `{chargingprofiles}/{session_id}`:

- PUT with a SetChargingProfile: the limit becomes a TxProfile on the station;
- GET `?duration=N&response_url=...`: the station's composite schedule for the session's EVSE
  (the ActiveChargingProfile);
- DELETE `?response_url=...`: the partner's profile is cleared.

Like Commands, the answer comes at once (a ChargingProfileResponse with `timeout`: our station
call timeout plus a margin), the station is called in a background task, and its answer is
POSTed to `response_url` through the OCPI outbox, which retries until the partner takes it.

Immediate answers: UNKNOWN_SESSION for an id that names no session of ours; REJECTED for a
session of another partner's driver (the spec's own example for REJECTED) or one that is over;
TOO_OFTEN while the same request on the same session still waits for its station (one at a
time per session and kind, in this process). A station that is offline, refuses or does not
answer in time gives the result REJECTED (OCPI's result has no FAILED or TIMEOUT); UNKNOWN
means the station holds no such profile (DELETE) or no schedule (GET). Bad input (a body
that is no SetChargingProfile, a limit with two decimals, a duration out of 1 s..7 days, a
response_url that is not an http(s) URL) is 2001 with HTTP 400.

Each request is audited when taken (`ocpi.chargingprofile.received`) and when its result is
queued (`ocpi.chargingprofile.result`). Background tasks share the Commands module's registry,
so a shutdown cancels them (`stekker.ocpi.commands.stop_running`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.api.deps import get_ctx
from stekker.ocpi import commands as ocpi_commands
from stekker.ocpi.auth import PartnerAuth, registered_partner
from stekker.ocpi.chargingprofile_objects import (
    ChargingProfileResponseType,
    SetChargingProfile,
    response,
    result,
)
from stekker.ocpi.command_objects import Url
from stekker.ocpi.envelope import INVALID_PARAMETERS, OcpiError, ocpi_response
from stekker.ocpi.session_objects import partner_parties
from stekker.services import roaming_profiles as profiles
from stekker.services.audit import audit, record_audit
from stekker.services.context import ServiceContext
from stekker.services.ocpi_outbox import announce, enqueue
from stekker.services.roaming_commands import CommandRefused, Requester, UnknownSession
from stekker.services.roaming_profiles import ProfileOutcome, ProfileResult, ProfileTarget

log = logging.getLogger(__name__)

router = APIRouter(prefix="/ocpi/2.2.1/chargingprofiles", tags=["ocpi"])

#: Longest composite schedule a partner may ask for (our get_composite_schedule's bound).
MAX_DURATION = 7 * 86_400

SessionId = Annotated[
    str, Path(min_length=1, max_length=36, description="Session.id as we sent it (CiString(36))")
]
ResponseUrl = Annotated[
    str, Query(min_length=1, max_length=255, description="Where the result is POSTed (http(s) URL)")
]
Duration = Annotated[int, Query(ge=1, le=MAX_DURATION, description="Seconds of schedule, from now")]

_URL: TypeAdapter[str] = TypeAdapter(Url)

# (session id, request kind) of requests waiting for their station: a second one is TOO_OFTEN
_busy: set[tuple[int, str]] = set()


def _requester(ctx: ServiceContext, partner: PartnerAuth) -> Requester:
    parties = partner_parties(partner.country_code, partner.party_id, partner.roles, ctx.settings.party)
    return Requester(partner.id, partner.name, frozenset(parties))


def _answer(ctx: ServiceContext, kind: ChargingProfileResponseType) -> JSONResponse:
    timeout = math.ceil(ctx.settings.call_timeout) + ocpi_commands.RESULT_MARGIN
    return ocpi_response(response(kind, timeout))


def _response_url(value: str) -> str:
    try:
        return _URL.validate_python(value)
    except ValidationError:
        raise OcpiError(INVALID_PARAMETERS, "response_url: must be an absolute http(s) URL") from None


async def _queue_result(
    ctx: ServiceContext, requester: Requester, target: ProfileTarget, kind: str, request_id: str, url: str,
    outcome: ProfileOutcome,
) -> None:  # fmt: skip
    body = result(outcome)

    async def job(db: AsyncSession) -> None:
        now = ctx.now()
        enqueue(
            db, partner_id=requester.partner_id, kind="chargingprofiles.result",
            key=f"profile:{target.session_id}", method="POST", url=url, body=body, at=now,
        )  # fmt: skip
        audit(
            db, actor=requester.actor, action="ocpi.chargingprofile.result", object_type="session",
            object_id=target.session_id, at=now, result=body["result"], request=kind, request_id=request_id,
            detail=outcome.detail,
        )  # fmt: skip

    try:
        await ctx.write(job)
    except Exception:  # nothing more we can do than say so: the partner's timeout runs out
        log.exception("OCPI charging profile %s %s: result %s not queued", kind, request_id, body["result"])
    else:
        await announce(ctx)  # the outbox's deliverer may run in another process


async def _finish(
    ctx: ServiceContext, requester: Requester, target: ProfileTarget, kind: str, request_id: str, url: str,
    work: Callable[[], Awaitable[ProfileOutcome]],
) -> None:  # fmt: skip
    try:
        async with ctx.limiter("ocpi-chargingprofiles", ocpi_commands.CONCURRENT_COMMANDS):
            try:
                outcome = await work()
            except Exception as exc:  # the partner gets a result whatever went wrong here
                log.exception("OCPI charging profile %s %s failed", kind, request_id)
                outcome = ProfileOutcome(ProfileResult.REJECTED, f"internal error: {exc.__class__.__name__}")
        await _queue_result(ctx, requester, target, kind, request_id, url, outcome)
    finally:
        _busy.discard((target.session_id, kind))


async def _launch(
    ctx: ServiceContext,
    partner: PartnerAuth,
    reference: str,
    kind: str,
    url: str,
    work: Callable[[ProfileTarget, Requester], Awaitable[ProfileOutcome]],
    **detail: Any,
) -> JSONResponse:
    """Check the session, audit the request, call the station in the background, answer."""
    requester = _requester(ctx, partner)
    try:
        target = await profiles.profile_target(ctx, requester, reference)
    except UnknownSession:
        return _answer(ctx, ChargingProfileResponseType.UNKNOWN_SESSION)
    except CommandRefused:
        return _answer(ctx, ChargingProfileResponseType.REJECTED)
    if (target.session_id, kind) in _busy:
        return _answer(ctx, ChargingProfileResponseType.TOO_OFTEN)
    _busy.add((target.session_id, kind))
    request_id = uuid.uuid4().hex
    try:
        await record_audit(
            ctx, actor=requester.actor, action="ocpi.chargingprofile.received", object_type="session",
            object_id=target.session_id, result="accepted", request=kind, request_id=request_id,
            response_url=url, station_id=target.station_id, **detail,
        )  # fmt: skip
    except BaseException:
        _busy.discard((target.session_id, kind))
        raise
    task = asyncio.create_task(
        _finish(ctx, requester, target, kind, request_id, url, lambda: work(target, requester)),
        name=f"ocpi-chargingprofile-{request_id}",
    )
    ocpi_commands.track(task)  # cancelled at shutdown with the commands' calls
    return _answer(ctx, ChargingProfileResponseType.ACCEPTED)


@router.get("/{session_id}", summary="Ask for the limits the station applies to a session")
async def get_active_profile(
    session_id: SessionId,
    duration: Duration,
    response_url: ResponseUrl,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    url = _response_url(response_url)

    async def work(target: ProfileTarget, requester: Requester) -> ProfileOutcome:
        return await profiles.active_profile(ctx, requester, target, duration)

    return await _launch(ctx, partner, session_id, "get", url, work, duration=duration)


@router.put("/{session_id}", summary="Set or replace the limit on a session")
async def put_profile(
    session_id: SessionId,
    body: SetChargingProfile,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    try:
        schedule = body.charging_profile.schedule()
    except ValidationError as exc:  # our neutral schedule's bounds (already checked, kept as a net)
        raise OcpiError(INVALID_PARAMETERS, f"charging_profile: {exc.errors()[0]['msg']}") from None

    async def work(target: ProfileTarget, requester: Requester) -> ProfileOutcome:
        return await profiles.set_profile(ctx, requester, target, schedule)

    return await _launch(
        ctx, partner, session_id, "put", body.response_url, work,
        unit=schedule.unit, periods=len(schedule.periods),
    )  # fmt: skip


@router.delete("/{session_id}", summary="Remove the limit from a session")
async def delete_profile(
    session_id: SessionId,
    response_url: ResponseUrl,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    url = _response_url(response_url)

    async def work(target: ProfileTarget, requester: Requester) -> ProfileOutcome:
        return await profiles.clear_profile(ctx, requester, target)

    return await _launch(ctx, partner, session_id, "delete", url, work)
