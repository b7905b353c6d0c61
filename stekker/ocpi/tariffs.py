"""OCPI 2.2.1 Tariffs, CPO (sender) interface: partners read the tariffs we publish (see
`stekker.ocpi.tariff_objects` for which, and in what form), filtered on `last_updated`
(date_from inclusive, date_to exclusive) and paginated, ordered by tariff id."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from stekker.api.deps import get_ctx
from stekker.ocpi.auth import PartnerAuth, registered_partner
from stekker.ocpi.location_objects import parties_of
from stekker.ocpi.pagination import PageQuery, page_query, paged_response
from stekker.ocpi.tariff_objects import published_tariffs, tariff_object
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/ocpi/2.2.1/tariffs", tags=["ocpi"])


@router.get("", summary="Our tariffs in effect (paginated)")
async def list_tariffs(
    request: Request,
    page: PageQuery = Depends(page_query),
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    country, party = ctx.settings.party
    async with ctx.db() as db:
        published = await published_tariffs(
            db, ctx.now(), parties_of(partner.country_code, partner.party_id, partner.roles)
        )
    matching = [
        p
        for p in published
        if (page.date_from is None or p.last_updated >= page.date_from)
        and (page.date_to is None or p.last_updated < page.date_to)
    ]
    items = [
        tariff_object(p, country, party).wire() for p in matching[page.offset : page.offset + page.limit]
    ]
    return paged_response(request, items, len(matching), page)
