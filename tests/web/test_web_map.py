"""The real map on the stations list (Leaflet, clustered markers coloured by derived status)
and its fallback, the drawing of the locations, in headless Chromium.

Tests have no internet: the tiles come from a tile server this module starts on loopback
(one PNG for every tile), and "unreachable" is a port nobody listens on. The stations are
rows in the database in the states the derived status knows (charging, available, offline,
faulted), one of them at a location with a hostile name."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.config import Settings
from stekker.db.models import ChargingStation, Connector, Evse, Location
from stekker.db.models_users import Role
from stekker.domain.map_tiles import csp_source
from stekker.services import users
from tests.conftest import make_settings
from tests.web.conftest import PASSWORD, axe_violations, base_url, http_login, login_page, screenshot
from tests.web.language import Vocabulary, visible_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Words on the page that are data, not text: the user's name and the stations' ids.
DATA_WORDS = {"operator", "MAP"}
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'


def _png(size: int = 256) -> bytes:
    """A plain light-green PNG tile, made by hand (no imaging library in the tests)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xd8\xe8\xd0" * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


class TileServer:
    """An HTTP server on loopback answering every GET with the same PNG, counting requests."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.tile = _png()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.paths.append(head.split(b" ", 2)[1].decode())
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n"
                + f"Content-Length: {len(self.tile)}\r\n\r\n".encode()
                + self.tile
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> TileServer:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tiles/{{z}}/{{x}}/{{y}}.png"


def _closed_port() -> int:
    """A loopback port nobody listens on (taken and given back)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _stations(server: Stekker) -> None:
    """Three stations 100-200 m apart in Utrecht (charging, available, offline) and a faulted
    one in Groningen at a location with a hostile name."""

    async def job(db: AsyncSession) -> None:
        places = [
            ("Stationsplein", "Utrecht", "52.0894", "5.1100", [("MAPU1", True, "Charging")]),
            ("Neude", "Utrecht", "52.0920", "5.1190", [("MAPU2", True, "Available")]),
            ("Janskerkhof", "Utrecht", "52.0935", "5.1230", [("MAPU3", False, "Available")]),
            (XSS, XSS, "53.2190", "6.5680", [("MAPG1", True, "Faulted")]),
        ]
        for name, city, lat, lon, stations in places:
            place = Location(
                name=name, address="Plein 1", city=city, latitude=Decimal(lat), longitude=Decimal(lon)
            )
            db.add(place)
            await db.flush()
            for station_id, online, status in stations:
                db.add(ChargingStation(id=station_id, online=online, location=place))
                evse = Evse(station_id=station_id, evse_number=1, evse_id=f"NL*STK*E{station_id}*1")
                db.add(evse)
                await db.flush()
                db.add(Connector(evse_id=evse.id, connector_number=1, status=status))

    await server.ctx.write(job)


async def _start(settings: Settings) -> Stekker:
    app = Stekker(settings)
    await app.start()
    await users.create_user(app.ctx, "test", "admin", PASSWORD, Role.ADMIN)
    await users.create_user(app.ctx, "test", "operator", PASSWORD, Role.OPERATOR)
    await _stations(app)
    return app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tiles() -> AsyncIterator[TileServer]:
    async with TileServer() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def map_server(tmp_path_factory: pytest.TempPathFactory, tiles: TileServer) -> AsyncIterator[Stekker]:
    """A Stekker whose map takes its tiles from this module's tile server."""
    path = tmp_path_factory.mktemp("map") / "stekker.db"
    app = await _start(
        make_settings(f"sqlite+aiosqlite:///{path}", map_tile_url=tiles.url, map_tile_attribution=XSS)
    )
    try:
        yield app
    finally:
        await app.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def offline_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stekker]:
    """A Stekker whose tile server cannot be reached (nothing listens on its port)."""
    path = tmp_path_factory.mktemp("map-offline") / "stekker.db"
    url = f"http://127.0.0.1:{_closed_port()}/{{z}}/{{x}}/{{y}}.png"
    app = await _start(make_settings(f"sqlite+aiosqlite:///{path}", map_tile_url=url))
    try:
        yield app
    finally:
        await app.stop()


# ---- settings and the page's policy, without a browser ------------------------------------


