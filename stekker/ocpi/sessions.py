"""OCPI 2.2.1 Sessions, CPO (sender) interface: an eMSP reads the sessions of its own drivers,
and may send its drivers' charging preferences.

GET list: the sessions whose token belongs to the calling partner (see
`stekker.ocpi.session_objects`), by id, filtered on `last_updated` (date_from inclusive,
date_to exclusive) and paginated. A partner never sees another eMSP's drivers.

PUT charging_preferences (`/{session_id}/charging_preferences` as OCPI 2.2.1 writes it, and
`/{country_code}/{party_id}/{session_id}/charging_preferences` for partners that address our
sessions by our party): the spec says an EVSE without the CHARGING_PREFERENCES_CAPABLE
capability answers HTTP 404 with no ChargingPreferencesResponse; ours do not advertise it
(we do no preference-based smart charging), so that is the answer for a session of the
partner's. Were the capability advertised, a session that has ended, or any preference while
we cannot act on it, is NOT_POSSIBLE. Unknown or another eMSP's sessions: 2001 with HTTP 404.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy import ColumnElement, func, select

from stekker.api.deps import get_ctx
from stekker.db.models import ChargingSession, SessionStatus, Token
from stekker.ocpi import location_objects
from stekker.ocpi.auth import PartnerAuth, registered_partner
from stekker.ocpi.envelope import INVALID_PARAMETERS, OcpiError, ocpi_response
from stekker.ocpi.pagination import PageQuery, page_query, paged_response
from stekker.ocpi.session_objects import (
    ChargingPreferences,
    ChargingPreferencesResponse,
    partner_parties,
    session_objects,
    visible_to,
)
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/ocpi/2.2.1/sessions", tags=["ocpi"])

_SESSION_ID = re.compile(r"^[1-9][0-9]{0,17}$")
_MAX_ID = 2**63 - 1
PREFERENCES_CAPABILITY = "CHARGING_PREFERENCES_CAPABLE"

#: OCPI ids are CiString(36); country codes 2 and party ids 3 characters
_Id = Annotated[str, Path(max_length=36)]
_Country = Annotated[str, Path(min_length=2, max_length=2)]
_Party = Annotated[str, Path(min_length=3, max_length=3)]


def _visible(partner: PartnerAuth, ctx: ServiceContext) -> list[ColumnElement[bool]]:
    parties = partner_parties(partner.country_code, partner.party_id, partner.roles, ctx.settings.party)
    return [ChargingSession.token_id == Token.id, visible_to(partner.id, parties)]


@router.get("", summary="Sessions of the partner's drivers (paginated)")
async def list_sessions(
    request: Request,
    page: PageQuery = Depends(page_query),
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    conditions = _visible(partner, ctx)
    if page.date_from is not None:
        conditions.append(ChargingSession.updated_at >= page.date_from)
    if page.date_to is not None:
        conditions.append(ChargingSession.updated_at < page.date_to)
    async with ctx.db() as db:
        total = (
            await db.execute(
                select(func.count())
                .select_from(ChargingSession)
                .join(Token, ChargingSession.token_id == Token.id)
                .where(*conditions)
            )
        ).scalar_one()
        rows = (
            (
                await db.execute(
                    select(ChargingSession)
                    .join(Token, ChargingSession.token_id == Token.id)
                    .where(*conditions)
                    .order_by(ChargingSession.id)
                    .offset(page.offset)
                    .limit(page.limit)
                )
            )
            .scalars()
            .all()
        )
        objects = await session_objects(db, ctx, rows)
    return paged_response(request, [o.wire() for o in objects], total, page)


def preferences_answer(*, capable: bool, running: bool) -> ChargingPreferencesResponse | None:
    """The answer to a partner's charging preferences for one of its sessions; None: the EVSE
    does not take preferences at all (OCPI: HTTP 404, no response value)."""
    if not capable:
        return None
    # a capable EVSE still cannot act on preferences for a session that ended, nor (until
    # smart charging uses them) for a running one
    del running
    return ChargingPreferencesResponse.NOT_POSSIBLE


async def _preferences(
    ctx: ServiceContext, partner: PartnerAuth, session_id: str, preferences: ChargingPreferences
) -> JSONResponse:
    del preferences  # validated; nothing acts on them yet
    unknown = OcpiError(INVALID_PARAMETERS, f"unknown session {session_id[:36]!r}", http_status=404)
    if not _SESSION_ID.match(session_id) or int(session_id) > _MAX_ID:
        raise unknown
    async with ctx.db() as db:
        session = (
            await db.execute(
                select(ChargingSession)
                .join(Token, ChargingSession.token_id == Token.id)
                .where(ChargingSession.id == int(session_id), *_visible(partner, ctx))
            )
        ).scalar_one_or_none()
        if session is None:
            raise unknown
        running = session.status == SessionStatus.ACTIVE
    answer = preferences_answer(
        capable=PREFERENCES_CAPABILITY in location_objects.CAPABILITIES, running=running
    )
    if answer is None:
        raise OcpiError(
            INVALID_PARAMETERS,
            f"the EVSE of session {session_id} does not take charging preferences "
            f"(it lacks the {PREFERENCES_CAPABILITY} capability)",
            http_status=404,
        )
    return ocpi_response(answer.value)


@router.put("/{session_id}/charging_preferences", summary="Charging preferences for a session")
async def put_preferences(
    session_id: _Id,
    preferences: Annotated[ChargingPreferences, Body()],
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    return await _preferences(ctx, partner, session_id, preferences)


@router.put(
    "/{country_code}/{party_id}/{session_id}/charging_preferences",
    summary="Charging preferences for a session (addressed by our party)",
)
async def put_preferences_by_party(
    country_code: _Country,
    party_id: _Party,
    session_id: _Id,
    preferences: Annotated[ChargingPreferences, Body()],
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    if (country_code.upper(), party_id.upper()) != ctx.settings.party:
        raise OcpiError(
            INVALID_PARAMETERS,
            f"unknown session {session_id!r} of {country_code}/{party_id}",
            http_status=404,
        )
    return await _preferences(ctx, partner, session_id, preferences)
