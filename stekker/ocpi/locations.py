"""OCPI 2.2.1 Locations, CPO (sender) interface: partners read our locations, EVSEs and
connectors. Locations are public to every registered partner, whatever its role.

GET list: every location with at least one EVSE, by id, filtered on `last_updated`
(date_from inclusive, date_to exclusive) and paginated. A retired location or station stays
in the list with its EVSEs REMOVED: OCPI has no other way to delete one, and a partner that
syncs with date_from must see it go. `last_updated` is computed from several rows, so the
filter runs here rather than in SQL; a CPO's few thousand locations read in one query.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from stekker.api.deps import get_ctx
from stekker.db.models import Location
from stekker.ocpi.auth import PartnerAuth, registered_partner
from stekker.ocpi.envelope import UNKNOWN_LOCATION, OcpiError, ocpi_response
from stekker.ocpi.location_objects import (
    Identity,
    customers_of,
    evse_object,
    evse_uid,
    load_location,
    load_locations,
    location_object,
    parties_of,
    publishable_evses,
    tariff_index,
)
from stekker.ocpi.pagination import PageQuery, page_query, paged_response
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/ocpi/2.2.1/locations", tags=["ocpi"])

_LOCATION_ID = re.compile(r"^[1-9][0-9]{0,9}$")
_MAX_ID = 2**31 - 1  # the integer column on PostgreSQL


def _identity(ctx: ServiceContext) -> Identity:
    country, party = ctx.settings.party
    return Identity(country, party, ctx.settings.business_name or "Stekker")


def _unknown(what: str) -> OcpiError:
    return OcpiError(UNKNOWN_LOCATION, f"unknown {what}", http_status=404)


def _location_pk(location_id: str) -> int:
    if not _LOCATION_ID.match(location_id) or int(location_id) > _MAX_ID:
        raise _unknown(f"location {location_id[:40]!r}")
    return int(location_id)


async def _one(ctx: ServiceContext, partner: PartnerAuth, location_id: str) -> tuple[Location, Any]:
    pk = _location_pk(location_id)
    async with ctx.db() as db:
        location = await load_location(db, pk)
        if location is None:
            raise _unknown(f"location {location_id!r}")
        index = await tariff_index(
            db, customers_of(parties_of(partner.country_code, partner.party_id, partner.roles)), ctx.now()
        )
    return location, index


#: OCPI ids are CiString(36); longer is a malformed request (2001)
_Id = Annotated[str, Path(max_length=36)]


@router.get("", summary="Our locations (paginated)")
async def list_locations(
    request: Request,
    page: PageQuery = Depends(page_query),
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    identity = _identity(ctx)
    async with ctx.db() as db:
        locations = await load_locations(db)
        index = await tariff_index(
            db, customers_of(parties_of(partner.country_code, partner.party_id, partner.roles)), ctx.now()
        )
    objects = [location_object(loc, identity, index) for loc in locations if publishable_evses(loc)]
    matching = [
        o
        for o in objects
        if (page.date_from is None or o.last_updated >= page.date_from)
        and (page.date_to is None or o.last_updated < page.date_to)
    ]
    items = [o.wire() for o in matching[page.offset : page.offset + page.limit]]
    return paged_response(request, items, len(matching), page)


@router.get("/{location_id}", summary="One location")
async def get_location(
    location_id: _Id,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    location, index = await _one(ctx, partner, location_id)
    return ocpi_response(location_object(location, _identity(ctx), index).wire())


def _find_evse(location: Location, uid: str) -> Any:
    wanted = uid.upper()  # CiString: case-insensitive
    for station, evse in publishable_evses(location):
        if evse_uid(station.id, evse.evse_number, evse.evse_id).upper() == wanted:
            return station, evse
    raise _unknown(f"EVSE {uid!r} at location {location.id}")


@router.get("/{location_id}/{evse_uid}", summary="One EVSE of a location")
async def get_evse(
    location_id: _Id,
    evse_uid: _Id,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    location, index = await _one(ctx, partner, location_id)
    station, evse = _find_evse(location, evse_uid)
    return ocpi_response(evse_object(location, station, evse, index).wire())


@router.get("/{location_id}/{evse_uid}/{connector_id}", summary="One connector of an EVSE")
async def get_connector(
    location_id: _Id,
    evse_uid: _Id,
    connector_id: _Id,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    location, index = await _one(ctx, partner, location_id)
    station, evse = _find_evse(location, evse_uid)
    found = evse_object(location, station, evse, index)
    for connector in found.connectors:
        if connector.id == connector_id:
            return ocpi_response(connector.wire())
    raise _unknown(f"connector {connector_id!r} of EVSE {evse_uid!r}")
