"""The OCPI credentials module: the handshake a partner starts with the registration token we
issued, its later credential updates, and its unregistration (OCPI 2.2.1).

A partner's credentials may name only the parties the operator granted it (else 2001, HTTP
403, and nothing is fetched). A URL we cannot or will not call is 2001; a versions URL we
could not read is 3001 with one message whatever went wrong (a partner must not learn our
network from our errors); more than `ocpi_registration_attempts` attempts a minute per
token is HTTP 429 (2000) with Retry-After.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from stekker.api.deps import get_ctx
from stekker.db.models_ocpi import PartnerStatus
from stekker.domain.partner_urls import checked_url
from stekker.ocpi.auth import PartnerAuth, any_partner, candidates, registered_partner
from stekker.ocpi.envelope import (
    CLIENT_ERROR,
    INVALID_PARAMETERS,
    UNABLE_TO_USE_CLIENT_API,
    OcpiError,
    ocpi_response,
)
from stekker.ocpi.identity import base_url
from stekker.services import ocpi_partners
from stekker.services.context import ServiceContext
from stekker.services.errors import ServiceError

router = APIRouter(prefix="/ocpi/2.2.1/credentials", tags=["ocpi"])

_Code2 = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
_Party3 = Annotated[str, Field(pattern=r"^[A-Z0-9]{3}$")]


class BusinessDetails(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    website: str | None = Field(default=None, max_length=255)
    logo: dict[str, object] | None = None


class CredentialsRole(BaseModel):
    role: str = Field(pattern=r"^(CPO|EMSP|HUB|NAP|NSP|OTHER|SCSP)$")
    business_details: BusinessDetails
    party_id: _Party3
    country_code: _Code2


class Credentials(BaseModel):
    """A partner's credentials: the token we call it with, its versions URL, its roles."""

    token: str = Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")
    url: str = Field(min_length=8, max_length=255, pattern=r"^https?://")
    roles: list[CredentialsRole] = Field(min_length=1, max_length=100)

    _usable_url = field_validator("url")(checked_url)


def ours(request: Request, ctx: ServiceContext, token: str) -> dict[str, object]:
    return ocpi_partners.our_credentials(ctx, token, f"{base_url(request, ctx.settings)}/ocpi/versions")


def _presented(request: Request) -> str:
    """The token the partner called with, as it sent it (for GET: it is the token to use)."""
    readings = candidates(request.headers.get("authorization"))
    return readings[0][0] if readings else ""


@router.get("")
async def get_credentials(
    request: Request, ctx: ServiceContext = Depends(get_ctx), _: PartnerAuth = Depends(any_partner)
) -> JSONResponse:
    """Our credentials, with the token the partner uses with us."""
    return ocpi_response(ours(request, ctx, _presented(request)))


async def _accept(
    request: Request, ctx: ServiceContext, partner: PartnerAuth, body: Credentials
) -> JSONResponse:
    theirs = ocpi_partners.TheirCredentials(
        token=body.token,
        versions_url=body.url,
        roles=tuple(role.model_dump(exclude_none=True) for role in body.roles),
    )
    try:
        token = await ocpi_partners.accept_credentials(ctx, partner.id, theirs)
    except ocpi_partners.TooManyAttempts as exc:
        return ocpi_response(
            None,
            status_code=CLIENT_ERROR,
            message=str(exc),
            http_status=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except ocpi_partners.PartyNotGranted as exc:
        raise OcpiError(INVALID_PARAMETERS, str(exc), http_status=403) from None
    except ocpi_partners.PartnerUnreachable as exc:
        raise OcpiError(UNABLE_TO_USE_CLIENT_API, str(exc)) from None
    except ServiceError as exc:
        raise OcpiError(INVALID_PARAMETERS, str(exc)) from None
    return ocpi_response(ours(request, ctx, token))


@router.post("")
async def register(
    request: Request,
    body: Credentials,
    ctx: ServiceContext = Depends(get_ctx),
    partner: PartnerAuth = Depends(any_partner),
) -> JSONResponse:
    """The handshake: with the registration token we issued, send your credentials; the answer
    holds the token to use from now on (the registration token stops working)."""
    if partner.status == PartnerStatus.REGISTERED:
        return ocpi_response(
            None,
            status_code=INVALID_PARAMETERS,
            message="already registered: use PUT to update",
            http_status=405,
        )
    return await _accept(request, ctx, partner, body)


@router.put("")
async def update(
    request: Request,
    body: Credentials,
    ctx: ServiceContext = Depends(get_ctx),
    partner: PartnerAuth = Depends(registered_partner),
) -> JSONResponse:
    """New credentials from a registered partner (a new token or versions URL); we answer with
    a new token of ours."""
    return await _accept(request, ctx, partner, body)


@router.delete("")
async def delete(
    ctx: ServiceContext = Depends(get_ctx), partner: PartnerAuth = Depends(registered_partner)
) -> JSONResponse:
    """Unregister: the token stops working; what was exchanged stays on record."""
    await ocpi_partners.unregister(ctx, partner.id, f"ocpi:{partner.name}")
    return ocpi_response(None)
