"""The map of locations on the stations list: an inline SVG of each location's point, scaled
to the box around them, with a link and an accessible name per location, and the same
locations as a list. No map tiles, so it works without internet (tests, a control room
behind a firewall)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, Integer, and_, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingStation, Location

WIDTH = 640
HEIGHT = 400
PAD = 24
MAX_LOCATIONS = 2000


@dataclass(frozen=True, slots=True)
class MapPoint:
    """A location with the stations of the current filter: where it is drawn and how many are
    online."""

    location_id: int
    name: str
    city: str
    stations: int
    online: int
    x: float = 0.0
    y: float = 0.0

    @property
    def state(self) -> str:
        """ok: every station online; warn: some; bad: none."""
        if self.online >= self.stations:
            return "ok"
        return "warn" if self.online else "bad"


@dataclass(frozen=True, slots=True)
class StationMap:
    points: list[MapPoint]
    width: int
    height: int
    truncated: bool


async def locations(db: AsyncSession, where: list[ColumnElement[bool]]) -> StationMap:
    """The locations of the stations `where` selects (the list's filters), projected."""
    rows = (
        await db.execute(
            select(
                Location.id,
                Location.name,
                Location.city,
                Location.latitude,
                Location.longitude,
                func.count(ChargingStation.id),
                func.sum(cast(ChargingStation.online, Integer)),
            )
            .select_from(ChargingStation)
            .join(Location, Location.id == ChargingStation.location_id)
            .where(and_(*where))
            .group_by(Location.id, Location.name, Location.city, Location.latitude, Location.longitude)
            .order_by(Location.name, Location.id)
            .limit(MAX_LOCATIONS + 1)
        )
    ).all()
    truncated = len(rows) > MAX_LOCATIONS
    raw = [
        (MapPoint(r[0], r[1], r[2], int(r[5]), int(r[6] or 0)), _coord(r[3]), _coord(r[4]))
        for r in rows[:MAX_LOCATIONS]
    ]
    return StationMap(project(raw), WIDTH, HEIGHT, truncated)


def _coord(value: Decimal | float | None) -> float:
    return float(value) if value is not None else 0.0


def project(raw: list[tuple[MapPoint, float, float]]) -> list[MapPoint]:
    """Place (point, latitude, longitude) in the drawing: equirectangular around the mean
    latitude (fine at a city's or country's scale), scaled to fit, north up."""
    if not raw:
        return []
    lats = [lat for _, lat, _ in raw]
    lons = [lon for _, _, lon in raw]
    shrink = math.cos(math.radians(sum(lats) / len(lats)))
    min_x, max_x = min(lons) * shrink, max(lons) * shrink
    min_y, max_y = min(lats), max(lats)
    span = max(max_x - min_x, (max_y - min_y), 1e-9)
    scale = min((WIDTH - 2 * PAD) / span, (HEIGHT - 2 * PAD) / span)
    off_x = (WIDTH - (max_x - min_x) * scale) / 2
    off_y = (HEIGHT - (max_y - min_y) * scale) / 2
    placed = []
    for point, lat, lon in raw:
        x = off_x + (lon * shrink - min_x) * scale
        y = off_y + (max_y - lat) * scale
        placed.append(
            MapPoint(
                point.location_id,
                point.name,
                point.city,
                point.stations,
                point.online,
                round(x, 1),
                round(y, 1),
            )
        )
    return placed
