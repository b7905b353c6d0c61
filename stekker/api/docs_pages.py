"""The operator API's documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), with their
scripts and styles served from the package.

FastAPI's own pages load them from a CDN: without internet (a municipal network, an air-gapped
control room) they stay blank. These are the same pages with every URL our own; the files and
their licences are in `static/` (see `static/NOTICE`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
ASSETS_PATH = "/docs/assets"

#: The files the pages load, by name: a fixed list, so no path from a request reaches the file system.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# The vendored versions (static/NOTICE), in the assets' URLs: an update is not hidden by a cache.
VERSIONS = {"swagger-ui": "5.32.15", "redoc": "2.5.4"}

_cache: dict[str, bytes] = {}

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def with_policy(page: HTMLResponse) -> HTMLResponse:
    """The page with a Content-Security-Policy that lets it load from this server only.

    Offline the pages work without it; it keeps them from even trying an outside address (the
    ReDoc bundle shows Redocly's logo from cdn.redoc.ly, and hides it when it fails: the policy
    makes it fail before a request leaves). The inline start-up script is allowed by its hash,
    ReDoc's search runs in a worker made from a blob, and both inject their styles."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    return page


def _read(name: str) -> bytes:
    data = _cache.get(name)
    if data is None:
        data = _cache[name] = resources.files("stekker.api").joinpath("static", name).read_bytes()
    return data


def _root(request: Request) -> str:
    """The path the application is mounted at behind a proxy (`root_path`), as FastAPI's own
    pages take it into account."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _asset(request: Request, name: str, version: str) -> str:
    return f"{_root(request)}{ASSETS_PATH}/{name}?v={version}"


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    version = VERSIONS["swagger-ui"]
    page = get_swagger_ui_html(
        openapi_url=f"{_root(request)}{request.app.openapi_url}",
        title=f"{request.app.title}: documentation",
        swagger_js_url=_asset(request, "swagger-ui-bundle.js", version),
        swagger_css_url=_asset(request, "swagger-ui.css", version),
        swagger_favicon_url=_asset(request, "favicon-32x32.png", version),
        oauth2_redirect_url=f"{_root(request)}{OAUTH2_REDIRECT_PATH}",
        # validatorUrl null: Swagger UI would otherwise send our OpenAPI document to
        # validator.swagger.io for its badge
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
    )
    return with_policy(page)


@router.get(OAUTH2_REDIRECT_PATH)
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return with_policy(get_swagger_ui_oauth2_redirect_html())


@router.get(REDOC_PATH)
async def redoc(request: Request) -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=f"{_root(request)}{request.app.openapi_url}",
        title=f"{request.app.title}: reference",
        redoc_js_url=_asset(request, "redoc.standalone.js", VERSIONS["redoc"]),
        redoc_favicon_url=_asset(request, "favicon-32x32.png", VERSIONS["swagger-ui"]),
        with_google_fonts=False,  # fonts.googleapis.com: the system's fonts serve as well
    )
    return with_policy(page)


@router.get(ASSETS_PATH + "/{name}")
async def asset(name: str) -> Response:
    media = ASSETS.get(name)
    if media is None:
        raise HTTPException(404, f"no documentation asset {name!r}")
    return Response(
        _read(name),
        media_type=media,
        # the version is in the URL: a day in a cache is safe, and saves 3 MB per visit
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
