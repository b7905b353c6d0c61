"""Open data (requirements 159, 11) over loopback: what a third party without an account reads.

A fleet is set up through the operator API, simulated stations report their status over OCPP,
and httpx reads the public feeds as an app builder would: OCPI form (paged, by id, the gzip
dump), GeoJSON with a bounding box, the live change stream with resume; ETag/304 and gzip; no
personal data anywhere; hostile query parameters get a clear 4xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from stekker.app import Stekker
from tests.observe import add_token, eventually, sessions_of
from tests.peers import ocpp_station
from tests.test_ocpi_locations import TWO_EVSES, add_location, add_station, add_tariff, fixture

DRIVER_UID = "04A2B3C4D5E6F7"
#: keys that would carry personal data or link to a driver's session
PERSONAL_KEYS = {
    "token_uid",
    "uid_token",
    "auth_id",
    "session_id",
    "transaction_id",
    "contract_id",
    "cdr_token",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "opendata_burst": 10_000,
        "opendata_requests_per_minute": 100_000,
        "opendata_resync_interval": 1.0,
    }


async def fleet(api: httpx.AsyncClient, server: Stekker) -> dict[str, int]:
    """Two locations in Utrecht and one in Maastricht; an ad-hoc tariff and a contract tariff."""
    garage = await add_location(api, "Garage <Centrum> & Zoon", latitude="52.089444", longitude="5.110278")
    street = await add_location(api, "Oudegracht", latitude="52.090000", longitude="5.120000")
    south = await add_location(api, "Vrijthof", city="Maastricht", latitude="50.848", longitude="5.688")
    await add_location(api, "Nothing here yet")  # no EVSE: published nowhere
    await add_station(api, "OD-1", garage, TWO_EVSES)
    await add_station(api, "OD-2", street, [{"evse_number": 1, "connectors": [{"connector_number": 1}]}])
    await add_station(api, "OD-3", south, [{"evse_number": 1, "connectors": [{"connector_number": 1}]}])
    await add_tariff(server, "ADHOC", audience="adhoc")
    await add_tariff(server, "ABC-DEAL", audience="contract", parties=["NL-ABC"])
    return {"garage": garage, "street": street, "south": south}


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def evse_of(station: str) -> str:
    """The public EVSE id the API gives the first EVSE of a station it numbers itself."""
    return f"NL*STK*E{station.replace('-', '')}*1"


async def status(cp: Any, connector: int, state: str) -> None:
    await cp.call(call.StatusNotification(connector_id=connector, error_code="NoError", status=state))


async def test_feeds_show_the_live_fleet_and_nothing_personal(
    api: httpx.AsyncClient, server: Stekker, ocpp_url: str
) -> None:
    ids = await fleet(api, server)
    await add_token(api, DRIVER_UID)
    public = httpx.AsyncClient(base_url=str(api.base_url), timeout=30)
    async with public, ocpp_station(ocpp_url, "OD-1") as cp:
        await status(cp, 1, "Available")
        await status(cp, 2, "Available")
        started = await cp.call(call.StartTransaction(connector_id=1, id_tag=DRIVER_UID, meter_start=0,
                                                      timestamp=datetime.now(UTC).isoformat()))  # fmt: skip
        assert started.id_tag_info["status"] == "Accepted"
        await status(cp, 1, "Charging")
        await eventually(lambda: sessions_of(api, "OD-1"))

        async def garage() -> dict[str, Any] | None:
            response = await public.get(f"/opendata/ocpi/locations/{ids['garage']}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()["data"]
            return body if body["evses"][0]["status"] == "CHARGING" else None

        location = await eventually(garage)
        assert location["name"] == "Garage <Centrum> & Zoon"
        assert [e["status"] for e in location["evses"]] == ["CHARGING", "AVAILABLE"]
        assert location["evses"][0]["connectors"][0]["tariff_ids"] == ["ADHOC"]  # the ad-hoc price only

        # paged, in the OCPI envelope, with the headers a client pages on
        first = await public.get("/opendata/ocpi/locations", params={"limit": 2})
        assert first.status_code == 200 and first.json()["status_code"] == 1000
        assert first.headers["X-Total-Count"] == "3" and first.headers["X-Limit"] == "2"
        assert [loc["id"] for loc in first.json()["data"]] == [str(ids["garage"]), str(ids["street"])]
        following = first.headers["Link"].split(";")[0].strip("<>")
        second = await public.get(following)
        assert [loc["id"] for loc in second.json()["data"]] == [str(ids["south"])]
        assert "Link" not in second.headers
        # OD-2 and OD-3 never connected: a driver is told the truth, not "available"
        assert second.json()["data"][0]["evses"][0]["status"] == "UNKNOWN"

        tariffs = (await public.get("/opendata/ocpi/tariffs")).json()["data"]
        assert [t["id"] for t in tariffs] == ["ADHOC"]  # a partner's contract tariff is not public
        assert tariffs[0]["elements"] == fixture("tariff_8_simple_025kwh.json")["elements"]

        dump = await public.get("/opendata/ocpi/dump.json.gz")
        assert dump.status_code == 200 and dump.headers["content-type"] == "application/gzip"
        everything = json.loads(gzip.decompress(dump.content))
        assert [loc["id"] for loc in everything["locations"]] == [str(i) for i in ids.values()]
        assert [t["id"] for t in everything["tariffs"]] == ["ADHOC"]

        points = await public.get("/opendata/geojson", params={"bbox": "5.0,52.0,5.2,52.2"})
        assert points.headers["content-type"].startswith("application/geo+json")
        collection = points.json()
        assert collection["type"] == "FeatureCollection"
        assert {f["id"] for f in collection["features"]} == {str(ids["garage"]), str(ids["street"])}
        garage_point = next(f for f in collection["features"] if f["id"] == str(ids["garage"]))
        assert garage_point["geometry"] == {"type": "Point", "coordinates": [5.110278, 52.089444]}
        assert garage_point["properties"]["status"] == "AVAILABLE"  # one of its two EVSEs is free
        assert garage_point["properties"]["available_count"] == 1
        everywhere = (await public.get("/opendata/geojson")).json()
        assert len(everywhere["features"]) == 3

        session_ids = {str(s["id"]) for s in await sessions_of(api, "OD-1")}
        for body in (first.content, second.content, dump.content, points.content,
                     (await public.get("/opendata/ocpi/tariffs")).content):  # fmt: skip
            text = gzip.decompress(body).decode() if body[:2] == b"\x1f\x8b" else body.decode()
            assert DRIVER_UID not in text
            assert not _keys(json.loads(text)) & PERSONAL_KEYS
            assert not any(f'"session":"{s}"' in text for s in session_ids)


async def test_etag_gives_304_until_something_changes_and_gzip_on_request(
    api: httpx.AsyncClient, server: Stekker, ocpp_url: str
) -> None:
    await fleet(api, server)
    async with ocpp_station(ocpp_url, "OD-2") as cp:
        await status(cp, 1, "Available")
        await eventually(lambda: _has_status(api, "OD-2", "AVAILABLE"))
        fresh = await api.get("/opendata/geojson", headers={"Accept-Encoding": "identity"})
        etag = fresh.headers["ETag"]
        assert fresh.headers["Cache-Control"].startswith("public, max-age=")
        assert "Content-Encoding" not in fresh.headers
        again = await api.get("/opendata/geojson", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag

        zipped = await api.get("/opendata/geojson", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert zipped.json() == fresh.json()  # httpx unpacks it: the same document
        refused = await api.get("/opendata/geojson", headers={"Accept-Encoding": "gzip;q=0"})
        assert "Content-Encoding" not in refused.headers

        await status(cp, 1, "Charging")
        await eventually(lambda: _has_status(api, "OD-2", "CHARGING"))
        changed = await api.get("/opendata/geojson", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["ETag"] != etag


async def _has_status(api: httpx.AsyncClient, station: str, wanted: str) -> bool:
    features = (await api.get("/opendata/geojson")).json()["features"]
    uid = evse_of(station)
    return any(e["uid"] == uid and e["status"] == wanted for f in features for e in f["properties"]["evses"])


class SseReader:
    """Reads a Server-Sent Events response event by event."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 20.0) -> dict[str, str]:
        event: dict[str, str] = {}

        async def read() -> dict[str, str]:
            async for line in self.lines:
                if not line:
                    if "data" in event or "event" in event:
                        return event
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                event[name] = value.removeprefix(" ")
            raise AssertionError("the stream ended")

        return await asyncio.wait_for(read(), timeout)

    async def next_of(self, kind: str, **wanted: str) -> dict[str, Any]:
        while True:
            event = await self.next()
            if event.get("event") == kind:
                data: dict[str, Any] = json.loads(event["data"])
                if all(data.get(k) == v for k, v in wanted.items()):
                    return {"id": event.get("id"), **data}


