"""The public page of one EVSE (`/p/{evse_uid}`): the target of the QR sticker on a station.

No login and no personal data: the EVSE's live status, its plugs as drivers know them ("Type
2, up to 22 kW"), what charging costs now (`services.evse_prices`, as `GET /opendata/evses/
{evse_uid}/price`; money by `stekker.domain.money`), the opening hours of its
location (`stekker.domain.opening_hours`: none stored means always open, as in the open data),
the helpdesk's phone number and a link to report a problem (`stekker.web.public_report`).
The status part refreshes itself every 30 seconds (a plain poll: an open stream per
passer-by would be a resource to defend).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from stekker.db.models import ChargingStation, Connector, Evse, Location
from stekker.domain.opening_hours import opening_hours
from stekker.domain.plugs import kilowatts, max_power_w, plug_name
from stekker.domain.station_status import StationStatus, evse_status
from stekker.services import evse_prices
from stekker.services.errors import Missing
from stekker.web import auth, i18n
from stekker.web.format import keep_amounts_together
from stekker.web.templating import ConsoleRoute, PageNotFound, is_htmx, language, render

router = APIRouter(prefix="/p", route_class=ConsoleRoute, include_in_schema=False)

EVSE_UID = r"^[A-Za-z0-9][A-Za-z0-9*._-]{0,47}$"
EvseUid = Annotated[str, Path(max_length=48, pattern=EVSE_UID)]


@dataclass(frozen=True, slots=True)
class PlugView:
    """A connector as a driver reads it: its number, the plug's name, its power in kW in the
    page's language ("3,7" / "3.7"; None when unknown) and its OCPP status."""

    number: int
    name: str
    kw: str | None
    status: str | None


def _number(value: Decimal, lang: i18n.Lang) -> str:
    text = f"{value:f}"
    return text.replace(".", ",") if lang == "nl" else text


async def _place_and_plugs(
    request: Request, evse_uid: str, lang: i18n.Lang
) -> tuple[Location | None, list[PlugView]]:
    async with auth.get_ctx(request).db() as db:
        location = (
            await db.execute(
                select(Location)
                .join(ChargingStation, ChargingStation.location_id == Location.id)
                .join(Evse, Evse.station_id == ChargingStation.id)
                .where(Evse.evse_id == evse_uid)
            )
        ).scalar_one_or_none()
        connectors = (
            await db.execute(
                select(Connector)
                .join(Evse, Evse.id == Connector.evse_id)
                .where(Evse.evse_id == evse_uid)
                .order_by(Connector.connector_number)
            )
        ).scalars()
        plugs = []
        for c in connectors:
            watts = max_power_w(c.power_type, c.max_voltage, c.max_amperage, c.max_electric_power)
            plugs.append(
                PlugView(
                    number=c.connector_number,
                    name=plug_name(c.standard, lang, c.format),
                    kw=_number(kilowatts(watts), lang) if watts > 0 else None,
                    status=c.status,
                )
            )
    return location, plugs


@router.get("/{evse_uid}", response_class=HTMLResponse)
async def evse_page(request: Request, evse_uid: EvseUid) -> Response:
    ctx = auth.get_ctx(request)
    lang = language(request)
    try:
        price = await evse_prices.evse_price(ctx, evse_uid=evse_uid, lang=lang)
    except Missing:
        raise PageNotFound("evse_not_found", public=True) from None
    location, plugs = await _place_and_plugs(request, evse_uid, lang)
    phone = getattr(ctx.settings, "helpdesk_phone", None)
    template = "_evse_status.html" if is_htmx(request) else "evse.html"
    return render(
        request,
        template,
        public=True,
        p=price,
        plugs=plugs,
        # the one status rule of the console (stekker.domain.station_status): a station that is
        # not connected is Offline, not the last "Available" it said; one charging plug is Charging
        status_now=(
            evse_status(c.status for c in price.connectors).value
            if price.station_online
            else StationStatus.OFFLINE.value
        ),
        price_text=keep_amounts_together(price.text.get(lang) or price.text.get(i18n.DEFAULT, "")),
        upcoming_text=keep_amounts_together(price.upcoming.text.get(lang, "")) if price.upcoming else "",
        location=location,
        hours=opening_hours(location.opening_times if location is not None else None),
        helpdesk_phone=phone if isinstance(phone, str) and phone.strip() else None,
        reported=request.query_params.get("reported") == "1",
    )
