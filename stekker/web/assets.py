"""The console's static files (CSS, htmx, the live-update script, the map's scripts),
served from the package: a fixed list, so no path from a request ever reaches the file
system."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

from stekker.web.templating import ConsoleRoute, PageNotFound

router = APIRouter(prefix="/assets", route_class=ConsoleRoute, include_in_schema=False)

FILES = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
    "menu.js": "text/javascript; charset=utf-8",
    "tables.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    # the real map: Leaflet and its clustering plug-in, unchanged from npm (NOTICE), and ours
    "leaflet.js": "text/javascript; charset=utf-8",
    "leaflet.css": "text/css; charset=utf-8",
    "leaflet.markercluster-global.js": "text/javascript; charset=utf-8",
    "MarkerCluster.Default.css": "text/css; charset=utf-8",
    "station_map.js": "text/javascript; charset=utf-8",
}
_cache: dict[str, bytes] = {}


def _read(name: str) -> bytes:
    data = _cache.get(name)
    if data is None:
        data = _cache[name] = resources.files("stekker.web").joinpath("static", name).read_bytes()
    return data


@router.get("/{name}")
async def asset(name: str) -> Response:
    media = FILES.get(name)
    if media is None:
        raise PageNotFound(public=True)
    return Response(
        _read(name),
        media_type=media,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
