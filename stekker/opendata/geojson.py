"""The fleet as GeoJSON (RFC 7946): one Point feature per location, its EVSEs' live status in
the properties, filtered by a bounding box."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from stekker.opendata.cache import Entry

MEDIA_TYPE = "application/geo+json"
#: the summary status of a location: the best a driver can hope for there
_SUMMARY = ("AVAILABLE", "CHARGING", "RESERVED", "BLOCKED", "OUTOFORDER", "INOPERATIVE", "UNKNOWN")


class BadBox(ValueError):
    """A bbox parameter that is not `west,south,east,north` in WGS84 degrees."""


@dataclass(frozen=True, slots=True)
class Box:
    """A bounding box; west > east crosses the antimeridian (RFC 7946, 5.2)."""

    west: float
    south: float
    east: float
    north: float

    def holds(self, longitude: float, latitude: float) -> bool:
        if not self.south <= latitude <= self.north:
            return False
        if self.west <= self.east:
            return self.west <= longitude <= self.east
        return longitude >= self.west or longitude <= self.east


def parse_box(text: str) -> Box:
    if len(text) > 200:
        raise BadBox("bbox is too long: give west,south,east,north in degrees, e.g. 4.7,52.3,5.0,52.4")
    parts = text.split(",")
    if len(parts) != 4:
        raise BadBox(f"bbox needs 4 numbers (west,south,east,north), got {len(parts)}")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise BadBox("bbox must be 4 numbers: west,south,east,north, e.g. 4.7,52.3,5.0,52.4") from None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        raise BadBox("bbox numbers must be finite")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise BadBox("bbox longitudes (west, east) must lie between -180 and 180")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise BadBox("bbox latitudes (south, north) must lie between -90 and 90")
    if south > north:
        raise BadBox("bbox south is north of north: give west,south,east,north")
    return Box(west, south, east, north)


def summary(statuses: Iterable[str]) -> str:
    found = set(statuses)
    return next((s for s in _SUMMARY if s in found), "UNKNOWN")


def feature(entry: Entry) -> bytes:
    """The location as one Feature (JSON bytes)."""
    ocpi = entry.open.ocpi
    evses: list[dict[str, Any]] = [
        {
            "uid": evse["uid"],
            "evse_id": evse.get("evse_id"),
            "status": evse["status"],
            "connectors": [
                {
                    "standard": c["standard"],
                    "format": c["format"],
                    "power_type": c["power_type"],
                    "max_electric_power": c["max_electric_power"],
                    "tariff_ids": c["tariff_ids"],
                }
                for c in evse["connectors"]
            ],
            "price_url": f"/opendata/evses/{evse['uid']}/price",
        }
        for evse in ocpi["evses"]
        if evse["status"] != "REMOVED"
    ]
    properties = {
        "id": ocpi["id"],
        "name": ocpi.get("name"),
        "address": ocpi["address"],
        "city": ocpi["city"],
        "postal_code": ocpi.get("postal_code"),
        "country": ocpi["country"],
        "operator": ocpi["operator"]["name"],
        "time_zone": ocpi["time_zone"],
        "opening_times": ocpi["opening_times"],
        "status": summary(e["status"] for e in evses),
        "evse_count": len(evses),
        "available_count": sum(1 for e in evses if e["status"] == "AVAILABLE"),
        "max_electric_power": max(
            (c["max_electric_power"] for e in evses for c in e["connectors"]), default=0
        ),
        "evses": evses,
        "last_updated": ocpi["last_updated"],
    }
    return orjson.dumps(
        {
            "type": "Feature",
            "id": ocpi["id"],
            "geometry": {"type": "Point", "coordinates": [entry.longitude, entry.latitude]},
            "properties": properties,
        }
    )


def collection(features: Iterable[bytes]) -> bytes:
    return b'{"type":"FeatureCollection","features":[' + b",".join(features) + b"]}"
