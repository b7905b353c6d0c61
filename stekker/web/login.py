"""Logging in and out of the console (see `auth` for how sessions and CSRF work; the login
throttle is the API's, `services.users.login`)."""

from __future__ import annotations

import math
from datetime import timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from stekker.invocation import stekker_command
from stekker.services import users
from stekker.web import auth, i18n
from stekker.web.templating import ConsoleRoute, language, render

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after login: only a console path of this site (no open redirect)."""
    if not target or not target.startswith("/console") or target.startswith("//") or "\\" in target:
        return "/console/"
    if target.startswith("/console/login") or target.startswith("/console/logout"):
        return "/console/"
    return target


def _login_page(request: Request, status_code: int = 200, error: str | None = None) -> HTMLResponse:
    next_url = safe_next(request.query_params.get("next"))
    return render(request, "login.html", status_code, error=error, next_url=next_url, notice=None)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    if await auth.current_user(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    lang = language(request)
    notice = i18n.translate(lang, "logged_out") if request.query_params.get("bye") == "1" else None
    next_url = safe_next(request.query_params.get("next"))
    if not notice and not await users.any_users(auth.get_ctx(request)):
        # the command as it is typed where this server runs (.venv/bin/stekker after make demo)
        notice = i18n.translate(lang, "login_no_users", command=stekker_command())
    return render(request, "login.html", error=None, next_url=next_url, notice=notice)


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request) -> Response:
    await auth.check_csrf(request, request.cookies.get(auth.LOGIN_CSRF_COOKIE))
    fields = await auth.form(request)
    lang = language(request)
    username = fields.get("username", "").strip()[:64]
    password = fields.get("password", "")[:1024]
    next_url = safe_next(fields.get("next"))
    if not username or not password:
        msg = i18n.translate(lang, "login_missing")
        return render(request, "login.html", 400, error=msg, next_url=next_url, notice=None)
    ctx = auth.get_ctx(request)
    address = auth.client_address(request)
    try:
        _user, token, secret = await users.login(
            ctx, username, password, token_name=auth.TOKEN_NAME, address=address
        )
    except users.LoginThrottled as exc:
        seconds = exc.retry_after
        if seconds < 120:
            msg = i18n.translate(lang, "login_wait", seconds=seconds)
        else:
            msg = i18n.translate(lang, "login_locked", minutes=math.ceil(seconds / 60))
        refused = render(request, "login.html", 429, error=msg, next_url=next_url, notice=None)
        refused.headers["Retry-After"] = str(seconds)
        return refused
    except users.AuthFailed as exc:
        if str(exc).endswith("is disabled"):  # only said after the right password
            msg = i18n.translate(lang, "login_disabled")
            return render(request, "login.html", 403, error=msg, next_url=next_url, notice=None)
        msg = i18n.translate(lang, "login_failed")
        return render(request, "login.html", 401, error=msg, next_url=next_url, notice=None)
    response = RedirectResponse(next_url, status_code=303)
    lifetime = timedelta(hours=ctx.settings.login_token_hours)
    response.set_cookie(
        auth.SESSION_COOKIE,
        secret,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=auth.secure_cookies(request),
        path="/",
    )
    response.delete_cookie(auth.LOGIN_CSRF_COOKIE)
    del token
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    user = await auth.current_user(request)
    if user is None:
        return RedirectResponse("/console/login", status_code=303)
    await auth.check_csrf(request, user.csrf_token)
    ctx = auth.get_ctx(request)
    await users.revoke_token(ctx, user.actor, user.token_id, owner_id=user.user_id)
    response = RedirectResponse("/console/login?bye=1", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response
