"""The open-data cache: the public view of the fleet, kept in memory and updated on change.

Every feed is rendered from here, never from the database per request: a request costs a
join of ready bytes, whatever the fleet's size. The cache follows the event bus: a station's
status, a connect or disconnect, an inventory edit reloads only that station's location; a
tariff taking effect, an import or the periodic resync reloads everything. One worker task
applies the changes in order, coalescing a burst into one read. Each change to an EVSE's status
or price is also published on the live change stream.

Per location an `Entry` holds the OCPI object as JSON bytes and, rendered on first use, each
feed's fragment; a feed's whole body is memoized until the next change, so repeated requests
between changes cost a dictionary lookup. The first request builds the cache (a process that
nobody asks for open data never pays for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import ChargingStation, Location
from stekker.ocpi.location_objects import (
    Identity,
    TariffIndex,
    customers_of,
    evse_uid,
    location_object,
    publishable_evses,
    tariff_index,
)
from stekker.ocpi.location_objects import _with_parts as with_parts
from stekker.ocpi.tariff_objects import published_tariffs, tariff_object
from stekker.opendata.model import OpenLocation, OpenTariff, Publisher
from stekker.opendata.stream import ChangeStream
from stekker.services.context import ServiceContext
from stekker.services.outage import OutageLog

log = logging.getLogger(__name__)

_STATION_TOPICS = (
    "station.status",
    "station.connected",
    "station.disconnected",
    "station.registered",
    "station.changed",
    "station.retired",
    "station.unretired",
)
_LOCATION_TOPICS = ("location.changed",)
_EVERYTHING_TOPICS = ("tariff.activated", "tariff.retired", "inventory.imported", "price_cap.set")
_RETRY_SECONDS = 1.0
_MEMO_LIMIT = 2000
_SLICE = 100  # locations per read or render step of a large fleet
#: fragments that do not change with a status (kept when only a status changed): the DATEX
#: table feeds', named by their paths
STATIC_FRAGMENTS = frozenset({"/datex2/table.json", "/datex2/table.xml"})


@dataclass(slots=True)
class Rendered:
    """One feed body, with its ETag; the gzip form is made on the first request that takes it."""

    body: bytes
    etag: str
    media_type: str
    _gzipped: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=5, mtime=0)
        return self._gzipped


@dataclass(slots=True)
class Entry:
    """One published location, rendered once per change of it."""

    location_id: int
    open: OpenLocation
    ocpi_json: bytes
    last_updated: datetime
    longitude: float
    latitude: float
    retired: bool
    statuses: dict[str, str]  # EVSE uid → OCPI status
    prices: dict[str, tuple[Any, ...]]  # EVSE uid → what prices it (tariff ids and versions)
    static_key: bytes  # everything but statuses and timestamps: a change moves the DATEX table
    fragments: dict[str, Any] = field(default_factory=dict)  # per feed, rendered on first use

    def same_as(self, other: Entry) -> bool:
        """Nothing any feed shows differs (OCPI's last_updated counts whole seconds, so two edits
        in one second can leave the OCPI object alike while the retired flag moved)."""
        return (self.ocpi_json, self.prices, self.retired) == (other.ocpi_json, other.prices, other.retired)

    def fragment(self, name: str, render: Callable[[Entry], Any]) -> Any:
        found = self.fragments.get(name)
        if found is None:
            found = self.fragments[name] = render(self)
        return found


def _static_key(ocpi: dict[str, Any], prices: dict[str, tuple[Any, ...]]) -> bytes:
    """What the static DATEX table shows of a location: all but statuses and timestamps, plus
    the versions of the tariffs pricing it (a new price is a new energy rate)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("status", "last_updated")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    text = orjson.dumps([strip(ocpi), sorted(prices.items())], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).digest()


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _price_signature(ocpi_evse: dict[str, Any], tariffs: dict[str, OpenTariff]) -> tuple[Any, ...]:
    return tuple(
        (
            connector["id"],
            tuple(
                (code, tariffs[code].ocpi.get("last_updated") if code in tariffs else None)
                for code in connector["tariff_ids"]
            ),
        )
        for connector in ocpi_evse["connectors"]
    )


