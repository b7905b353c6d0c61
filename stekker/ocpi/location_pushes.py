"""Locations and tariffs pushed to partners that receive them (OCPI 2.2.1 Locations and
Tariffs, CPO as sender): an EVSE's status within seconds of the station's StatusNotification,
a whole location when it changes, a tariff when it takes effect or is retired (after the
municipality's approval). Each partner gets its own objects (its contract tariffs, its
tariff_ids); everything goes through the outbox, so a partner that is down blocks nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.cluster.claims import lock_for_transaction
from stekker.db.models import ChargingStation
from stekker.db.models_ocpi import OcpiPartner, PartnerStatus
from stekker.ocpi.location_objects import (
    Identity,
    customers_of,
    evse_object,
    load_location,
    location_object,
    parties_of,
    tariff_index,
)
from stekker.ocpi.tariff_objects import published_tariffs, tariff_object
from stekker.services.context import ServiceContext
from stekker.services.ocpi_outbox import announce, enqueue_unless_pending

log = logging.getLogger(__name__)

_LOCATION_EVENTS = ("station.registered", "station.changed", "station.retired", "station.unretired")


def _identity(ctx: ServiceContext) -> Identity:
    country, party = ctx.settings.party
    return Identity(country, party, ctx.settings.business_name)


def _parties(partner: OcpiPartner) -> list[str]:
    roles = tuple(
        (str(r.get("country_code", "")), str(r.get("party_id", "")), str(r.get("role", "")))
        for r in partner.roles or ()
        if isinstance(r, dict)
    )
    return parties_of(partner.country_code, partner.party_id, roles)


async def _anyone_receives(ctx: ServiceContext, module: str) -> bool:
    """A read before any write: with no partner receiving `module`, a station's status costs
    no write transaction at all."""
    async with ctx.db() as db:
        return bool(await _receivers(db, module))


async def _receivers(db: AsyncSession, module: str) -> list[tuple[OcpiPartner, str]]:
    partners = (
        await db.execute(select(OcpiPartner).where(OcpiPartner.status == PartnerStatus.REGISTERED))
    ).scalars()
    return [
        (p, p.endpoints[f"{module}:RECEIVER"].rstrip("/"))
        for p in partners
        if (p.endpoints or {}).get(f"{module}:RECEIVER")
    ]


async def push_evse_status(ctx: ServiceContext, station_id: str, evse_number: int) -> int:
    """PATCH the EVSE's status (and last_updated) to every location receiver."""
    if not await _anyone_receives(ctx, "locations"):
        return 0
    now = ctx.now()
    country, party = ctx.settings.party

    async def job(db: AsyncSession) -> int:
        receivers = await _receivers(db, "locations")
        station = await db.get(ChargingStation, station_id)
        if station is None or station.location_id is None:
            return 0
        # several processes queue this location's pushes: one at a time, each reading the state
        # after the last one committed, so the outbox's order (ids) is the order of the states
        await lock_for_transaction(db, f"outbox:location:{station.location_id}")
        location = await load_location(db, station.location_id)
        if location is None:
            return 0
        evses = [
            (s, e)
            for s in location.stations
            for e in s.evses
            if s.id == station_id and (evse_number in (0, e.evse_number))
        ]
        queued = 0
        for partner, url in receivers:
            index = await tariff_index(db, customers_of(_parties(partner)), now)
            for owner, evse in evses:
                if not evse.connectors:
                    continue
                wire = evse_object(location, owner, evse, index).wire()
                body = {"status": wire["status"], "last_updated": wire["last_updated"]}
                path = f"/{country}/{party}/{location.id}/{wire['uid']}"
                key = f"location:{location.id}"
                if await enqueue_unless_pending(
                    db, partner_id=partner.id, kind="locations", key=key, method="PATCH", url=url + path,
                    body=body, at=now,
                ):  # fmt: skip
                    queued += 1
        return queued

    return await ctx.write(job)


async def push_location(ctx: ServiceContext, location_id: int) -> int:
    """PUT the whole location to every location receiver (each with its own tariff_ids)."""
    if not await _anyone_receives(ctx, "locations"):
        return 0
    now = ctx.now()
    country, party = ctx.settings.party
    identity = _identity(ctx)

    async def job(db: AsyncSession) -> int:
        receivers = await _receivers(db, "locations")
        if receivers:
            await lock_for_transaction(db, f"outbox:location:{location_id}")  # as in push_evse_status
        location = await load_location(db, location_id) if receivers else None
        if location is None or not any(e.connectors for s in location.stations for e in s.evses):
            return 0  # OCPI wants at least one EVSE with a connector
        queued = 0
        for partner, url in receivers:
            index = await tariff_index(db, customers_of(_parties(partner)), now)
            body = location_object(location, identity, index).wire()
            if await enqueue_unless_pending(
                db, partner_id=partner.id, kind="locations", key=f"location:{location.id}", method="PUT",
                url=f"{url}/{country}/{party}/{location.id}", body=body, at=now,
            ):  # fmt: skip
                queued += 1
        return queued

    return await ctx.write(job)


