"""The server's front door, `GET /`: a browser is sent to the console (its login when nobody is
logged in), a program gets the list of what this server offers, so neither meets a bare 404."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from stekker import __version__

router = APIRouter(tags=["meta"])

#: What a program finds here, each with the path it starts at.
OFFERS: dict[str, tuple[str, str]] = {
    "console": ("/console/", "the operators' web console (log in)"),
    "docs": ("/docs", "the operator API, documented and tryable"),
    "openapi": ("/openapi.json", "the operator API's OpenAPI document"),
    "ocpi": ("/ocpi/versions", "OCPI 2.2.1 for roaming partners (needs a partner token)"),
    "opendata": ("/opendata", "open availability and price data, no account needed"),
    "health": ("/health", "liveness of this process"),
}


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",", 1)[0]


@router.get(
    "/",
    summary="What this server offers (a browser is sent to the console)",
    responses={303: {"description": "a browser: to the console"}},
)
async def front_door(request: Request) -> Response:
    if _wants_html(request):
        return RedirectResponse("/console/", status_code=303)
    ocpp_port = getattr(request.app.state, "ocpp_port", None)  # None: the plain listener is off
    body: dict[str, Any] = {
        "name": "Stekker",
        "version": __version__,
        "links": {key: {"href": path, "title": title} for key, (path, title) in OFFERS.items()},
    }
    if ocpp_port:
        body["links"]["ocpp"] = {
            "href": f"ws://{request.url.hostname}:{ocpp_port}/ocpp/{{station_id}}",
            "title": "where charging stations connect (OCPP 1.6J, 2.0.1, 2.1)",
        }
    return JSONResponse(body)
