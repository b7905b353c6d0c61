"""OCPI 2.2.1 CDRs, CPO (sender) interface: an eMSP reads the bills of its own drivers.

GET list: the CDRs of sessions whose token belongs to the calling partner (the same rule as
its sessions, `stekker.ocpi.session_objects.visible_to`), credit CDRs included (a correction
is a credit CDR and a new CDR; the partner needs both), by id, filtered on `last_updated`
(the CDR's creation: CDRs never change; date_from inclusive, date_to exclusive), paginated.

The document is the stored OCPI CDR; `cdr_token` gets the driver's eMSP party
(`country_code`, `party_id`, required by OCPI 2.2.1) from the token when the stored
document lacks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from stekker.api.deps import get_ctx
from stekker.db.models import ChargingSession, Token
from stekker.db.models_tariffs import Cdr
from stekker.domain.cdr_document import with_ocpi_times
from stekker.ocpi.auth import PartnerAuth, registered_partner
from stekker.ocpi.pagination import PageQuery, page_query, paged_response
from stekker.ocpi.session_objects import partner_parties, visible_to
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/ocpi/2.2.1/cdrs", tags=["ocpi"])


def cdr_object(document: Mapping[str, Any], token_party: tuple[str, str] | None) -> dict[str, Any]:
    """The CDR as a partner receives it (GET and POST): the stored document, its token's
    party filled in when missing, its DateTimes in the OCPI form (older CDRs were stored with
    microseconds)."""
    result: dict[str, Any] = with_ocpi_times(document)
    token = dict(result.get("cdr_token") or {})
    if token_party is not None:
        token.setdefault("country_code", token_party[0])
        token.setdefault("party_id", token_party[1])
    result["cdr_token"] = token
    return result


@router.get("", summary="CDRs of the partner's drivers (paginated)")
async def list_cdrs(
    request: Request,
    page: PageQuery = Depends(page_query),
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    parties = partner_parties(partner.country_code, partner.party_id, partner.roles, ctx.settings.party)
    conditions = [visible_to(partner.id, parties)]
    if page.date_from is not None:
        conditions.append(Cdr.created_at >= page.date_from)
    if page.date_to is not None:
        conditions.append(Cdr.created_at < page.date_to)

    def joined(query: Any) -> Any:
        return (
            query.join(ChargingSession, Cdr.session_id == ChargingSession.id)
            .join(Token, ChargingSession.token_id == Token.id)
            .where(*conditions)
        )

    async with ctx.db() as db:
        total = (await db.execute(joined(select(func.count()).select_from(Cdr)))).scalar_one()
        rows = (
            await db.execute(
                joined(select(Cdr.data, Token.country_code, Token.party_id))
                .order_by(Cdr.id)
                .offset(page.offset)
                .limit(page.limit)
            )
        ).all()
    items = [cdr_object(data, (country.upper(), party.upper())) for data, country, party in rows]
    return paged_response(request, items, total, page)
