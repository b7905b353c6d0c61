"""`/docs` and `/redoc` reference only this server's own URLs, and those assets are served
from the package, byte for byte the vendored files (the pages work without internet)."""

from __future__ import annotations

import re
from importlib import resources

import httpx
import pytest

from stekker.api.docs_pages import ASSETS

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# every URL an HTML page or its inline script can load: attributes, and the strings the
# Swagger UI initialiser and ReDoc's element are given
URL_IN_HTML = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


def urls_in(html: str) -> list[str]:
    return [a or b for a, b in URL_IN_HTML.findall(html)]


def packaged(name: str) -> bytes:
    return resources.files("stekker.api").joinpath("static", name).read_bytes()


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon-32x32.png"}),
    ],
)
async def test_documentation_page_loads_only_our_own_assets(
    api: httpx.AsyncClient, page: str, expected: set[str]
) -> None:
    response = await api.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    urls = urls_in(response.text)
    assert "/openapi.json" in urls, urls
    for url in urls:  # a path on this server: no scheme, no host, no protocol-relative //cdn
        assert url.startswith("/") and not url.startswith("//"), url
    for host in ("cdn.jsdelivr.net", "fonts.googleapis.com", "fastapi.tiangolo.com", "unpkg.com"):
        assert host not in response.text
    assets = {url.split("?")[0].rsplit("/", 1)[1]: url for url in urls if url.startswith("/docs/assets/")}
    assert set(assets) == expected
    for name, url in assets.items():
        served = await api.get(url)
        assert served.status_code == 200, url
        assert served.headers["content-type"] == ASSETS[name]
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.content == packaged(name)
    openapi = await api.get("/openapi.json")
    assert openapi.status_code == 200 and openapi.json()["info"]["title"]


async def test_swagger_ui_does_not_send_our_api_to_an_outside_validator(api: httpx.AsyncClient) -> None:
    html = (await api.get("/docs")).text
    assert '"validatorUrl": null' in html
    assert "validator.swagger.io" not in html


async def test_oauth2_redirect_page_is_ours(api: httpx.AsyncClient) -> None:
    response = await api.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert all(url.startswith("/") for url in urls_in(response.text))


@pytest.mark.parametrize(
    "path",
    [
        "/docs/assets/NOTICE",  # in the folder, not an asset
        "/docs/assets/LICENSE-redoc.txt",
        "/docs/assets/..%2f..%2fconfig.py",
        "/docs/assets/%2e%2e%2fdocs_pages.py",
        "/docs/assets/swagger-ui-bundle.js.map",
        "/docs/assets/" + "a" * 5000,
        "/docs/assets/swagger-ui.css%00.js",
    ],
)
async def test_anything_but_a_listed_asset_is_not_found(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(path)
    assert response.status_code == 404, (path, response.text[:200])
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "not_found"  # the API's one error schema


async def test_assets_are_read_only(api: httpx.AsyncClient) -> None:
    response = await api.post("/docs/assets/swagger-ui.css", content=b"body{}")
    assert response.status_code == 405
    assert (await api.get("/docs/assets/swagger-ui.css")).content == packaged("swagger-ui.css")
