"""The console's front page and its live stream. The page starts with what waits for the
user's role (`waiting`), each a link to where it is done; the fleet's figures follow."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from stekker.api.deps import READ
from stekker.web import auth, waiting
from stekker.web.live import MAX_CLIENTS, live
from stekker.web.overview import overview
from stekker.web.templating import ConsoleRoute, is_htmx, render

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, user: auth.ConsoleUser = Depends(auth.console(*READ))) -> Response:
    ctx = auth.get_ctx(request)
    data = await overview(ctx)
    todo = await waiting.waiting_for(ctx, user.role)
    template = "_dashboard_tiles.html" if is_htmx(request) else "dashboard.html"
    return render(request, template, user=user, o=data, waiting=todo)


@router.get("/events")
async def events(request: Request, _user: auth.ConsoleUser = Depends(auth.console(*READ))) -> Response:
    """Server-Sent Events: `station` and `session` when such things change (see `live`)."""
    fan_out = live(request)
    if fan_out.clients >= MAX_CLIENTS:
        return Response("too many live connections", status_code=503, headers={"Retry-After": "30"})
    return StreamingResponse(
        fan_out.stream(request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
