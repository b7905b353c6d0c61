"""The map on the stations list, in two forms.

- A real map (Leaflet, static/station_map.js): tiles from the configured server
  (`STEKKER_MAP_TILE_URL`), a marker per station coloured by its derived status
  (stekker.domain.station_status), clusters, a popup linking to the station. Its stations
  come from `stations_on_map` as JSON (`map_data`).
- The fallback, always in the page: an inline SVG of each location's point, scaled to the box
  around them, with a link and an accessible name per location, and the same locations as a
  list. No tiles and no script, so it works without internet (a control room behind a
  firewall), with JavaScript off, and whenever the tiles or Leaflet cannot load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, Integer, and_, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.config import Settings
from stekker.db.models import ChargingStation, Location
from stekker.domain.map_tiles import DEFAULT_ATTRIBUTION, csp_source
from stekker.domain.station_status import StationStatus
from stekker.services import station_status
from stekker.web import badges

WIDTH = 640
HEIGHT = 400
PAD = 24
MAX_LOCATIONS = 20_000  # grouped on the map when many: a bound on the work, not on what shows
MAX_STATIONS = 10_000  # markers on the real map (clustered); more: the first ones and a notice
GROUP_ABOVE = 150  # more locations than this: nearby ones are drawn as one point
CELL = 24  # pixels: the grid nearby locations are grouped on


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
    locations: int = 1  # more: a group of nearby locations drawn as one point (a large fleet)

    @property
    def state(self) -> str:
        """ok: every station online; warn: some; bad: none."""
        if self.online >= self.stations:
            return "ok"
        return "warn" if self.online else "bad"


@dataclass(frozen=True, slots=True)
class StationMap:
    """The drawing of the locations: its points (grouped when many), its size, and whether
    there were more locations than it takes."""

    points: list[MapPoint]
    width: int
    height: int
    truncated: bool

    @property
    def grouped(self) -> bool:
        return any(p.locations > 1 for p in self.points)


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
    placed = project(raw)
    return StationMap(group_nearby(placed) if len(placed) > GROUP_ABOVE else placed, WIDTH, HEIGHT, truncated)


def group_nearby(points: list[MapPoint]) -> list[MapPoint]:
    """Locations in the same cell of a `CELL`-pixel grid as one point: a map of thousands of
    locations stays readable, and its page small. A group has no location of its own
    (location_id 0); narrowing the list's filters shows its locations one by one."""
    cells: dict[tuple[int, int], list[MapPoint]] = {}
    for point in points:
        cells.setdefault((int(point.x // CELL), int(point.y // CELL)), []).append(point)
    grouped: list[MapPoint] = []
    for members in cells.values():
        if len(members) == 1:
            grouped.append(members[0])
            continue
        grouped.append(
            MapPoint(
                0,
                members[0].city,
                members[0].city,
                sum(m.stations for m in members),
                sum(m.online for m in members),
                round(sum(m.x for m in members) / len(members), 1),
                round(sum(m.y for m in members) / len(members), 1),
                locations=len(members),
            )
        )
    return grouped


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


@dataclass(frozen=True, slots=True)
class TileLayer:
    """Where the real map's tiles come from (settings map_tile_url, map_tile_attribution) and
    the Content-Security-Policy source that lets the page show them. No url: no real map."""

    url: str
    attribution: str
    source: str | None

    @classmethod
    def of(cls, settings: Settings) -> TileLayer:
        return cls(settings.map_tile_url, settings.map_tile_attribution, csp_source(settings.map_tile_url))

    @property
    def credits_openstreetmap(self) -> bool:
        """The default credit line, which the console says in the reader's language."""
        return self.attribution == DEFAULT_ATTRIBUTION

    @property
    def img_sources(self) -> tuple[str, ...]:
        return (self.source,) if self.source else ()

    @property
    def legend(self) -> list[tuple[str, str]]:
        """(status, colour kind) of every derived status, most urgent first."""
        return [(s.value, badges.STATION_STATUS.get(s, "off")) for s in LEGEND_ORDER]


#: The legend's order, and which colour a group of markers takes: the first one in it.
LEGEND_ORDER: tuple[StationStatus, ...] = (
    StationStatus.FAULTED,
    StationStatus.OFFLINE,
    StationStatus.UNAVAILABLE,
    StationStatus.UNKNOWN,
    StationStatus.CHARGING,
    StationStatus.OCCUPIED,
    StationStatus.RESERVED,
    StationStatus.AVAILABLE,
)


@dataclass(frozen=True, slots=True)
class MapStation:
    """A station as a marker on the real map: where it is and its derived status."""

    station_id: str
    latitude: float
    longitude: float
    status: StationStatus
    place: str  # its location's name and city

    @property
    def kind(self) -> str:
        """The colour it has, the same as its status badge (stekker.web.badges)."""
        return badges.STATION_STATUS.get(self.status, "off")


async def stations_on_map(
    db: AsyncSession, where: list[ColumnElement[bool]]
) -> tuple[list[MapStation], bool]:
    """The stations `where` selects that have a location, with their derived status, and
    whether there were more than MAX_STATIONS (then the first ones by id)."""
    rows = (
        await db.execute(
            select(ChargingStation.id, Location.latitude, Location.longitude, Location.name, Location.city)
            .select_from(ChargingStation)
            .join(Location, Location.id == ChargingStation.location_id)
            .where(and_(*where))
            .order_by(ChargingStation.id)
            .limit(MAX_STATIONS + 1)
        )
    ).all()
    truncated = len(rows) > MAX_STATIONS
    rows = rows[:MAX_STATIONS]
    derived = await station_status.statuses(db, [r[0] for r in rows])
    found = [
        MapStation(
            station_id,
            _coord(latitude),
            _coord(longitude),
            derived[station_id].status if station_id in derived else StationStatus.UNKNOWN,
            f"{name}, {city}",
        )
        for station_id, latitude, longitude, name, city in rows
    ]
    return found, truncated
