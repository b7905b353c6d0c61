"""The helpdesk screen (requirement 152): one search box for whatever the driver on the phone
can read out (station id, EVSE id or the short part on the sticker, connector, card number or
its last digits), the matching live session, and one button "stop and release" that, after a
confirmation naming the driver's session it ends, runs the stop-and-release flow and shows
each step as it happens.

Search is `services.helpdesk.search` (as GET /api/helpdesk/search); the flow is
`services.stop_release` on the app's FlowBook (as POST /api/helpdesk/stop-and-release). The
flow page polls a fragment of itself with htmx every half second while the flow runs and
stops polling once it is over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from stekker.api.deps import DRIVER_SUPPORT, Role
from stekker.cluster.redis_link import ClusterMessagingUnavailable
from stekker.db.models import ChargingSession, SessionStatus
from stekker.services import helpdesk
from stekker.services.remote import NotFound
from stekker.services.stop_release import (
    FlowAlreadyRunning,
    FlowBook,
    FlowStatus,
    Target,
    resolve_target,
)
from stekker.web import auth, i18n
from stekker.web.templating import ConsoleRoute, PageNotFound, is_htmx, language, render

router = APIRouter(prefix="/console/helpdesk", route_class=ConsoleRoute, include_in_schema=False)

#: Roles that see whole card numbers (as the API has it); the helpdesk hears the last four.
FULL_UIDS = (Role.ADMIN, Role.OPERATOR)
#: Connector states in which a plug may be held: the helpdesk may release it without a session.
HELD = frozenset({*helpdesk.BUSY_STATUSES, "Occupied", "Preparing", "Finishing", "Faulted"})
POLL = "500ms"


def book_of(request: Request) -> FlowBook:
    book: FlowBook = request.app.state.helpdesk_flows
    return book


@router.get("", response_class=HTMLResponse)
async def helpdesk_page(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*DRIVER_SUPPORT)),
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    found: helpdesk.SearchResult | None = None
    error: str | None = None
    if q.strip():
        try:
            async with auth.get_ctx(request).db() as db:
                found = await helpdesk.search(db, q, limit=20, full_uids=user.role in FULL_UIDS)
        except helpdesk.BadQuery as exc:
            error = i18n.translate(language(request), "hd_bad_query", detail=str(exc))
    return render(
        request,
        "helpdesk.html",
        400 if error else 200,
        user=user,
        q=q,
        found=found,
        error=error,
        held=HELD,
    )


def _number(value: str, name: str, high: int) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= high:
        raise ValueError(f"{name}: a whole number from 1 to {high}")
    return int(value)


def _cluster_unavailable(request: Request, user: auth.ConsoleUser) -> Response:
    """Redis is away in a cluster: the flow can be neither started nor read from here now."""
    msg = i18n.translate(language(request), "hd_cluster_unavailable")
    page = render(request, "error.html", 503, user=user, title_key="error_title", message=msg)
    page.headers["Retry-After"] = "10"
    return page


class ConfirmFirst(Exception):
    """The stop was not confirmed yet: show what it will do first."""


async def _target(request: Request, fields: Mapping[str, str]) -> Target:
    """The connector (and session) the form names; ValueError or NotFound if none."""
    session_id = _number(fields.get("session_id", ""), "session_id", 2**53)
    evse_number = _number(fields.get("evse_number", ""), "evse_number", 1000)
    connector_number = _number(fields.get("connector_number", ""), "connector_number", 100)
    station_id = fields.get("station_id", "").strip() or None
    if station_id is not None and (len(station_id) > 48 or not station_id.isprintable()):
        raise ValueError("station_id: not a station id")
    if session_id is None and (station_id is None or evse_number is None):
        raise ValueError("give a session, or a station and EVSE")
    return await resolve_target(
        auth.get_ctx(request),
        session_id=session_id,
        station_id=None if session_id is not None else station_id,
        evse_number=None if session_id is not None else evse_number,
        connector_number=None if session_id is not None else connector_number,
    )


async def _confirmation(request: Request, user: auth.ConsoleUser, target: Target) -> Response:
    """What stop and release will do, to which driver's session; nothing is sent yet."""
    session: ChargingSession | None = None
    if target.session_id is not None:
        async with auth.get_ctx(request).db() as db:
            session = await db.get(ChargingSession, target.session_id)
    card = None
    if session is not None and session.token_uid:
        uid = session.token_uid
        card = uid if user.role in FULL_UIDS else "****" + uid[-4:]
    running = session is not None and session.status == SessionStatus.ACTIVE
    return render(
        request,
        "helpdesk_confirm.html",
        user=user,
        target=target,
        session=session,
        running=running,
        card=card,
        back="/console/helpdesk?" + urlencode({"q": target.station_id}),
    )


@router.post("/stop", response_class=HTMLResponse)
async def stop_and_release(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*DRIVER_SUPPORT)),
) -> Response:
    """Start the flow for a session, or for a station's EVSE, once confirmed (`confirmed=yes`,
    from the confirmation page); unconfirmed, show the confirmation. Then show the flow."""
    fields = await auth.form(request)
    lang = language(request)
    try:
        target = await _target(request, fields)
        if fields.get("confirmed") != "yes":
            raise ConfirmFirst()
        flow = await book_of(request).launch(auth.get_ctx(request), user.actor, target)
    except ConfirmFirst:
        return await _confirmation(request, user, target)
    except ValueError as exc:
        msg = i18n.translate(lang, "bad_request", detail=str(exc))
        return render(request, "error.html", 400, user=user, title_key="error_title", message=msg)
    except NotFound as exc:
        msg = i18n.translate(lang, "hd_not_found", detail=str(exc))
        return render(request, "error.html", 404, user=user, title_key="not_found", message=msg)
    except FlowAlreadyRunning as exc:
        msg = i18n.translate(lang, "hd_already_running", detail=str(exc))
        return render(request, "error.html", 409, user=user, title_key="error_title", message=msg)
    except ClusterMessagingUnavailable:
        return _cluster_unavailable(request, user)
    return RedirectResponse(f"/console/helpdesk/flows/{flow.id}", status_code=303)


@router.get("/flows/{flow_id}", response_class=HTMLResponse)
async def flow_page(
    request: Request,
    flow_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    user: auth.ConsoleUser = Depends(auth.console(*DRIVER_SUPPORT)),
) -> Response:
    """The flow's steps so far (whichever process runs it); the fragment alone for htmx's
    polling. While the other processes cannot be reached a 503 page says so (htmx keeps the
    last fragment it showed and polls on)."""
    try:
        flow = await book_of(request).find(flow_id)
    except ClusterMessagingUnavailable:
        return _cluster_unavailable(request, user)
    if flow is None:
        raise PageNotFound("hd_flow_gone")
    template = "_helpdesk_flow.html" if is_htmx(request) else "helpdesk_flow.html"
    return render(
        request,
        template,
        user=user,
        flow=flow,
        running=flow.status is FlowStatus.RUNNING,
        poll=POLL,
    )
