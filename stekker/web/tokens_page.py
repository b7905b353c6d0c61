"""Tokens: find, add, block and edit the cards and app ids drivers charge with.

The operator and the helpdesk look tokens up (`DRIVER_SUPPORT`, the menu's roles); changing
one is the operator's (`CONFIGURE`, as `PUT/PATCH /api/tokens` and block/unblock). A search
matches part of the uid, or the last digits of the uid, the printed number or the contract
id (spaces and dashes ignored, as the helpdesk search does). Paging is by key (the id).
Changes go through `services.tokens`, which audits them and updates stations' local lists.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import ColumnElement, and_, func, or_, select

from stekker.api.deps import CONFIGURE, DRIVER_SUPPORT, Role
from stekker.db.models import Token, TokenStatus
from stekker.services import tokens
from stekker.services.errors import ServiceError
from stekker.web import auth, i18n
from stekker.web.templating import ConsoleRoute, PageNotFound, language, render

router = APIRouter(prefix="/console/tokens", route_class=ConsoleRoute, include_in_schema=False)

ROLES = DRIVER_SUPPORT
PAGE_SIZE = 50
MIN_DIGITS = 4
UID = re.compile(r"^[\x21-\x7e]{1,36}$")
TYPES = ("RFID", "APP_USER", "AD_HOC_USER", "OTHER")
STATUSES = tuple(s.value for s in TokenStatus)
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def may_change(role: Role) -> bool:
    return role is Role.ADMIN or role in CONFIGURE


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _bare(column: Any) -> Any:
    """Printed numbers come with spaces and dashes."""
    return func.upper(func.replace(func.replace(func.coalesce(column, ""), " ", ""), "-", ""))


def search_filter(q: str) -> ColumnElement[bool] | None:
    """Part of the uid, or the last digits of the uid, printed number or contract id."""
    q = q.strip()
    if not q:
        return None
    conditions: list[ColumnElement[bool]] = [func.lower(Token.uid).contains(q.lower(), autoescape=True)]
    tail = re.sub(r"[\s\-]+", "", q).upper()
    if len(tail) >= MIN_DIGITS:
        pattern = "%" + _like_escape(tail)
        for column in (Token.uid, Token.visual_number, Token.contract_id):
            conditions.append(_bare(column).like(pattern, escape="\\"))
    return or_(*conditions)


async def find(request: Request, q: str, status: str, after: int | None) -> tuple[list[Token], bool]:
    where: list[ColumnElement[bool]] = []
    found = search_filter(q)
    if found is not None:
        where.append(found)
    if status:
        where.append(Token.status == status)
    if after is not None:
        where.append(Token.id > after)
    query = select(Token).order_by(Token.id).limit(PAGE_SIZE + 1)
    if where:
        query = query.where(and_(*where))
    async with auth.get_ctx(request).db() as db:
        rows = list((await db.execute(query)).scalars())
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


async def _list_page(
    request: Request,
    user: auth.ConsoleUser,
    q: str = "",
    status: str = "",
    after: int | None = None,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows, more = await find(request, q, status, after)
    return render(
        request,
        "tokens.html",
        status_code,
        user=user,
        rows=rows,
        more=more,
        q=q,
        status=status,
        after=after,
        statuses=STATUSES,
        types=TYPES,
        may_change=may_change(user.role),
        form=form or {},
        error=error,
    )


@router.get("", response_class=HTMLResponse)
async def token_list(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*ROLES)),
    q: Annotated[str, Query(max_length=64)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    after: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> Response:
    if status and status not in STATUSES:
        status = ""
    return await _list_page(request, user, q, status, after)


def _optional(fields: dict[str, str], name: str) -> str | None:
    value = fields.get(name, "").strip()
    return value or None


def _refused(request: Request, user: auth.ConsoleUser) -> HTMLResponse:
    lang = language(request)
    role = i18n.translate(lang, f"role_{user.role.value}")
    msg = i18n.translate(lang, "forbidden", role=role)
    return render(request, "error.html", 403, user=user, title_key="forbidden_title", message=msg)


@router.post("", response_class=HTMLResponse)
async def add_token(request: Request, user: auth.ConsoleUser = Depends(auth.console(*ROLES))) -> Response:
    """Add a new token (an existing uid is not overwritten: edit that one instead)."""
    if not may_change(user.role):
        return _refused(request, user)
    fields = await auth.form(request)
    lang = language(request)
    uid = fields.get("uid", "").strip()
    kind = fields.get("type", "RFID")

    async def again(key: str, status_code: int = 400, **values: object) -> HTMLResponse:
        msg = i18n.translate(lang, key, **values)
        return await _list_page(request, user, form=fields, error=msg, status_code=status_code)

    if not UID.match(uid):
        return await again("tok_bad_uid")
    if kind not in TYPES:
        return await again("tok_bad_type")
    contract = _optional(fields, "contract_id")
    visual = _optional(fields, "visual_number")
    if (contract and len(contract) > 36) or (visual and len(visual) > 64):
        return await again("tok_too_long")
    ctx = auth.get_ctx(request)
    async with ctx.db() as db:
        exists = await db.scalar(
            select(Token.id).where(Token.uid == uid, Token.country_code == "NL", Token.party_id == "STK")
        )
    if exists is not None:
        return await again("tok_exists", 409, uid=uid)
    data = tokens.TokenInput(
        uid=uid,
        type=kind,
        contract_id=contract,
        visual_number=visual,
        energy_supplier=_optional(fields, "energy_supplier"),
        energy_contract_id=_optional(fields, "energy_contract_id"),
    )
    try:
        token = await tokens.upsert_token(ctx, user.actor, data)
    except (ServiceError, tokens.TokenError) as exc:
        return await again("adm_refused", detail=str(exc))
    return RedirectResponse(f"/console/tokens/{token.id}?saved=1", status_code=303)


async def _token(request: Request, token_id: int) -> Token:
    async with auth.get_ctx(request).db() as db:
        token = await db.get(Token, token_id)
    if token is None:
        raise PageNotFound("tok_not_found")
    return token


async def _detail(
    request: Request,
    user: auth.ConsoleUser,
    token: Token,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "token.html",
        status_code,
        user=user,
        token=token,
        may_change=may_change(user.role),
        saved=request.query_params.get("saved") == "1",
        error=error,
        form=form,
    )


@router.get("/{token_id}", response_class=HTMLResponse)
async def token_detail(
    request: Request, token_id: TokenId, user: auth.ConsoleUser = Depends(auth.console(*ROLES))
) -> Response:
    return await _detail(request, user, await _token(request, token_id))


@router.post("/{token_id}/edit", response_class=HTMLResponse)
async def edit_token(
    request: Request, token_id: TokenId, user: auth.ConsoleUser = Depends(auth.console(*ROLES))
) -> Response:
    """Change the energy supplier and contract (and contract id, printed number)."""
    if not may_change(user.role):
        return _refused(request, user)
    fields = await auth.form(request)
    token = await _token(request, token_id)
    changes = {
        name: _optional(fields, name)
        for name in ("energy_supplier", "energy_contract_id", "contract_id", "visual_number")
    }
    limits = {"contract_id": 36, "visual_number": 64, "energy_supplier": 64, "energy_contract_id": 64}
    problems = [n for n, v in changes.items() if v is not None and len(v) > limits[n]]
    if problems:
        msg = i18n.translate(language(request), "tok_too_long")
        return await _detail(request, user, token, error=msg, form=fields, status_code=400)
    try:
        await tokens.update_token(auth.get_ctx(request), user.actor, token_id, changes)
    except (ServiceError, tokens.TokenError) as exc:
        msg = i18n.translate(language(request), "adm_refused", detail=str(exc))
        return await _detail(request, user, token, error=msg, form=fields, status_code=400)
    return RedirectResponse(f"/console/tokens/{token_id}?saved=1", status_code=303)


async def _set_status(
    request: Request, user: auth.ConsoleUser, token_id: int, status: TokenStatus
) -> Response:
    if not may_change(user.role):
        return _refused(request, user)
    try:
        await tokens.set_token_status(auth.get_ctx(request), user.actor, token_id, status)
    except tokens.TokenError:
        raise PageNotFound("tok_not_found") from None
    return RedirectResponse(f"/console/tokens/{token_id}?saved=1", status_code=303)


@router.post("/{token_id}/block", response_class=HTMLResponse)
async def block(
    request: Request, token_id: TokenId, user: auth.ConsoleUser = Depends(auth.console(*ROLES))
) -> Response:
    return await _set_status(request, user, token_id, TokenStatus.BLOCKED)


@router.post("/{token_id}/unblock", response_class=HTMLResponse)
async def unblock(
    request: Request, token_id: TokenId, user: auth.ConsoleUser = Depends(auth.console(*ROLES))
) -> Response:
    return await _set_status(request, user, token_id, TokenStatus.ACTIVE)