async def push_tariff(ctx: ServiceContext, code: str) -> int:
    """PUT the tariff as it now stands to every tariff receiver that may see it, or DELETE it
    when it is retired; then every location again (their tariff_ids changed)."""
    now = ctx.now()
    country, party = ctx.settings.party

    async def job(db: AsyncSession) -> tuple[int, list[int]]:
        receivers = await _receivers(db, "tariffs")
        queued = 0
        await lock_for_transaction(db, f"outbox:tariff:{code}")  # as in push_evse_status
        for partner, url in receivers:
            published = {p.record.code: p for p in await published_tariffs(db, now, _parties(partner))}
            path = f"{url}/{country}/{party}/{code}"
            if code in published:
                method, body = "PUT", tariff_object(published[code], country, party).wire()
            else:
                method, body = "DELETE", None
            if await enqueue_unless_pending(
                db, partner_id=partner.id, kind="tariffs", key=f"tariff:{code}", method=method, url=path,
                body=body, at=now,
            ):  # fmt: skip
                queued += 1
        located = await db.execute(
            select(ChargingStation.location_id).where(ChargingStation.location_id.is_not(None)).distinct()
        )
        return queued, [row[0] for row in located.all() if row[0] is not None]

    queued, locations = await ctx.write(job)
    for location_id in locations:
        queued += await push_location(ctx, location_id)
    return queued


class LocationPushes:
    """Turns station, location and tariff events into pushes (started with the app).

    In a cluster it listens as the consumer group "ocpi-location-pushes": each event queues
    its pushes once in the whole cluster (not once per worker), and an event whose worker
    died before acknowledging it is handled again by another. Handling one twice is
    harmless: every push carries the object as it is now, and one identical to the push
    still waiting for the same URL is not queued again (`enqueue_unless_pending`). A push
    that cannot be queued (the database away) raises, so the event comes back later.
    `on_queued` is called after pushes were queued; the outbox's deliverer is woken in any
    process through `ocpi_outbox.announce`."""

    GROUP = "ocpi-location-pushes"

    def __init__(self, ctx: ServiceContext, on_queued: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        self.on_queued = on_queued or (lambda: None)
        self._unsubscribe: list[Callable[[], None]] = []

    async def start(self) -> None:
        bus = self.ctx.bus
        group = self.GROUP
        self._unsubscribe = [
            bus.subscribe("station.status", self._status, group=group),
            bus.subscribe("tariff.activated", self._tariff, group=group),
            bus.subscribe("tariff.retired", self._tariff, group=group),
            *(bus.subscribe(topic, self._station, group=group) for topic in _LOCATION_EVENTS),
        ]

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(ValueError):
                unsubscribe()
        self._unsubscribe = []

    async def _guarded(self, what: str, work: Any) -> None:
        try:
            queued = await work
        except asyncio.CancelledError:
            raise
        except Exception:
            # raised on: a consumer group hands the event out again (the in-process bus logs it)
            log.warning("could not queue the OCPI push for %s; the event is handled again later", what)
            raise
        if queued:
            self.on_queued()
            await announce(self.ctx)

    async def _status(self, event: Event) -> None:
        station_id, evse_number = event.data.get("station_id"), event.data.get("evse_number")
        if isinstance(station_id, str) and isinstance(evse_number, int):
            await self._guarded(
                f"{station_id}/{evse_number}", push_evse_status(self.ctx, station_id, evse_number)
            )

    async def _station(self, event: Event) -> None:
        station_id = event.data.get("station_id")
        if not isinstance(station_id, str):
            return
        async with self.ctx.db() as db:
            location_id = (
                await db.execute(select(ChargingStation.location_id).where(ChargingStation.id == station_id))
            ).scalar_one_or_none()
        if location_id is not None:
            await self._guarded(f"location {location_id}", push_location(self.ctx, location_id))

    async def _tariff(self, event: Event) -> None:
        code = event.data.get("tariff")
        if isinstance(code, str):
            await self._guarded(f"tariff {code}", push_tariff(self.ctx, code))