@contextlib.asynccontextmanager
async def sse(client: httpx.AsyncClient, **headers: str) -> AsyncIterator[SseReader]:
    async with client.stream("GET", "/opendata/stream", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseReader(response)


async def test_the_stream_carries_a_stations_change_and_resumes_after_a_reconnect(
    api: httpx.AsyncClient, server: Stekker, ocpp_url: str
) -> None:
    ids = await fleet(api, server)
    listener = httpx.AsyncClient(base_url=str(api.base_url), timeout=30)
    async with listener, ocpp_station(ocpp_url, "OD-3") as cp:
        await status(cp, 1, "Available")
        await eventually(lambda: _has_status(api, "OD-3", "AVAILABLE"))
        async with sse(listener) as stream:
            await status(cp, 1, "Charging")
            seen = await stream.next_of("status", evse_uid=evse_of("OD-3"))
            assert seen["status"] == "CHARGING" and seen["previous"] == "AVAILABLE"
            assert seen["location_id"] == str(ids["south"])
        # while the app is away, the station goes out of order and then is free again
        await status(cp, 1, "Faulted")
        await eventually(lambda: _has_status(api, "OD-3", "OUTOFORDER"))
        await status(cp, 1, "Available")
        await eventually(lambda: _has_status(api, "OD-3", "AVAILABLE"))
        async with sse(listener, **{"Last-Event-ID": seen["id"]}) as stream:
            missed = await stream.next_of("status", evse_uid=evse_of("OD-3"))
            assert missed["status"] == "OUTOFORDER"
            then = await stream.next_of("status", evse_uid=evse_of("OD-3"))
            assert then["status"] == "AVAILABLE"
    # the station went away: the stream says so (offline is UNKNOWN, as OCPI has it)
    async with sse(api, **{"Last-Event-ID": then["id"]}) as stream:
        offline = await stream.next_of("status", evse_uid=evse_of("OD-3"))
        assert offline["status"] == "UNKNOWN"


async def test_a_new_price_is_announced_on_the_stream(
    api: httpx.AsyncClient, server: Stekker, ocpp_url: str
) -> None:
    await fleet(api, server)
    listener = httpx.AsyncClient(base_url=str(api.base_url), timeout=30)
    async with listener, sse(listener, **{"Accept": "text/event-stream"}) as stream:
        await add_tariff(server, "DC-FAST", applies_to=[{"evse_uid": "NL*STK*E0001*2", "connector": 1}])
        await server.ctx.bus.publish(_event("tariff.activated", {"tariff": "DC-FAST", "version": 1}))
        price = await stream.next_of("price", evse_uid="NL*STK*E0001*2")
        assert price["tariff_ids"] == ["ADHOC", "DC-FAST"]
        assert price["price_url"] == "/opendata/evses/NL*STK*E0001*2/price"


def _event(topic: str, data: dict[str, Any]) -> Any:
    from stekker.bus import Event

    return Event(topic, data)


async def test_a_stream_that_cannot_resume_says_reset(api: httpx.AsyncClient, server: Stekker) -> None:
    await fleet(api, server)
    for last in ("12-3", "garbage", "1-999999999"):
        async with sse(api, **{"Last-Event-ID": last}) as stream:
            event = await stream.next()
            assert event["event"] == "reset", event
            assert json.loads(event["data"])["snapshot"] == "/opendata/ocpi/locations"


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("/opendata/ocpi/locations", {"limit": "1000000000"}, "less than or equal to 1000"),
        ("/opendata/ocpi/locations", {"limit": "0"}, "greater than or equal to 1"),
        ("/opendata/ocpi/locations", {"offset": "-1"}, "greater than or equal to 0"),
        ("/opendata/ocpi/locations", {"date_from": "yesterday"}, "ISO 8601"),
        ("/opendata/ocpi/locations", {"date_from": "1700000000"}, "ISO 8601"),  # not a unix time
        ("/opendata/ocpi/locations", {"date_to": "0.5"}, "ISO 8601"),
        (
            "/opendata/ocpi/locations",
            {"date_from": "2026-02-01", "date_to": "2026-01-01"},
            "before date_from",
        ),
        ("/opendata/ocpi/locations/abc", {}, "pattern"),
        ("/opendata/ocpi/locations/99999", {}, "no published location"),
        ("/opendata/ocpi/tariffs", {"limit": "-5"}, "greater than or equal to 1"),
        ("/opendata/geojson", {"bbox": "1,2,3"}, "4 numbers"),
        ("/opendata/geojson", {"bbox": "a,b,c,d"}, "4 numbers"),
        ("/opendata/geojson", {"bbox": "0,95,1,96"}, "latitudes"),
        ("/opendata/geojson", {"bbox": "0,53,1,52"}, "south is north"),
        ("/opendata/geojson", {"bbox": "nan,1,2,3"}, "finite"),
        ("/opendata/geojson", {"bbox": "1e999,1,2,3"}, "finite"),
        ("/opendata/geojson", {"bbox": "1," * 300}, "at most 200"),
        ("/opendata/stream", {"types": "status,<script>"}, "types must be"),
    ],
)
async def test_hostile_parameters_get_a_clear_4xx(
    api: httpx.AsyncClient, server: Stekker, path: str, params: dict[str, str], says: str
) -> None:
    response = await api.get(path, params=params)
    assert 400 <= response.status_code < 500, response.text
    assert says in response.text, response.text
    assert "<script>" not in response.text or response.headers["content-type"].startswith("application/json")


