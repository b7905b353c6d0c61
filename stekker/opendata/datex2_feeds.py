"""The DATEX II v3 (AFIR profile) feeds: the static EnergyInfrastructureTablePublication and the
dynamic EnergyInfrastructureStatusPublication, in JSON and in XML (DATEX II is XML-first).

Each site's record is rendered once per change of that location (`Entry.fragment`) and the
publication is joined from the cached fragments, so a status change re-renders one site. The
table's version is the moment its content last changed (whole seconds), and the status
publication refers to it, so a client knows which table the statuses belong to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from stekker.opendata import datex2, datex2_xml
from stekker.opendata.cache import STATIC_FRAGMENTS, Entry, OpenDataCache
from stekker.opendata.conditional import respond
from stekker.opendata.feeds import LIVE_MAX_AGE, STATIC_MAX_AGE, ready_cache, router

JSON = "application/json"
XML = "application/xml"


def _sites(cache: OpenDataCache) -> list[Entry]:
    """Retired locations leave the DATEX table (OCPI keeps them as REMOVED)."""
    return [e for e in cache.ordered() if not e.retired]


def _table_record(cache: OpenDataCache, entry: Entry) -> dict[str, Any]:
    return datex2.site_table_record(entry.open, cache.tariffs)


def _status_record(cache: OpenDataCache, entry: Entry) -> dict[str, Any]:
    return datex2.site_status_record(entry.open, cache.tariffs)


def _table_version(cache: OpenDataCache) -> str:
    return datex2.version_of(cache.static_changed_at)


async def _publication(
    request: Request,
    name: str,
    fragment: Callable[[OpenDataCache, Entry], bytes],
    assemble: Callable[[OpenDataCache, list[bytes]], bytes],
    media_type: str,
    *,
    static: bool,
) -> Response:
    """A publication joined from per-site fragments (rendered ahead in slices when missing)."""
    cache = await ready_cache(request)

    def one(entry: Entry) -> bytes:
        return fragment(cache, entry)

    await cache.warm(name, one, _sites(cache))

    def render() -> bytes:
        return assemble(cache, [entry.fragment(name, one) for entry in _sites(cache)])

    rendered = cache.rendered((name,), render, media_type, static=static)
    return respond(request, rendered, max_age=STATIC_MAX_AGE if static else LIVE_MAX_AGE)


@dataclass(frozen=True, slots=True)
class Publication:
    """One DATEX feed: its path, how a site's fragment is rendered and how they are joined."""

    path: str
    summary: str
    fragment: Callable[[OpenDataCache, Entry], bytes]
    assemble: Callable[[OpenDataCache, list[bytes]], bytes]
    media_type: str
    static: bool  # the table: changes with the inventory and prices, not with a status


PUBLICATIONS = (
    Publication(
        "/datex2/table.json",
        "DATEX II v3 EnergyInfrastructureTablePublication (AFIR), JSON: sites (our locations), "
        "stations, refill points (EVSEs), connectors and the ad-hoc energy rates",
        lambda cache, entry: datex2.json_fragment(_table_record(cache, entry)),
        lambda cache, parts: datex2.table_publication_json(
            parts, cache.publisher, cache.static_changed_at, _table_version(cache)
        ),
        JSON,
        True,
    ),
    Publication(
        "/datex2/table.xml",
        "DATEX II v3 EnergyInfrastructureTablePublication (AFIR), XML",
        lambda cache, entry: datex2_xml.site_table_xml(_table_record(cache, entry)),
        lambda cache, parts: datex2_xml.table_publication_xml(
            parts, cache.publisher, cache.static_changed_at, _table_version(cache)
        ),
        XML,
        True,
    ),
    Publication(
        "/datex2/status.json",
        "DATEX II v3 EnergyInfrastructureStatusPublication (AFIR), JSON: the live status of every "
        "refill point (EVSE) and its ad-hoc prices, referring to the table's version",
        lambda cache, entry: datex2.json_fragment(_status_record(cache, entry)),
        lambda cache, parts: datex2.status_publication_json(
            parts, cache.publisher, cache.changed_at, _table_version(cache)
        ),
        JSON,
        False,
    ),
    Publication(
        "/datex2/status.xml",
        "DATEX II v3 EnergyInfrastructureStatusPublication (AFIR), XML",
        lambda cache, entry: datex2_xml.site_status_xml(_status_record(cache, entry)),
        lambda cache, parts: datex2_xml.status_publication_xml(
            parts, cache.publisher, cache.changed_at, _table_version(cache)
        ),
        XML,
        False,
    ),
)


def _route(feed: Publication) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return await _publication(
            request, feed.path, feed.fragment, feed.assemble, feed.media_type, static=feed.static
        )

    return serve


# a status change keeps the static feeds' fragments: the cache must know them by name
if {f.path for f in PUBLICATIONS if f.static} != STATIC_FRAGMENTS:
    raise RuntimeError("the static DATEX feeds and cache.STATIC_FRAGMENTS disagree")

for _feed in PUBLICATIONS:
    router.add_api_route(
        _feed.path,
        _route(_feed),
        methods=["GET"],
        summary=_feed.summary.split(":")[0],
        description=_feed.summary,
        response_class=Response,
        responses={200: {"content": {_feed.media_type: {}}}},
    )
