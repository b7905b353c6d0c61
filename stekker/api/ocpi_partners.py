"""Roaming partners (OCPI) for the operator: invite one with a registration token, list them,
end a connection."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from stekker.api.deps import CONFIGURE, READ, Caller, allow, get_ctx
from stekker.ocpi.identity import base_url
from stekker.services import ocpi_partners
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/api/ocpi/partners", tags=["ocpi partners"])

PartnerId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class InviteIn(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=100, description="Who it is, e.g. the eMSP's company.")
    role: Literal["EMSP", "HUB", "NAP", "OTHER"] = "EMSP"
    raw_token: bool = Field(default=False, description="The partner sends its token unencoded (not base64).")


@router.post("", status_code=201)
async def invite(
    body: InviteIn,
    request: Request,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any]:
    """A registration token (A) for a new partner: give it, with `versions_url`, to the partner's
    integrator; it is shown once. The partner then POSTs its credentials to us."""
    partner, token = await ocpi_partners.issue_registration(
        ctx, actor=caller.actor, name=body.name, role=body.role, raw_token=body.raw_token
    )
    return {
        "partner": partner,
        "registration_token": token,
        "versions_url": f"{base_url(request, ctx.settings)}/ocpi/versions",
    }


@router.get("")
async def list_all(
    ctx: ServiceContext = Depends(get_ctx), _: Caller = Depends(allow(*READ))
) -> list[dict[str, Any]]:
    """Every partner, its status, roles and endpoints (never a token)."""
    return await ocpi_partners.list_partners(ctx)


@router.delete("/{partner_id}")
async def unregister(
    partner_id: PartnerId, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> dict[str, str]:
    """End the connection on our side: the partner's token stops working at once."""
    await ocpi_partners.unregister(ctx, partner_id, caller.actor)
    return {"status": "unregistered"}
