"""The public page of one EVSE (`/p/{evse_uid}`): the target of the QR sticker on a station.

No login and no personal data: the EVSE's live status, what charging costs now (the same
service logic as `GET /opendata/evses/{evse_uid}/price`, called directly), the opening hours
of its location and the helpdesk's phone number. The status part refreshes itself every 30
seconds (a plain poll: an open stream per passer-by would be a resource to defend).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from stekker.api import prices
from stekker.db.models import ChargingStation, Evse, Location
from stekker.services.errors import Missing
from stekker.web import auth, i18n
from stekker.web.templating import ConsoleRoute, PageNotFound, is_htmx, language, render

router = APIRouter(prefix="/p", route_class=ConsoleRoute, include_in_schema=False)

_EVSE_UID = r"^[A-Za-z0-9][A-Za-z0-9*._-]{0,47}$"


@dataclass(frozen=True, slots=True)
class DayHours:
    weekday: int
    periods: list[tuple[str, str]]


def opening_hours(opening_times: dict[str, Any] | None) -> tuple[bool | None, list[DayHours]]:
    """(always open?, regular hours per weekday) from OCPI `opening_times`; (None, []) if unknown."""
    if not opening_times:
        return None, []
    if opening_times.get("twentyfourseven"):
        return True, []
    days: dict[int, list[tuple[str, str]]] = {}
    for item in opening_times.get("regular_hours") or []:
        if not isinstance(item, dict):
            continue
        day, begin, end = item.get("weekday"), item.get("period_begin"), item.get("period_end")
        if isinstance(day, int) and 1 <= day <= 7 and isinstance(begin, str) and isinstance(end, str):
            days.setdefault(day, []).append((begin[:5], end[:5]))
    return False, [DayHours(d, sorted(p)) for d, p in sorted(days.items())]


@router.get("/{evse_uid}", response_class=HTMLResponse)
async def evse_page(
    request: Request, evse_uid: Annotated[str, Path(max_length=48, pattern=_EVSE_UID)]
) -> Response:
    ctx = auth.get_ctx(request)
    lang = language(request)
    try:
        price = await prices.evse_price(
            evse_uid=evse_uid, ctx=ctx, party=None, supplier=None, lang=lang, connector=None
        )
    except Missing:
        raise PageNotFound("evse_not_found", public=True) from None
    async with ctx.db() as db:
        location = (
            await db.execute(
                select(Location)
                .join(ChargingStation, ChargingStation.location_id == Location.id)
                .join(Evse, Evse.station_id == ChargingStation.id)
                .where(Evse.evse_id == evse_uid)
            )
        ).scalar_one_or_none()
    always, hours = opening_hours(location.opening_times if location is not None else None)
    phone = getattr(ctx.settings, "helpdesk_phone", None)
    template = "_evse_status.html" if is_htmx(request) else "evse.html"
    return render(
        request,
        template,
        public=True,
        p=price,
        price_text=price.text.get(lang) or price.text.get(i18n.DEFAULT, ""),
        location=location,
        always_open=always,
        hours=hours,
        helpdesk_phone=phone if isinstance(phone, str) and phone.strip() else None,
    )
