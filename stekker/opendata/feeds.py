"""The public open-data feeds (requirements 159, 11): no account, no personal data.

Every answer comes from the in-memory cache (`OpenDataCache`) and carries an ETag (send it back
in If-None-Match for a 304), Cache-Control and, when asked for, gzip. Clients are rate-limited
per IP address (`RateLimit`); to follow changes, read the live stream instead of polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from stekker.domain.iso_params import IsoDateTime
from stekker.opendata import geojson
from stekker.opendata.cache import Entry, OpenDataCache
from stekker.opendata.conditional import respond

router = APIRouter(prefix="/opendata", tags=["open data"])

LIVE_MAX_AGE = 10  # seconds a cache may keep a live feed (statuses move)
STATIC_MAX_AGE = 300  # the static DATEX table and the tariffs move rarely
MAX_PAGE = 1000
FIRST_BUILD_WAIT = 30.0  # seconds a request waits for the cache's first build
_KINDS = frozenset({"status", "price"})


def cache_of(request: Request) -> OpenDataCache:
    cache: OpenDataCache = request.app.state.opendata
    return cache


async def ready_cache(request: Request) -> OpenDataCache:
    """The cache, built; a 503 with Retry-After if the first build takes too long (the database
    is down, say: the cache keeps retrying, and the client is told to come back)."""
    cache = cache_of(request)
    try:
        await asyncio.wait_for(asyncio.shield(cache.ready()), FIRST_BUILD_WAIT)
    except TimeoutError:
        raise HTTPException(
            503, "open data is not available yet: the feeds are being built; retry shortly",
            headers={"Retry-After": "10"},
        ) from None  # fmt: skip
    return cache


def _time(moment: datetime) -> bytes:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z").encode()


def _envelope(data: bytes, at: datetime) -> bytes:
    """The OCPI response envelope around ready JSON (timestamp: when the data last changed, so
    the same data has the same bytes and ETag)."""
    return (
        b'{"data":'
        + data
        + b',"status_code":1000,"status_message":"Success","timestamp":"'
        + _time(at)
        + b'"}'
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _page_headers(request: Request, total: int, offset: int, limit: int, count: int) -> dict[str, str]:
    headers = {"X-Total-Count": str(total), "X-Limit": str(limit)}
    if count and offset + count < total:
        url = request.url.include_query_params(offset=offset + count, limit=limit)
        headers["Link"] = f'<{url}>; rel="next"'
    return headers


Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")]
Limit = Annotated[
    int, Query(ge=1, le=MAX_PAGE, description=f"Items per page, at most {MAX_PAGE} (all at once: the dump).")
]
DateFrom = Annotated[IsoDateTime | None, Query(description="Only objects last updated at or after (UTC).")]
DateTo = Annotated[IsoDateTime | None, Query(description="Only objects with last_updated before (UTC).")]


@router.get("", summary="What open data there is", response_class=JSONResponse)
async def index(request: Request) -> dict[str, Any]:
    limits = request.app.state.opendata_limits
    return {
        "description": "Live availability and ad-hoc prices of every public charging point of this operator. "
        "No account needed; no personal data.",
        "feeds": {
            "ocpi_locations": "/opendata/ocpi/locations",
            "ocpi_tariffs": "/opendata/ocpi/tariffs",
            "ocpi_dump": "/opendata/ocpi/dump.json.gz",
            "datex2_table_json": "/opendata/datex2/table.json",
            "datex2_table_xml": "/opendata/datex2/table.xml",
            "datex2_status_json": "/opendata/datex2/status.json",
            "datex2_status_xml": "/opendata/datex2/status.xml",
            "geojson": "/opendata/geojson",
            "stream": "/opendata/stream",
            "price_of_an_evse": "/opendata/evses/{evse_uid}/price",
        },
        "rate_limit": {"requests_per_minute": limits[0], "burst": limits[1], "streams_per_client": limits[2]},
        "caching": "Every feed has an ETag: send it in If-None-Match and get 304 while nothing changed.",
    }


@router.get(
    "/ocpi/locations",
    summary="Locations with their EVSEs' live status (OCPI 2.2.1 form, paginated)",
    description="OCPI Location objects in the OCPI response envelope, paged with offset/limit; the next "
    "page is in the Link header, the total in X-Total-Count. Tariff ids are the ad-hoc driver's.",
)
async def ocpi_locations(
    request: Request,
    offset: Offset = 0,
    limit: Limit = 100,
    date_from: DateFrom = None,
    date_to: DateTo = None,
) -> Response:
    cache = await ready_cache(request)
    start, end = _utc(date_from), _utc(date_to)
    if start is not None and end is not None and end < start:
        raise HTTPException(422, "date_to is before date_from")
    matching = [
        e
        for e in cache.ordered()
        if (start is None or e.last_updated >= start) and (end is None or e.last_updated < end)
    ]
    page = matching[offset : offset + limit]

    def render() -> bytes:
        return _envelope(b"[" + b",".join(e.ocpi_json for e in page) + b"]", cache.changed_at)

    rendered = cache.rendered(("ocpi-locations", offset, limit, start, end), render, "application/json")
    headers = _page_headers(request, len(matching), offset, limit, len(page))
    return respond(request, rendered, max_age=LIVE_MAX_AGE, headers=headers)


@router.get("/ocpi/locations/{location_id}", summary="One location (OCPI 2.2.1 form)")
async def ocpi_location(
    request: Request, location_id: Annotated[str, Path(max_length=36, pattern=r"^[0-9]{1,12}$")]
) -> Response:
    cache = await ready_cache(request)
    entry = cache.entries.get(int(location_id))
    if entry is None:
        raise HTTPException(404, f"no published location {location_id}")
    rendered = cache.rendered(
        ("ocpi-location", entry.location_id),
        lambda: _envelope(entry.ocpi_json, cache.changed_at),
        "application/json",
    )
    return respond(request, rendered, max_age=LIVE_MAX_AGE)


@router.get(
    "/ocpi/tariffs",
    summary="The tariffs an ad-hoc driver pays (OCPI 2.2.1 form, paginated)",
)
async def ocpi_tariffs(request: Request, offset: Offset = 0, limit: Limit = 100) -> Response:
    cache = await ready_cache(request)
    tariffs = cache.published_tariffs()
    page = tariffs[offset : offset + limit]

    def render() -> bytes:
        return _envelope(orjson.dumps([t.ocpi for t in page]), cache.static_changed_at)

    rendered = cache.rendered(("ocpi-tariffs", offset, limit), render, "application/json", static=True)
    headers = _page_headers(request, len(tariffs), offset, limit, len(page))
    return respond(request, rendered, max_age=STATIC_MAX_AGE, headers=headers)


@router.get(
    "/ocpi/dump.json.gz",
    summary="Everything at once: all locations and tariffs (OCPI 2.2.1 objects), gzip",
    response_class=Response,
    responses={200: {"content": {"application/gzip": {}}}},
)
async def ocpi_dump(request: Request) -> Response:
    cache = await ready_cache(request)

    def render() -> bytes:
        p = cache.publisher
        head = orjson.dumps(
            {"generated_at": _time(cache.changed_at).decode(), "country_code": p.country_code,
             "party_id": p.party_id, "operator": p.name}
        )  # fmt: skip
        locations = b"[" + b",".join(e.ocpi_json for e in cache.ordered()) + b"]"
        tariffs = orjson.dumps([t.ocpi for t in cache.published_tariffs()])
        return head[:-1] + b',"locations":' + locations + b',"tariffs":' + tariffs + b"}"

    rendered = cache.rendered(("ocpi-dump",), render, "application/gzip")
    return respond(
        request, rendered, max_age=LIVE_MAX_AGE, always_gzip=True,
        headers={"Content-Disposition": 'attachment; filename="stekker-locations.json.gz"'},
    )  # fmt: skip


@router.get(
    "/geojson",
    summary="Locations as GeoJSON points with their EVSEs' live status",
    description="A FeatureCollection (RFC 7946). `bbox=west,south,east,north` (WGS84 degrees) keeps the "
    "locations inside; west > east crosses the antimeridian.",
    response_class=Response,
    responses={200: {"content": {geojson.MEDIA_TYPE: {}}}},
)
async def geojson_feed(
    request: Request,
    bbox: Annotated[str | None, Query(max_length=200, description="west,south,east,north")] = None,
) -> Response:
    try:
        box = None if bbox is None else geojson.parse_box(bbox)
    except geojson.BadBox as exc:
        raise HTTPException(422, str(exc)) from None
    cache = await ready_cache(request)

    def inside() -> Sequence[Entry]:
        entries = [e for e in cache.ordered() if not e.retired]
        return entries if box is None else [e for e in entries if box.holds(e.longitude, e.latitude)]

    await cache.warm("geojson", geojson.feature, inside())

    def render() -> bytes:
        return geojson.collection(e.fragment("geojson", geojson.feature) for e in inside())

    rendered = cache.rendered(("geojson", box), render, geojson.MEDIA_TYPE)
    return respond(request, rendered, max_age=LIVE_MAX_AGE)


@router.get(
    "/stream",
    summary="Live changes of status and price (Server-Sent Events)",
    description="`event: status` (an EVSE's new OCPI status) and `event: price` (the tariffs pricing an EVSE "
    "changed; its price is at price_url). Reconnect with the Last-Event-ID header (or ?last_event_id=) to "
    "resume; `event: reset` means changes were missed: fetch a feed again. A comment line every 15 s keeps "
    "the connection open.",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    types: Annotated[
        str, Query(max_length=50, description="Comma-separated: status, price.")
    ] = "status,price",
    last_event_id: Annotated[str | None, Query(max_length=40)] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
) -> StreamingResponse:
    kinds = frozenset(t.strip() for t in types.split(",") if t.strip())
    if not kinds or not kinds <= _KINDS:
        raise HTTPException(422, f"types must be a comma-separated choice of {', '.join(sorted(_KINDS))}")
    cache = await ready_cache(request)
    streams: dict[str, int] = request.app.state.opendata_streams
    client = request.client.host if request.client else "unknown"
    allowed = request.app.state.opendata_limits[2]
    if streams.get(client, 0) >= allowed:
        raise HTTPException(
            429, f"at most {allowed} open streams per client: close one first", headers={"Retry-After": "10"}
        )
    resume = cache.stream.resume_point(last_event_id_header or last_event_id)
    streams[client] = streams.get(client, 0) + 1

    async def frames() -> Any:
        try:
            async for frame in cache.stream.frames(resume, kinds):
                yield frame
        finally:
            left = streams.get(client, 1) - 1
            if left > 0:
                streams[client] = left
            else:
                streams.pop(client, None)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Access-Control-Allow-Origin": "*"},
    )
