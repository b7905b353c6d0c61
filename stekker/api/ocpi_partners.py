"""Roaming partners (OCPI) for the operator: invite one with a registration token, list them,
grant the parties each may act for, end a connection; and the pushes to them, with the dead
letters to retry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field, field_validator

from stekker.api.deps import CONFIGURE, READ, Caller, allow, get_ctx
from stekker.domain.partner_urls import checked_url
from stekker.ocpi.identity import base_url
from stekker.services import ocpi_outbox, ocpi_partners
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/api/ocpi", tags=["ocpi partners"])

PartnerId = Annotated[int, Path(ge=1, le=2**31 - 1)]
PartyText = Annotated[str, Field(pattern=r"^[A-Za-z]{2}/[A-Za-z0-9]{3}$", examples=["NL/ABC"])]
Parties = Annotated[
    list[PartyText],
    Field(
        min_length=1,
        max_length=ocpi_partners.MAX_PARTIES,
        description="The parties (country code/party id) the partner acts for: its credentials "
        "may name no other, and it reads and changes only these parties' tokens, sessions and CDRs.",
    ),
]


class InviteIn(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=100, description="Who it is, e.g. the eMSP's company.")
    parties: Parties
    role: Literal["EMSP", "HUB", "NAP", "OTHER"] = "EMSP"
    raw_token: bool = Field(default=False, description="The partner sends its token unencoded (not base64).")


@router.post("/partners", status_code=201, summary="Invite an OCPI partner")
async def invite(
    body: InviteIn,
    request: Request,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any]:
    """A registration token (A) for a new partner: give it, with `versions_url`, to the partner's
    integrator; it is shown once. The partner then POSTs its credentials to us, naming only
    the `parties` granted here."""
    partner, token = await ocpi_partners.issue_registration(
        ctx,
        actor=caller.actor,
        name=body.name,
        parties=body.parties,
        role=body.role,
        raw_token=body.raw_token,
    )
    return {
        "partner": partner,
        "registration_token": token,
        "versions_url": f"{base_url(request, ctx.settings)}/ocpi/versions",
    }


class RegisterIn(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=100)
    versions_url: str = Field(
        min_length=8, max_length=255, pattern=r"^https?://", description="The partner's."
    )
    token: str = Field(
        min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$", description="Its registration token A."
    )
    parties: Parties
    role: Literal["EMSP", "HUB", "NAP", "OTHER"] = "EMSP"
    raw_token: bool = False

    _usable_url = field_validator("versions_url")(checked_url)


@router.post("/partners/register", status_code=201, summary="Register with an OCPI partner")
async def register_with(
    body: RegisterIn,
    request: Request,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any]:
    """Register with a partner that gave us its versions URL and a registration token (A): we
    send our credentials and keep the token it answers with. 409 when the partner cannot be
    used (unreachable, no OCPI 2.2.1, refused, a party outside `parties`, an address inside
    our network), with the reason."""
    return await ocpi_partners.register_with(
        ctx,
        actor=caller.actor,
        name=body.name,
        versions_url=body.versions_url,
        token_a=body.token,
        our_versions_url=f"{base_url(request, ctx.settings)}/ocpi/versions",
        parties=body.parties,
        role=body.role,
        raw_token=body.raw_token,
    )


@router.get("/partners", summary="List OCPI partners")
async def list_all(
    ctx: ServiceContext = Depends(get_ctx), _: Caller = Depends(allow(*READ))
) -> list[dict[str, Any]]:
    """Every partner, its status, roles and endpoints (never a token)."""
    return await ocpi_partners.list_partners(ctx)


class PartiesIn(BaseModel):
    model_config = {"extra": "forbid"}

    parties: Parties


@router.put("/partners/{partner_id}/parties", summary="Grant a partner its parties")
async def grant_parties(
    partner_id: PartnerId,
    body: PartiesIn,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any]:
    """Replace the parties a partner may act for. Roles it declared for parties no longer
    granted stop counting at once; its next credentials must stay within the grant."""
    return await ocpi_partners.set_parties(ctx, partner_id, body.parties, caller.actor)


@router.delete("/partners/{partner_id}", summary="Unregister an OCPI partner")
async def unregister(
    partner_id: PartnerId, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> dict[str, str | None]:
    """End the connection: we tell the partner (DELETE of our credentials there) and its token
    stops working at once. `partner_not_told` says why, if the partner could not be told."""
    problem = await ocpi_partners.unregister(ctx, partner_id, caller.actor, tell_partner=True)
    return {"status": "unregistered", "partner_not_told": problem}


@router.get("/outbox", summary="The OCPI push outbox")
async def outbox(
    status: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
    partner_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ctx: ServiceContext = Depends(get_ctx),
    _: Caller = Depends(allow(*READ)),
) -> list[dict[str, Any]]:
    """Pushes to partners, newest first; `status=dead` lists those whose attempts ran out."""
    return await ocpi_outbox.list_items(ctx, status=status, partner_id=partner_id, limit=limit)


@router.post("/outbox/{item_id}/retry", summary="Retry a dead push")
async def retry(
    item_id: Annotated[int, Path(ge=1, le=2**53)],
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any]:
    """Put a dead push back in the queue (after the partner fixed its side)."""
    return await ocpi_outbox.retry(ctx, item_id, caller.actor)
