"""The console's list of users (admin only, as `GET /api/users` is)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from stekker.api.deps import ADMIN_ONLY
from stekker.services import users
from stekker.web import auth
from stekker.web.templating import ConsoleRoute, render

router = APIRouter(prefix="/console/users", route_class=ConsoleRoute, include_in_schema=False)


@router.get("", response_class=HTMLResponse)
async def user_list(
    request: Request, user: auth.ConsoleUser = Depends(auth.console(*ADMIN_ONLY))
) -> Response:
    found = await users.list_users(auth.get_ctx(request))
    return render(request, "users.html", user=user, users=found)