async def test_tile_urls_are_checked_and_allowed_for_images_only() -> None:
    assert csp_source("https://tile.openstreetmap.org/{z}/{x}/{y}.png") == "https://tile.openstreetmap.org"
    assert csp_source("https://{s}.tiles.example.nl:8443/{z}/{x}/{y}.png?key=k") == (
        "https://*.tiles.example.nl:8443"
    )
    assert csp_source("") is None
    assert Settings(map_tile_url="  ").map_tile_url == ""
    for bad in (
        "javascript:alert(1)//{z}/{x}/{y}",
        "ftp://tiles.example.nl/{z}/{x}/{y}.png",
        "https://tiles.example.nl/{z}/{x}.png",
        "https://tiles.example.nl; script-src *;/{z}/{x}/{y}",
        "https://tiles.example.nl'/{z}/{x}/{y}",
        "https://{s}.{s}.example.nl/{z}/{x}/{y}",
        "https:///{z}/{x}/{y}",
        "https://tiles.example.nl:http/{z}/{x}/{y}",
    ):
        with pytest.raises(ValidationError, match="map_tile_url"):
            Settings(map_tile_url=bad)


async def test_the_stations_page_allows_the_tile_host_for_images_and_nothing_else(
    map_server: Stekker, tiles: TileServer
) -> None:
    tile_host = f"http://127.0.0.1:{tiles.port}"
    async with httpx.AsyncClient(base_url=base_url(map_server)) as web:
        await http_login(web, "operator")
        page = await web.get("/console/stations")
        policy = dict(
            part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
        )
        assert policy["img-src"] == f"'self' data: {tile_host}"
        assert all(tile_host not in v for k, v in policy.items() if k != "img-src")
        assert tile_host not in (await web.get("/console/")).headers["content-security-policy"]
        # the attribution is text in an attribute, escaped
        assert 'data-attribution="&lt;img src=x' in page.text and "<img src=x" not in page.text


async def test_the_map_data_has_the_derived_status_and_refuses_bad_input(map_server: Stekker) -> None:
    async with httpx.AsyncClient(base_url=base_url(map_server)) as web:
        anonymous = await web.get("/console/map/stations")
        assert anonymous.status_code in (302, 303) and "/console/login" in anonymous.headers["location"]
        await http_login(web, "operator")
        found = await web.get("/console/map/stations", params={"lang": "en"})
        assert found.status_code == 200 and found.headers["content-type"] == "application/json"
        assert found.headers["x-content-type-options"] == "nosniff"
        stations = {s["id"]: s for s in found.json()["stations"]}
        assert {k: (s["status"], s["kind"], s["label"]) for k, s in stations.items()} == {
            "MAPU1": ("Charging", "busy", "Charging"),
            "MAPU2": ("Available", "ok", "Available"),
            "MAPU3": ("Offline", "off", "Offline"),
            "MAPG1": ("Faulted", "bad", "Faulted"),
        }
        assert stations["MAPG1"]["place"] == f"{XSS}, {XSS}"  # data; the script shows it as text
        assert stations["MAPU1"]["url"] == "/console/stations/MAPU1"
        assert (stations["MAPU1"]["lat"], stations["MAPU1"]["lon"]) == (52.0894, 5.11)
        dutch = await web.get("/console/map/stations", params={"lang": "nl", "q": "MAPU1"})
        assert [(s["id"], s["label"]) for s in dutch.json()["stations"]] == [("MAPU1", "Aan het laden")]
        offline = await web.get("/console/map/stations", params={"status": "offline"})
        assert [s["id"] for s in offline.json()["stations"]] == ["MAPU3"]
        for params in (
            {"q": "x" * 101},
            {"status": "burning"},
            {"location_id": "0"},
            {"location_id": "abc"},
            {"location_id": str(2**40)},
            {"group": "g" * 101},
        ):
            refused = await web.get("/console/map/stations", params=params)
            assert refused.status_code == 400, params
        nothing = await web.get("/console/map/stations", params={"q": "%' OR 1=1 --"})
        assert nothing.json() == {"stations": [], "truncated": False}


# ---- in the browser -----------------------------------------------------------------------


def classes(*names: str) -> re.Pattern[str]:
    """An element's class attribute holding all of `names` (Leaflet adds its own)."""
    return re.compile("".join(rf"(?=.*(^|\s){re.escape(n)}(\s|$))" for n in names))


