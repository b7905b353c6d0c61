"""The DATEX II v3 (AFIR profile) feeds: the static EnergyInfrastructureTablePublication and the
dynamic EnergyInfrastructureStatusPublication, in JSON and in XML (DATEX II is XML-first).

Each site's record is rendered once per change of that location (`Entry.fragment`) and the
publication is joined from the cached fragments, so a status change re-renders one site. The
table's version is the moment its content last changed (whole seconds), and the status
publication refers to it, so a client knows which table the statuses belong to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request, Response

from stekker.opendata import datex2, datex2_xml
from stekker.opendata.cache import Entry, OpenDataCache
from stekker.opendata.conditional import respond
from stekker.opendata.feeds import LIVE_MAX_AGE, STATIC_MAX_AGE, ready_cache, router

JSON = "application/json"
XML = "application/xml"
_DATEX_JSON: dict[int | str, dict[str, Any]] = {200: {"content": {JSON: {}}}}
_DATEX_XML: dict[int | str, dict[str, Any]] = {200: {"content": {XML: {}}}}


def _sites(cache: OpenDataCache) -> list[Entry]:
    """Retired locations leave the DATEX table (OCPI keeps them as REMOVED)."""
    return [e for e in cache.ordered() if not e.retired]


def _fragments(cache: OpenDataCache, name: str, render: Callable[[Entry], bytes]) -> list[bytes]:
    return [entry.fragment(name, render) for entry in _sites(cache)]


def _table_record(cache: OpenDataCache) -> Callable[[Entry], dict[str, Any]]:
    return lambda entry: datex2.site_table_record(entry.open, cache.tariffs)


def _status_record(cache: OpenDataCache) -> Callable[[Entry], dict[str, Any]]:
    return lambda entry: datex2.site_status_record(entry.open, cache.tariffs)


def _table_version(cache: OpenDataCache) -> str:
    return datex2.version_of(cache.static_changed_at)


@router.get(
    "/datex2/table.json",
    summary="DATEX II v3 EnergyInfrastructureTablePublication (AFIR), JSON",
    description="Sites (our locations), stations, refill points (EVSEs), connectors and the ad-hoc energy "
    "rates, valid against the AFIR profile's JSON schema.",
    response_class=Response,
    responses=_DATEX_JSON,
)
async def datex_table_json(request: Request) -> Response:
    cache = await ready_cache(request)
    record = _table_record(cache)

    def render() -> bytes:
        fragments = _fragments(cache, "datex-table-json", lambda e: datex2.json_fragment(record(e)))
        return datex2.table_publication_json(
            fragments, cache.publisher, cache.static_changed_at, _table_version(cache)
        )

    rendered = cache.rendered(("datex-table-json",), render, JSON, static=True)
    return respond(request, rendered, max_age=STATIC_MAX_AGE)


@router.get(
    "/datex2/table.xml",
    summary="DATEX II v3 EnergyInfrastructureTablePublication (AFIR), XML",
    response_class=Response,
    responses=_DATEX_XML,
)
async def datex_table_xml(request: Request) -> Response:
    cache = await ready_cache(request)
    record = _table_record(cache)

    def render() -> bytes:
        fragments = _fragments(cache, "datex-table-xml", lambda e: datex2_xml.site_table_xml(record(e)))
        return datex2_xml.table_publication_xml(
            fragments, cache.publisher, cache.static_changed_at, _table_version(cache)
        )

    rendered = cache.rendered(("datex-table-xml",), render, XML, static=True)
    return respond(request, rendered, max_age=STATIC_MAX_AGE)


@router.get(
    "/datex2/status.json",
    summary="DATEX II v3 EnergyInfrastructureStatusPublication (AFIR), JSON",
    description="The live status of every refill point (EVSE) and its ad-hoc prices, referring to the "
    "table publication's version.",
    response_class=Response,
    responses=_DATEX_JSON,
)
async def datex_status_json(request: Request) -> Response:
    cache = await ready_cache(request)
    record = _status_record(cache)

    def render() -> bytes:
        fragments = _fragments(cache, "datex-status-json", lambda e: datex2.json_fragment(record(e)))
        return datex2.status_publication_json(
            fragments, cache.publisher, cache.changed_at, _table_version(cache)
        )

    rendered = cache.rendered(("datex-status-json",), render, JSON)
    return respond(request, rendered, max_age=LIVE_MAX_AGE)


@router.get(
    "/datex2/status.xml",
    summary="DATEX II v3 EnergyInfrastructureStatusPublication (AFIR), XML",
    response_class=Response,
    responses=_DATEX_XML,
)
async def datex_status_xml(request: Request) -> Response:
    cache = await ready_cache(request)
    record = _status_record(cache)

    def render() -> bytes:
        fragments = _fragments(cache, "datex-status-xml", lambda e: datex2_xml.site_status_xml(record(e)))
        return datex2_xml.status_publication_xml(
            fragments, cache.publisher, cache.changed_at, _table_version(cache)
        )

    rendered = cache.rendered(("datex-status-xml",), render, XML)
    return respond(request, rendered, max_age=LIVE_MAX_AGE)