class OpenDataCache:
    """The public fleet in memory (see the module docstring); `stream` carries its changes."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._outage = OutageLog("open data", log)
        country, party = ctx.settings.party
        self.publisher = Publisher(country, party, ctx.settings.business_name or "Stekker")
        self.stream = ChangeStream(ctx.settings.opendata_stream_backlog)
        self.entries: dict[int, Entry] = {}
        self.tariffs: dict[str, OpenTariff] = {}
        self.changed_at = ctx.now()
        self.static_changed_at = self.changed_at
        self._ordered: list[Entry] | None = None
        self._memo: dict[tuple[Any, ...], Rendered] = {}
        self._static_memo: dict[tuple[Any, ...], Rendered] = {}
        self._station_location: dict[str, int] = {}
        self._index: TariffIndex | None = None
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._everything = True
        self._dirty_locations: set[int] = set()
        self._dirty_stations: set[str] = set()
        self._worker: asyncio.Task[None] | None = None
        self._resync: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._stopped = False

    # --- life cycle ---------------------------------------------------------------------------

    async def ready(self) -> None:
        """Start on first use and wait for the first build."""
        if self._worker is None and not self._stopped:
            bus = self.ctx.bus
            self._unsubscribe = [
                *(bus.subscribe(t, self._on_station) for t in _STATION_TOPICS),
                *(bus.subscribe(t, self._on_location) for t in _LOCATION_TOPICS),
                *(bus.subscribe(t, self._on_everything) for t in _EVERYTHING_TOPICS),
            ]
            self._worker = asyncio.create_task(self._run(), name="opendata-cache")
            self._resync = asyncio.create_task(self._resync_now_and_then(), name="opendata-resync")
            self._wake.set()
        await self._ready.wait()

    async def stop(self) -> None:
        self._stopped = True
        self.stream.close()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for task in (self._worker, self._resync):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # --- following the bus --------------------------------------------------------------------

    async def _on_station(self, event: Event) -> None:
        station_id = event.data.get("station_id")
        if isinstance(station_id, str):
            self._dirty_stations.add(station_id)
            self._wake.set()

    async def _on_location(self, event: Event) -> None:
        location_id = event.data.get("location_id")
        if isinstance(location_id, int):
            self._dirty_locations.add(location_id)
            self._wake.set()

    async def _on_everything(self, _event: Event) -> None:
        self._everything = True
        self._wake.set()

    async def _resync_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.settings.opendata_resync_interval)
            await self._on_everything(Event("opendata.resync", {}))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            everything, self._everything = self._everything, False
            locations, self._dirty_locations = self._dirty_locations, set()
            stations, self._dirty_stations = self._dirty_stations, set()
            try:
                if everything:
                    await self._reload_everything()
                elif locations or stations:
                    await self._reload(locations, stations)
                self._outage.ok()
            except Exception as exc:
                self._outage.failed_or_log(
                    exc, "open data: reloading failed; retrying in %.0f s", _RETRY_SECONDS
                )
                self._everything = self._everything or everything
                self._dirty_locations |= locations
                self._dirty_stations |= stations
                await asyncio.sleep(_RETRY_SECONDS)
                self._wake.set()

    # --- reading ------------------------------------------------------------------------------

    async def _read_tariffs(self, db: AsyncSession, now: datetime) -> None:
        self._index = await tariff_index(db, customers_of(()), now)
        country, party = self.ctx.settings.party
        self.tariffs = {
            p.record.code: OpenTariff(tariff_object(p, country, party).wire())
            for p in await published_tariffs(db, now)
        }

    async def _reload_everything(self) -> None:
        now = self.ctx.now()
        fresh: dict[int, Entry] = {}
        station_location: dict[str, int] = {}
        async with self.ctx.db() as db:
            await self._read_tariffs(db, now)
            assert self._index is not None
            index = replace(self._index, at=now)
            ids = list((await db.execute(select(Location.id).order_by(Location.id))).scalars())
            # in slices, so a large fleet never holds the event loop (and the stations) for long
            for start in range(0, len(ids), _SLICE):
                chunk = ids[start : start + _SLICE]
                query = select(Location).options(with_parts()).where(Location.id.in_(chunk))
                for location in (await db.execute(query)).scalars():
                    entry = self._entry(location, index, self.entries.get(location.id), now)
                    if entry is not None:
                        fresh[location.id] = entry
                    station_location.update((station.id, location.id) for station in location.stations)
                db.expunge_all()
                await asyncio.sleep(0)
        self._replace(fresh.keys() | self.entries.keys(), fresh, now)
        self._station_location = station_location
        self._ready.set()

    async def warm(self, name: str, render: Callable[[Entry], Any], entries: Iterable[Entry]) -> None:
        """Render the missing `name` fragments a few at a time, letting the event loop serve
        stations in between (the first request of a feed renders every location once)."""
        for count, entry in enumerate(e for e in entries if name not in e.fragments):
            entry.fragment(name, render)
            if count % _SLICE == _SLICE - 1:
                await asyncio.sleep(0)

    async def _reload(self, location_ids: set[int], station_ids: set[str]) -> None:
        now = self.ctx.now()
        wanted = set(location_ids)
        async with self.ctx.db() as db:
            if station_ids:
                rows = await db.execute(
                    select(ChargingStation.id, ChargingStation.location_id).where(
                        ChargingStation.id.in_(station_ids)
                    )
                )
                for station_id, location_id in rows:
                    previous = self._station_location.get(station_id)
                    if previous is not None and previous != location_id:
                        wanted.add(previous)  # the station moved: its old location changed too
                    if location_id is not None:
                        self._station_location[station_id] = location_id
                        wanted.add(location_id)
                    else:
                        self._station_location.pop(station_id, None)
            if not wanted:
                return
            locations = list(
                (
                    await db.execute(select(Location).options(with_parts()).where(Location.id.in_(wanted)))
                ).scalars()
            )
        assert self._index is not None
        index = replace(self._index, at=now)
        fresh: dict[int, Entry] = {}
        for location in locations:
            entry = self._entry(location, index, self.entries.get(location.id), now)
            if entry is not None:
                fresh[location.id] = entry
        self._replace(wanted, fresh, now)

    def _entry(
        self, location: Location, index: TariffIndex, old: Entry | None, now: datetime
    ) -> Entry | None:
        if not publishable_evses(location):
            return None
        identity = Identity(self.publisher.country_code, self.publisher.party_id, self.publisher.name)
        ocpi = location_object(location, identity, index).wire()
        prices = {e["uid"]: _price_signature(e, self.tariffs) for e in ocpi["evses"]}
        static_key = _static_key(ocpi, prices)
        if old is not None and old.static_key == static_key:
            static_changed_at = old.open.static_changed_at
        elif old is not None:
            # a DATEX version counts whole seconds and must move forward
            static_changed_at = max(
                now.replace(microsecond=0), old.open.static_changed_at + timedelta(seconds=1)
            )
        else:
            # first seen by this process: now, so a version never goes back after a restart
            static_changed_at = now.replace(microsecond=0)
        station_of = {
            evse_uid(station.id, evse.evse_number, evse.evse_id): station.id
            for station, evse in publishable_evses(location)
        }
        return Entry(
            location_id=location.id,
            open=OpenLocation(ocpi, station_of, static_changed_at),
            ocpi_json=orjson.dumps(ocpi),
            last_updated=_parse_time(ocpi["last_updated"]),
            longitude=float(location.longitude),
            latitude=float(location.latitude),
            retired=location.retired_at is not None,
            statuses={e["uid"]: e["status"] for e in ocpi["evses"]},
            prices=prices,
            static_key=static_key,
        )

    # --- applying a change --------------------------------------------------------------------

    def _replace(self, keys: Iterable[int], fresh: dict[int, Entry], now: datetime) -> None:
        """Swap in the new entries for `keys` (absent from `fresh`: gone), publishing each EVSE
        whose status or price changed."""
        changed = static = False
        for key in sorted(keys):
            old, new = self.entries.get(key), fresh.get(key)
            if old is None and new is None:
                continue
            if old is not None and new is not None and old.same_as(new):
                continue  # nothing a reader sees moved: keep the rendered fragments
            changed = True
            if old is None or new is None or old.static_key != new.static_key:
                static = True
            self._announce(key, old, new, now)
            if old is not None and new is not None and old.static_key == new.static_key:
                # a status moved: what the static feeds show of the location did not
                new.fragments.update({k: v for k, v in old.fragments.items() if k in STATIC_FRAGMENTS})
            if new is None:
                del self.entries[key]
            else:
                self.entries[key] = new
        if changed:
            self.changed_at = now
            self._memo.clear()
            self._ordered = None
        if static:
            self.static_changed_at = now
            self._static_memo.clear()

    def _announce(self, location_id: int, old: Entry | None, new: Entry | None, now: datetime) -> None:
        if not self._ready.is_set():
            return  # the first build: nothing changed for anyone yet
        before = old.statuses if old is not None else {}
        after = new.statuses if new is not None else {}
        at = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
        for uid in sorted(before.keys() | after.keys()):
            status = after.get(uid, "REMOVED")
            previous = before.get(uid)
            if status != previous:
                self.stream.publish(
                    "status",
                    {"location_id": str(location_id), "evse_uid": uid, "status": status,
                     "previous": previous, "at": at},
                )  # fmt: skip
            if (
                new is not None
                and uid in new.prices
                and (old is None or old.prices.get(uid) != new.prices[uid])
            ):
                self.stream.publish(
                    "price",
                    {
                        "location_id": str(location_id),
                        "evse_uid": uid,
                        "tariff_ids": sorted({code for _, codes in new.prices[uid] for code, _ in codes}),
                        "price_url": f"/opendata/evses/{uid}/price",
                        "at": at,
                    },
                )

    # --- what the feeds read ------------------------------------------------------------------

    def ordered(self) -> list[Entry]:
        """The published locations by id (stable pages)."""
        if self._ordered is None:
            self._ordered = [self.entries[k] for k in sorted(self.entries)]
        return self._ordered

    def rendered(
        self, key: tuple[Any, ...], render: Callable[[], bytes], media_type: str, *, static: bool = False
    ) -> Rendered:
        """A feed body for `key`, rendered once until the next change (of anything but a status, if
        `static`)."""
        memo = self._static_memo if static else self._memo
        found = memo.get(key)
        if found is None:
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()  # many distinct queries between two changes: start over
            body = render()
            # content-addressed: the same body has the same ETag, also after a restart
            found = memo[key] = Rendered(
                body, f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"', media_type
            )
        return found

    def published_tariffs(self) -> list[OpenTariff]:
        """The tariffs some published connector names (an ad-hoc driver pays them), by code."""
        named = {code for entry in self.entries.values() for sig in entry.prices.values() for _, codes in sig
                 for code, _ in codes}  # fmt: skip
        return [self.tariffs[code] for code in sorted(named) if code in self.tariffs]