async def _wait_state(page: Any, state: str) -> None:
    await page.wait_for_selector(f"section.station-map[data-map-state={state}]", timeout=20_000)


async def test_markers_by_status_clusters_and_an_escaped_popup(
    browser: Any, map_server: Stekker, tiles: TileServer
) -> None:
    from playwright.async_api import expect

    page = await login_page(browser, map_server, "operator", viewport={"width": 1280, "height": 900})
    try:
        await page.goto("/console/stations")
        await _wait_state(page, "live")
        assert tiles.paths and all(p.startswith("/tiles/") for p in tiles.paths)
        assert await page.locator(".map-drawing").is_hidden()
        live = page.get_by_role("region", name="Kaart met de laadpalen")
        await expect(live).to_be_visible()
        # zoomed out to show Utrecht and Groningen: Utrecht's three are one group, in the colour
        # of its most urgent status (offline), Groningen's faulted station stands alone
        cluster = live.locator(".map-cluster")
        await expect(cluster).to_have_count(1)
        await expect(cluster).to_have_text("3")
        await expect(cluster).to_have_class(classes("map-cluster", "kind-off", "status-offline"))
        await expect(cluster).to_have_attribute("aria-label", "Groep van 3 laadpalen")
        faulted = live.locator("[data-station=MAPG1]")
        await expect(faulted).to_have_class(classes("map-marker", "kind-bad", "status-faulted"))
        await expect(faulted).to_have_attribute("aria-label", "Laadpaal MAPG1: Storing")
        for name in ("map-live-1280-nl",):
            await screenshot(page, name)
        # the hostile location name in the popup is text
        await _open_popup(page, "MAPG1")
        popup = live.locator(".map-popup")
        await expect(popup.locator(".map-popup-place")).to_have_text(f"{XSS}, {XSS}")
        assert await popup.locator("img, script").count() == 0
        link = popup.get_by_role("link", name="Naar de laadpaal")
        await expect(link).to_have_attribute("href", "/console/stations/MAPG1")
        await screenshot(page, "map-popup-hostile")
        # the attribution credits the tiles as text too
        attribution = live.locator(".leaflet-control-attribution")
        await expect(attribution).to_contain_text(XSS)
        assert await attribution.locator("img").count() == 0
        assert await page.evaluate("window.__pwned") is None
        # a group opens by zooming in: each station in its own colour
        await page.keyboard.press("Escape")
        await cluster.click()
        for station_id, names in (
            ("MAPU1", ("kind-busy", "status-charging")),
            ("MAPU2", ("kind-ok", "status-available")),
            ("MAPU3", ("kind-off", "status-offline")),
        ):
            await expect(live.locator(f"[data-station={station_id}]")).to_have_class(
                classes("map-marker", *names), timeout=10_000
            )
        await screenshot(page, "map-live-zoomed")
        await link_click_opens_station(page, live)
    finally:
        await page.context.close()


async def link_click_opens_station(page: Any, live: Any) -> None:
    await _open_popup(page, "MAPU1")
    await live.locator(".map-popup").get_by_role("link", name="Naar de laadpaal").click()
    await page.wait_for_url("**/console/stations/MAPU1")


async def test_the_live_map_passes_axe(browser: Any, map_server: Stekker) -> None:
    page = await login_page(browser, map_server, "operator", bypass_csp=True)
    try:
        await page.goto("/console/stations")
        await _wait_state(page, "live")
        await _open_popup(page, "MAPG1")  # axe looks at the popup too
        violations = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in await axe_violations(page)]
        assert violations == []
    finally:
        await page.context.close()


