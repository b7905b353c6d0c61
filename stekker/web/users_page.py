"""The console's users (admin only, as `/api/users` is): list, create with a role and a
password, change the role, disable or enable, and end a user's sessions.

Everything goes through `services.users`, which audits it and refuses to demote or disable
the last active admin. "End sessions" revokes the user's login tokens (the console's and
`POST /api/auth/token`'s), not the API tokens made on purpose for scripts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from stekker.api.deps import ADMIN_ONLY, Role
from stekker.services import users
from stekker.web import auth, i18n
from stekker.web.templating import ConsoleRoute, PageNotFound, language, render

router = APIRouter(prefix="/console/users", route_class=ConsoleRoute, include_in_schema=False)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]*$")
MIN_PASSWORD = 8
MAX_PASSWORD = 256
#: the token names of sessions: the console's and the API's login
SESSION_TOKENS = frozenset({auth.TOKEN_NAME, "login"})
Username = Annotated[str, Path(max_length=64, pattern=USERNAME.pattern)]
ROLES = [r.value for r in Role]


async def _page(
    request: Request,
    user: auth.ConsoleUser,
    *,
    error: str | None = None,
    notice: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    found = await users.list_users(auth.get_ctx(request))
    return render(
        request,
        "users.html",
        status_code,
        user=user,
        users=found,
        roles=ROLES,
        error=error,
        notice=notice or _notice(request),
        form=form or {},
    )


def _notice(request: Request) -> str | None:
    done = request.query_params.get("done", "")
    if done in ("created", "role", "disabled", "enabled", "revoked"):
        return i18n.translate(language(request), f"usr_done_{done}")
    return None


@router.get("", response_class=HTMLResponse)
async def user_list(
    request: Request, user: auth.ConsoleUser = Depends(auth.console(*ADMIN_ONLY))
) -> Response:
    return await _page(request, user)


@router.post("", response_class=HTMLResponse)
async def create_user(
    request: Request, user: auth.ConsoleUser = Depends(auth.console(*ADMIN_ONLY))
) -> Response:
    fields = await auth.form(request)
    lang = language(request)
    username = fields.get("username", "").strip()
    display = fields.get("display_name", "").strip() or None
    password = fields.get("password", "")
    role = fields.get("role", "")
    problem = None
    if not USERNAME.match(username):
        problem = "usr_bad_username"
    elif role not in ROLES:
        problem = "usr_bad_role"
    elif not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        problem = "usr_bad_password"
    elif display is not None and (len(display) > 255 or not PRINTABLE.match(display)):
        problem = "usr_bad_display"
    kept = {k: v for k, v in fields.items() if k != "password"}
    if problem is not None:
        msg = i18n.translate(lang, problem, min=MIN_PASSWORD)
        return await _page(request, user, error=msg, form=kept, status_code=400)
    try:
        await users.create_user(auth.get_ctx(request), user.actor, username, password, Role(role), display)
    except users.UserConflict:
        msg = i18n.translate(lang, "usr_exists", name=username.lower())
        return await _page(request, user, error=msg, form=kept, status_code=409)
    return RedirectResponse("/console/users?done=created", status_code=303)


async def _act(request: Request, user: auth.ConsoleUser, done: str, action: Awaitable[object]) -> Response:
    try:
        await action
    except users.UserNotFound:
        raise PageNotFound() from None
    except (users.UserConflict, users.NotPermitted) as exc:
        msg = i18n.translate(language(request), "adm_refused", detail=str(exc))
        return await _page(request, user, error=msg, status_code=409)
    return RedirectResponse(f"/console/users?done={done}", status_code=303)


@router.post("/{username}/role", response_class=HTMLResponse)
async def change_role(
    request: Request, username: Username, user: auth.ConsoleUser = Depends(auth.console(*ADMIN_ONLY))
) -> Response:
    role = (await auth.form(request)).get("role", "")
    if role not in ROLES:
        msg = i18n.translate(language(request), "usr_bad_role")
        return await _page(request, user, error=msg, status_code=400)
    ctx = auth.get_ctx(request)
    return await _act(request, user, "role", users.set_role(ctx, user.actor, username, Role(role)))


@router.post("/{username}/disable", response_class=HTMLResponse)
async def disable(
    request: Request, username: Username, user: auth.ConsoleUser = Depends(auth.console(*ADMIN_ONLY))
) -> Response:
    ctx = auth.get_ctx(request)
    return await _act(request, user, "disabled", users.set_active(ctx, user.actor, username, False))


@router.post("/{username}/enable", response_class=HTMLResponse)
async def enable(
    request: Request, username: Username, user: auth.ConsoleUser = Depends(auth.console(*ADMIN_ONLY))
) -> Response:
    ctx = auth.get_ctx(request)
    return await _act(request, user, "enabled", users.set_active(ctx, user.actor, username, True))


async def revoke_sessions(request: Request, actor: str, username: str) -> int:
    """Revoke every usable login token of the user; how many."""
    ctx = auth.get_ctx(request)
    now = ctx.now()
    count = 0
    for token in await users.list_tokens(ctx, username):
        usable = token.revoked_at is None and (token.expires_at is None or token.expires_at > now)
        if usable and token.name in SESSION_TOKENS:
            await users.revoke_token(ctx, actor, token.id)
            count += 1
    return count


@router.post("/{username}/sessions/revoke", response_class=HTMLResponse)
async def revoke(
    request: Request, username: Username, user: auth.ConsoleUser = Depends(auth.console(*ADMIN_ONLY))
) -> Response:
    return await _act(request, user, "revoked", revoke_sessions(request, user.actor, username))
