"""Tokens: the cards and app ids that may charge; changing, blocking and retiring them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from stekker.api import paging as api_paging
from stekker.api.deps import CONFIGURE, READ, Caller, allow, get_ctx
from stekker.db.models import Token, TokenStatus
from stekker.services import paging, redaction, tokens
from stekker.services.context import ServiceContext
from stekker.services.tokens import ENERGY_CONTRACT_MAX, ENERGY_CONTRACT_TEXT

router = APIRouter(prefix="/api/tokens", tags=["tokens"])

# Within the databases' 32-bit INTEGER, so a huge number is a 422, not a driver error.
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class TokenUpsert(BaseModel):
    """A token (a driver's card or app id) to create or replace, keyed by country code, party id
    and uid."""

    uid: str = Field(
        min_length=1,
        max_length=36,
        pattern=r"^[\x21-\x7e]+$",
        description="What the station sends as idTag / idToken (1.6 allows 20 characters, 2.0.1 36).",
    )
    type: str = Field(default="RFID", pattern="^(RFID|APP_USER|AD_HOC_USER|OTHER)$")
    contract_id: str | None = Field(default=None, max_length=36)
    visual_number: str | None = Field(default=None, max_length=64)
    issuer: str | None = Field(default=None, max_length=64)
    country_code: str = Field(default="NL", pattern="^[A-Z]{2}$")
    party_id: str = Field(default="STK", pattern="^[A-Z0-9]{3}$")
    group_id: str | None = Field(default=None, max_length=20)
    status: TokenStatus = TokenStatus.ACTIVE
    expires_at: datetime | None = Field(default=None, description="ISO 8601 with an offset.")
    allow_concurrent: bool = False
    energy_supplier: str | None = Field(
        default=None,
        min_length=1,
        max_length=ENERGY_CONTRACT_MAX,
        pattern=ENERGY_CONTRACT_TEXT,
        description="The driver's electricity supplier (OCPI energy_contract.supplier_name); "
        "sessions record it at their start for the per-supplier energy report.",
    )
    energy_contract_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=ENERGY_CONTRACT_MAX,
        pattern=ENERGY_CONTRACT_TEXT,
        description="The driver's contract id at that supplier; needs energy_supplier.",
    )


class TokenPatch(BaseModel):
    """Only the fields given change; `expires_at`, `group_id`, `contract_id`, `visual_number`,
    `energy_supplier` and `energy_contract_id` may be null to clear them."""

    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(default=None, pattern="^(RFID|APP_USER|AD_HOC_USER|OTHER)$")
    status: TokenStatus | None = None
    expires_at: datetime | None = Field(default=None, description="ISO 8601 with an offset.")
    group_id: str | None = Field(default=None, max_length=20)
    contract_id: str | None = Field(default=None, max_length=36)
    visual_number: str | None = Field(default=None, max_length=64)
    energy_supplier: str | None = Field(
        default=None, min_length=1, max_length=ENERGY_CONTRACT_MAX, pattern=ENERGY_CONTRACT_TEXT
    )
    energy_contract_id: str | None = Field(
        default=None, min_length=1, max_length=ENERGY_CONTRACT_MAX, pattern=ENERGY_CONTRACT_TEXT
    )


class TokenOut(TokenUpsert):
    id: int
    list_version: int


def _out(t: Token) -> TokenOut:
    return TokenOut(
        id=t.id,
        uid=t.uid,
        type=t.type,
        contract_id=t.contract_id,
        visual_number=t.visual_number,
        issuer=t.issuer,
        country_code=t.country_code,
        party_id=t.party_id,
        group_id=t.group_id,
        status=TokenStatus(t.status),
        expires_at=t.expires_at,
        allow_concurrent=t.allow_concurrent,
        energy_supplier=t.energy_supplier,
        energy_contract_id=t.energy_contract_id,
        list_version=t.list_version,
    )


@router.put("", response_model=TokenOut)
async def upsert_token(
    body: TokenUpsert, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> TokenOut:
    """Create or replace a token (keyed by country_code, party_id and uid)."""
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise HTTPException(422, "expires_at needs a UTC offset, e.g. 2027-01-01T00:00:00Z")
    token = await tokens.upsert_token(ctx, caller.actor, tokens.TokenInput(**body.model_dump()))
    return _out(token)


@router.get("", response_model=list[TokenOut], responses=api_paging.LINK)
async def list_tokens(
    request: Request,
    response: Response,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*READ)),
    uid: str | None = Query(
        None, max_length=64, description="A token uid, or its pseudonym (p:...), as this role sees it."
    ),
    limit: int = Query(100, ge=1, le=1000),
    after: int | None = api_paging.after_id(),
    offset: int = api_paging.old_offset(),
) -> list[TokenOut]:
    """The token store, by id (oldest first); key-set pages (`after`, `Link` header)."""
    api_paging.position(after, offset)
    query = paging.by_id(select(Token), Token.id, after, newest_first=False, limit=limit).offset(offset)
    if uid is not None:
        query = query.where(Token.uid.in_(await redaction.uids_for(ctx, caller.role, uid)))
    async with ctx.db() as db:
        page = paging.cut(list((await db.execute(query)).scalars()), limit, lambda t: t.id)
    api_paging.link_next(request, response, page)
    return [_out(t) for t in page.rows]


@router.post("/{token_id}/block", response_model=TokenOut)
async def block_token(
    token_id: TokenId, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> TokenOut:
    return _out(await tokens.set_token_status(ctx, caller.actor, token_id, TokenStatus.BLOCKED))


@router.post("/{token_id}/unblock", response_model=TokenOut)
async def unblock_token(
    token_id: TokenId, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> TokenOut:
    return _out(await tokens.set_token_status(ctx, caller.actor, token_id, TokenStatus.ACTIVE))


@router.get("/{token_id}", response_model=TokenOut)
async def get_token(
    token_id: TokenId, ctx: ServiceContext = Depends(get_ctx), _caller: Caller = Depends(allow(*READ))
) -> TokenOut:
    async with ctx.db() as db:
        token = await db.get(Token, token_id)
        if token is None:
            raise HTTPException(404, f"no token with id {token_id}")
        return _out(token)


@router.patch("/{token_id}", response_model=TokenOut)
async def update_token(
    token_id: TokenId,
    body: TokenPatch,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> TokenOut:
    """Change status, expiry, group id, contract or visual number, or type. Connected stations
    get the change in their local list (differential SendLocalList)."""
    changes = body.model_dump(include=body.model_fields_set)
    for name in ("type", "status"):
        if name in changes and changes[name] is None:
            raise HTTPException(422, f"{name} cannot be null")
    if changes.get("expires_at") is not None:
        if changes["expires_at"].tzinfo is None:
            raise HTTPException(422, "expires_at needs a UTC offset, e.g. 2027-01-01T00:00:00Z")
        changes["expires_at"] = changes["expires_at"].astimezone(UTC)  # UTC inside
    return _out(await tokens.update_token(ctx, caller.actor, token_id, changes))


@router.post("/{token_id}/retire", response_model=TokenOut)
async def retire_token(
    token_id: TokenId, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> TokenOut:
    """Retire a token for good: refused everywhere and removed from stations' local lists."""
    return _out(await tokens.set_token_status(ctx, caller.actor, token_id, TokenStatus.RETIRED))
