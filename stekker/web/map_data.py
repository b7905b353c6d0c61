"""The stations of the console's real map as JSON (`GET /console/map/stations`), with the
same filters as the stations list, so the map shows what the list shows. Read by
static/station_map.js; every text in it is data, the script puts it in the page as text.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from stekker.api.deps import READ
from stekker.web import auth, station_map
from stekker.web.stations import StatusFilter, _filters
from stekker.web.templating import ConsoleRoute, language, status_text

router = APIRouter(prefix="/console/map", route_class=ConsoleRoute, include_in_schema=False)

_Text = Annotated[str, Query(max_length=100)]


@router.get("/stations")
async def stations_json(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
    q: _Text = "",
    location: _Text = "",
    status: Annotated[StatusFilter, Query()] = "",
    group: Annotated[str, Query(max_length=100)] = "",
    location_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> JSONResponse:
    """{"stations": [{id, lat, lon, status, kind, label, place, url}], "truncated": bool}:
    `status` is the derived status (stekker.domain.station_status), `kind` its colour (as the
    badges), `label` the status in the user's language."""
    where = _filters(q.strip(), location.strip(), status, group.strip(), location_id)
    async with auth.get_ctx(request).db() as db:
        found, truncated = await station_map.stations_on_map(db, where)
    lang = language(request)
    body: dict[str, Any] = {
        "stations": [
            {
                "id": s.station_id,
                "lat": s.latitude,
                "lon": s.longitude,
                "status": s.status.value,
                "kind": s.kind,
                "label": status_text(lang, s.status.value),
                "place": s.place,
                "url": f"/console/stations/{quote(s.station_id, safe='')}",
            }
            for s in found
        ],
        "truncated": truncated,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
