"""The tile server of the console's map: which URL templates we accept, and the one origin a
page's Content-Security-Policy must allow images from for them. Pure rules, no I/O.

A tile URL is a template in Leaflet's form, `https://tile.openstreetmap.org/{z}/{x}/{y}.png`:
http or https, a host, and `{z}`, `{x}` and `{y}` somewhere. `{s}` in the host picks one of
the server's subdomains (a.tile..., b.tile...), so the page must allow every subdomain of
what follows it. An empty template means no tiles: the console then shows only its own
drawing of the locations (an air-gapped control room).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: OpenStreetMap's own tile server: fine for a console with a handful of users (its tile
#: usage policy asks heavy users to run or rent their own, which the setting allows).
DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_ATTRIBUTION = "© OpenStreetMap contributors"

_PLACEHOLDERS = ("{z}", "{x}", "{y}")
# What may stand in a host: letters, digits, dots, hyphens, and Leaflet's {s}. No quotes,
# spaces, semicolons or commas, so the origin cannot add a directive to the policy.
_HOST = re.compile(r"^(\{s\}\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_SAFE_URL = re.compile(r"^[A-Za-z0-9:/.{}_~%?&=+-]+$")


def check_tile_url(url: str) -> str:
    """The template, stripped, if we can use it (empty: no tiles); ValueError saying what is
    wrong otherwise."""
    url = url.strip()
    if not url:
        return ""
    if not _SAFE_URL.match(url):
        raise ValueError("a tile URL has only letters, digits and / . : { } _ ~ % ? & = + -")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("a tile URL starts with https:// (or http://)")
    host = parts.hostname or ""
    if not _HOST.match(host) or "{s}" in host[3:]:
        raise ValueError("a tile URL names a host ({s}. may stand in front of it)")
    missing = [p for p in _PLACEHOLDERS if p not in url]
    if missing:
        raise ValueError(f"a tile URL has {{z}}, {{x}} and {{y}}; {', '.join(missing)} missing")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError("a tile URL's port is a number") from None
    return url


def csp_source(url: str) -> str | None:
    """The Content-Security-Policy source that allows the tiles of `url` (a checked template):
    its scheme, host and port; `{s}.` becomes `*.`. None for no tiles."""
    url = check_tile_url(url)
    if not url:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").replace("{s}.", "*.")
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}"