async def _open_popup(page: Any, station_id: str) -> None:
    """Click a station's marker until its popup shows: a status change that arrives meanwhile
    redraws the markers, and the popup of a redrawn marker closes (a loaded machine is slow
    enough for that)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    for _ in range(5):
        await page.locator(f"#map-live [data-station={station_id}]").click()
        try:
            await page.locator(".map-popup").wait_for(timeout=10_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the popup of {station_id} never showed")


async def test_the_map_in_english_and_on_a_phone(browser: Any, map_server: Stekker) -> None:
    from playwright.async_api import expect

    vocabulary = Vocabulary.from_catalogue()
    for lang, width in (("en", 1280), ("nl", 390), ("en", 390), ("nl", 1280)):
        page = await login_page(browser, map_server, "operator", viewport={"width": width, "height": 844})
        try:
            await page.goto(f"/console/stations?lang={lang}")
            await _wait_state(page, "live")
            name = "Map of the stations" if lang == "en" else "Kaart met de laadpalen"
            await expect(page.get_by_role("region", name=name)).to_be_visible()
            zoom_in = "Zoom in" if lang == "en" else "Inzoomen"
            await expect(page.get_by_role("button", name=zoom_in)).to_have_count(1)
            assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            # the map's texts, legend and credit line in the chosen language only (a popup open)
            await _open_popup(page, "MAPG1")
            foreign = vocabulary.foreign(lang, await visible_text(page, lang))
            assert [w for w in foreign if w not in DATA_WORDS] == [], lang
            await screenshot(page, f"map-live-{width}-{lang}")
        finally:
            await page.context.close()


async def test_an_unreachable_tile_server_leaves_the_drawing(browser: Any, offline_server: Stekker) -> None:
    from playwright.async_api import expect

    page = await login_page(browser, offline_server, "operator")
    try:
        await page.goto("/console/stations")
        await _wait_state(page, "failed")
        await expect(page.locator(".map-drawing")).to_be_visible()
        await expect(page.locator("#map-live")).to_be_hidden()
        await expect(page.locator(".map-only-failed")).to_be_visible()
        await expect(page.locator(".map-only-failed")).to_contain_text("De kaart kon niet laden")
        await expect(page.locator(".map-drawing a")).to_have_count(4)  # a link per location
        await screenshot(page, "map-fallback-unreachable-tiles")
    finally:
        await page.context.close()


async def test_without_leaflet_or_javascript_the_drawing_stays(browser: Any, map_server: Stekker) -> None:
    from playwright.async_api import expect

    page = await login_page(browser, map_server, "operator")
    try:
        await page.route("**/assets/leaflet.js", lambda route: route.abort())
        async with page.expect_response("**/assets/station_map.js") as ours:
            await page.goto("/console/stations")
        assert (await ours.value).ok  # our script ran, and found no Leaflet
        await page.wait_for_load_state("load")
        assert await page.locator("section.station-map").get_attribute("data-map-state") == "fallback"
        await expect(page.locator(".map-drawing")).to_be_visible()
        await expect(page.locator("#map-live")).to_be_hidden()
        await expect(page.locator("#map-hint")).to_be_visible()
        await screenshot(page, "map-fallback-no-leaflet")
    finally:
        await page.context.close()
    page = await login_page(browser, map_server, "operator")
    context = await browser.new_context(
        base_url=base_url(map_server),
        java_script_enabled=False,
        storage_state=await page.context.storage_state(),
    )
    await page.context.close()
    try:
        page = await context.new_page()
        await page.goto("/console/stations")
        await expect(page.locator(".map-drawing")).to_be_visible()
        await expect(page.locator("#map-live")).to_be_hidden()
    finally:
        await context.close()


async def test_openstreetmaps_credit_is_in_the_readers_language(map_server: Stekker) -> None:
    configured = map_server.settings.map_tile_attribution
    map_server.settings.map_tile_attribution = Settings().map_tile_attribution  # the default
    try:
        async with httpx.AsyncClient(base_url=base_url(map_server)) as web:
            await http_login(web, "operator")
            dutch = await web.get("/console/stations", params={"lang": "nl"})
            english = await web.get("/console/stations", params={"lang": "en"})
        assert 'data-attribution="© OpenStreetMap-bijdragers"' in dutch.text
        assert 'data-attribution="© OpenStreetMap contributors"' in english.text
    finally:
        map_server.settings.map_tile_attribution = configured


async def test_no_tile_url_means_the_drawing_only(map_server: Stekker) -> None:
    configured = map_server.settings.map_tile_url
    map_server.settings.map_tile_url = ""  # as STEKKER_MAP_TILE_URL="" at start-up
    try:
        async with httpx.AsyncClient(base_url=base_url(map_server)) as web:
            await http_login(web, "operator")
            page = await web.get("/console/stations")
        assert page.status_code == 200 and 'class="map-drawing"' in page.text
        assert 'id="map-live"' not in page.text and "leaflet.js" not in page.text
        assert "img-src 'self' data:;" in page.headers["content-security-policy"]
    finally:
        map_server.settings.map_tile_url = configured
