"""The OCPI 2.2.1 Tokens module, receiver interface (we are the CPO): eMSPs push their drivers'
tokens to `{tokens}/{country_code}/{party_id}/{token_uid}[?type=...]` with PUT and PATCH, and
read back what we hold with GET.

Tokens are client-owned objects: a partner reaches only the parties the operator granted it
(a hub may hold many), and only the tokens it created itself. For another party we answer
HTTP 404 with OCPI status 2001, as the spec allows ("respond with an HTTP 404 status code, this
way blocking client access to objects that do not belong to them"), whether or not such a
token exists; another partner's token of a granted party is unknown (2004) to GET and PATCH,
and 2001 with HTTP 404 to PUT. A body whose party or uid differs from the URL is 2001 (spec:
transport and format, errors). `?type` defaults to RFID for GET and PATCH; on PUT an omitted
type means the body's type, a given one must equal it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from stekker.api.deps import get_ctx
from stekker.ocpi.auth import PartnerAuth, registered_partner
from stekker.ocpi.envelope import INVALID_PARAMETERS, UNKNOWN_TOKEN, OcpiError, ocpi_response
from stekker.ocpi.token_objects import (
    OcpiToken,
    OcpiTokenPatch,
    TokenType,
    patch_changes,
    to_partner_token,
    to_wire,
)
from stekker.services import roaming_tokens
from stekker.services.context import ServiceContext
from stekker.services.errors import Invalid
from stekker.services.roaming_tokens import NotAPartnerToken, PushOutcome, TokenKey, UnknownPartnerToken

router = APIRouter(prefix="/ocpi/2.2.1/tokens", tags=["ocpi"])

#: HTTP status for a party that is not the caller's (see the module docstring).
FOREIGN_PARTY_HTTP_STATUS = 404

CountryCode = Annotated[str, Path(pattern=r"^[A-Za-z]{2}$", description="the eMSP's country code")]
PartyId = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{3}$", description="the eMSP's party id")]
TokenUid = Annotated[
    str, Path(min_length=1, max_length=36, pattern=r"^[\x20-\x7e]+$", description="Token.uid (CiString(36))")
]
TypeQuery = Annotated[TokenType | None, Query(alias="type", description="Token.type; default RFID")]


def _owned_key(
    partner: PartnerAuth, country_code: str, party_id: str, uid: str, token_type: TokenType | None
) -> TokenKey:
    if not partner.owns(country_code, party_id):
        raise OcpiError(
            INVALID_PARAMETERS,
            f"party {country_code.upper()}/{party_id.upper()} is not one of the parties granted to you",
            http_status=FOREIGN_PARTY_HTTP_STATUS,
        )
    return TokenKey(country_code.upper(), party_id.upper(), uid, (token_type or TokenType.RFID).value)


def _invalid(message: str) -> OcpiError:
    return OcpiError(INVALID_PARAMETERS, message)


def _actor(partner: PartnerAuth) -> str:
    return f"ocpi:{partner.name}"


def _answer(outcome: PushOutcome) -> JSONResponse:
    # an out-of-date push is acknowledged (a retry of it would never succeed), and says so
    return ocpi_response(None, message="Success" if outcome.applied else f"Success, {outcome.note}")


@router.get("/{country_code}/{party_id}/{token_uid}", summary="A token as we hold it")
async def get_token(
    country_code: CountryCode,
    party_id: PartyId,
    token_uid: TokenUid,
    token_type: TypeQuery = None,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    key = _owned_key(partner, country_code, party_id, token_uid, token_type)
    try:
        token = await roaming_tokens.get_partner_token(ctx, partner.id, key)
    except UnknownPartnerToken as exc:
        raise OcpiError(UNKNOWN_TOKEN, str(exc), http_status=404) from None
    return ocpi_response(to_wire(token))


@router.put("/{country_code}/{party_id}/{token_uid}", summary="Create or replace a token")
async def put_token(
    country_code: CountryCode,
    party_id: PartyId,
    token_uid: TokenUid,
    body: OcpiToken,
    token_type: TypeQuery = None,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    key = _owned_key(partner, country_code, party_id, token_uid, token_type or body.type)
    if (body.country_code.upper(), body.party_id.upper(), body.uid) != (
        key.country_code,
        key.party_id,
        key.uid,
    ):
        raise _invalid(
            f"the token is {body.country_code}/{body.party_id}/{body.uid} but the URL names "
            f"{country_code}/{party_id}/{token_uid}"
        )
    if body.type.value != key.type:
        raise _invalid(f"the token's type is {body.type.value} but the URL says type={key.type}")
    try:
        outcome = await roaming_tokens.put_partner_token(
            ctx, partner.id, _actor(partner), to_partner_token(body)
        )
    except NotAPartnerToken as exc:
        raise OcpiError(INVALID_PARAMETERS, str(exc), http_status=FOREIGN_PARTY_HTTP_STATUS) from None
    except Invalid as exc:
        raise _invalid(str(exc)) from None
    return _answer(outcome)


@router.patch("/{country_code}/{party_id}/{token_uid}", summary="Change part of a token")
async def patch_token(
    country_code: CountryCode,
    party_id: PartyId,
    token_uid: TokenUid,
    body: OcpiTokenPatch,
    token_type: TypeQuery = None,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    key = _owned_key(partner, country_code, party_id, token_uid, token_type)
    nulled = body.nulled_required()
    if nulled:
        raise _invalid(f"a token cannot be without {', '.join(nulled)}")
    for name, sent, wanted in (
        ("country_code", body.country_code, key.country_code),
        ("party_id", body.party_id, key.party_id),
    ):
        if sent is not None and sent.upper() != wanted:
            raise _invalid(f"{name} {sent} differs from the URL's {wanted}: a PATCH cannot move a token")
    if body.uid is not None and body.uid != key.uid:
        raise _invalid(f"uid {body.uid} differs from the URL's {key.uid}: a PATCH cannot rename a token")
    if body.type is not None and body.type.value != key.type:
        raise _invalid(f"type {body.type.value} differs from the URL's type={key.type}")
    try:
        outcome = await roaming_tokens.patch_partner_token(
            ctx, partner.id, _actor(partner), key, patch_changes(body), body.last_updated
        )
    except UnknownPartnerToken as exc:
        raise OcpiError(UNKNOWN_TOKEN, str(exc), http_status=404) from None
    except Invalid as exc:
        raise _invalid(str(exc)) from None
    return _answer(outcome)