async def test_the_index_lists_every_feed(api: httpx.AsyncClient, server: Stekker) -> None:
    index = (await api.get("/opendata")).json()
    for path in index["feeds"].values():
        if "{" not in path and path != "/opendata/stream":
            response = await api.get(path)
            assert response.status_code == 200, (path, response.text)
    documented = (await api.get("/openapi.json")).json()["paths"]
    assert {"/opendata/geojson", "/opendata/stream", "/opendata/ocpi/locations"} <= set(documented)


async def test_the_feeds_follow_inventory_edits_and_catch_up_with_edits_behind_their_back(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    ids = await fleet(api, server)
    names = await _names(api)
    assert names[str(ids["street"])] == "Oudegracht"
    renamed = await api.patch(f"/api/locations/{ids['street']}", json={"name": "Oudegracht Noord"})
    assert renamed.status_code == 200, renamed.text
    await eventually(lambda: _named(api, str(ids["street"]), "Oudegracht Noord"))
    # a retired location leaves the map; OCPI keeps it, as REMOVED, so syncing clients learn it
    assert (await api.post("/api/stations/OD-3/retire")).status_code == 200
    assert (await api.post(f"/api/locations/{ids['south']}/retire")).status_code == 200
    await eventually(lambda: _gone_from_map(api, str(ids["south"])))
    south = (await api.get(f"/opendata/ocpi/locations/{ids['south']}")).json()["data"]
    assert {e["status"] for e in south["evses"]} == {"REMOVED"}
    # someone edits the database directly: the periodic resync (1 s here) picks it up
    from sqlalchemy import update

    from stekker.db.models import Location

    async def edit(db: Any) -> None:
        await db.execute(update(Location).where(Location.id == ids["garage"]).values(city="Nieuwegein"))

    await server.ctx.write(edit)
    await eventually(lambda: _city(api, str(ids["garage"]), "Nieuwegein"))


async def _names(api: httpx.AsyncClient) -> dict[str, str]:
    data = (await api.get("/opendata/ocpi/locations")).json()["data"]
    return {loc["id"]: loc["name"] for loc in data}


async def _named(api: httpx.AsyncClient, location_id: str, name: str) -> bool:
    return (await _names(api)).get(location_id) == name


async def _gone_from_map(api: httpx.AsyncClient, location_id: str) -> bool:
    features = (await api.get("/opendata/geojson")).json()["features"]
    return all(f["id"] != location_id for f in features)


async def _city(api: httpx.AsyncClient, location_id: str, city: str) -> bool:
    response = await api.get(f"/opendata/ocpi/locations/{location_id}")
    return bool(response.json()["data"]["city"] == city)
