"""Run a fleet of simulated charge points against a central system.

Each station keeps its connection up (reconnecting with exponential backoff and jitter when it drops) and,
when ``session_every`` is set, drivers produce charging sessions on it: on a free connector, stopped again
after a while. Each connector has its driver, and each driver its own card (``driver_cards``): a card is
never presented while it is in a session elsewhere, so the central system has no reason to refuse it
(OCPP ConcurrentTx). Connectors listed in ``idle_connectors`` are left alone (the demo keeps one free for
the person trying it). Every fifth station (1, 6, 11, ...) also starts a long session on connector 1 right
after it boots, so a demo has sessions in progress immediately.

Stations speak OCPP 1.6 (:class:`~stekker.sim.station.SimulatedStation`), OCPP 2.0.1
(:class:`~stekker.sim.station201.SimulatedStation201`, whose EVSEs play the part of connectors here) or,
in a mixed fleet, 1.6 and 2.0.1 in turn: odd station numbers 1.6, even ones 2.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Collection, Mapping
from typing import Literal, Protocol

from stekker.sim.station import SimulatedStation
from stekker.sim.station201 import SimulatedStation201

logger = logging.getLogger("stekker.sim")

#: Stations 1, 1+N, 1+2N, ... keep a long session running on connector 1.
LONG_SESSION_EVERY_N_STATIONS = 5
LONG_SESSION_SECONDS = (4 * 3600.0, 10 * 3600.0)
MAX_BACKOFF = 60.0

OcppVersion = Literal["1.6", "2.0.1", "mixed"]
OCPP_VERSIONS: tuple[OcppVersion, ...] = ("1.6", "2.0.1", "mixed")


class SessionStation(Protocol):
    """What the fleet needs of a simulated station, whatever OCPP version it speaks. A "connector" is the
    numbered outlet a session runs on: a 1.6 connector or a 2.0.1 EVSE."""

    station_id: str

    @property
    def is_online(self) -> bool: ...

    async def wait_online(self, timeout: float | None = None) -> None: ...

    async def run(self) -> None: ...

    async def close(self) -> None: ...

    def free_connector(self, /) -> int | None: ...

    def is_connector_free(self, connector: int, /) -> bool: ...

    def active_transactions(self) -> Mapping[int, int | str]: ...

    async def start_session(self, connector: int, id_tag: str, /) -> int | str | None: ...

    async def stop_session(self, connector: int, reason: str, /) -> None: ...


def parse_ocpp_version(value: str) -> OcppVersion:
    """``value`` as an OcppVersion; ValueError when the simulator does not speak it."""
    for version in OCPP_VERSIONS:
        if value.strip() == version:
            return version
    raise ValueError(f"unknown OCPP version {value!r}: choose one of {', '.join(OCPP_VERSIONS)}")


def version_of(index: int, ocpp_version: OcppVersion) -> Literal["1.6", "2.0.1"]:
    """The OCPP version station number ``index`` (from 1) speaks in a fleet of ``ocpp_version``."""
    if ocpp_version == "mixed":
        return "1.6" if index % 2 == 1 else "2.0.1"
    return ocpp_version


def make_station(
    station_id: str,
    base_url: str,
    version: Literal["1.6", "2.0.1"],
    *,
    connectors: int,
    password: str | None,
    meter_interval: int,
    rng: random.Random,
) -> SessionStation:
    """A simulated station of ``version`` with ``connectors`` outlets (2.0.1: EVSEs of one connector)."""
    if version == "2.0.1":
        return SimulatedStation201(
            station_id,
            base_url,
            evses=connectors,
            password=password,
            tx_updated_interval=meter_interval,
            rng=rng,
        )
    return SimulatedStation(
        station_id, base_url, connectors=connectors, password=password, meter_interval=meter_interval, rng=rng
    )


def default_id_tags(count: int = 20, seed: int = 16) -> list[str]:
    """RFID-card-like id tags (7-byte NFC UIDs, hex), the same on every run."""
    rng = random.Random(seed)
    return [f"04{rng.getrandbits(48):012X}" for _ in range(count)]


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop`` is set; True when stopping."""
    if stop.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    return stop.is_set()


async def _keep_connected(
    station: SessionStation, stop: asyncio.Event, index: int, rng: random.Random
) -> None:
    """Run the station, reconnecting with exponential backoff (1 s .. 60 s, jittered) after failures."""
    if await _wait(stop, index * 0.02):  # stagger the initial connects a little
        return
    backoff = 1.0
    while not stop.is_set():
        started = time.monotonic()
        try:
            await station.run()
        except Exception as exc:
            if stop.is_set():
                return
            logger.info("%s: connection failed or lost (%s: %s)", station.station_id, type(exc).__name__, exc)
        else:
            return  # closed on purpose
        if time.monotonic() - started > 2 * MAX_BACKOFF:
            backoff = 1.0  # it was up for a while: start over with short delays
        delay = backoff * rng.uniform(0.5, 1.5)
        backoff = min(backoff * 2, MAX_BACKOFF)
        if await _wait(stop, delay):
            return


def driver_cards(cards: list[str], stations: int, connectors: int) -> dict[tuple[int, int], str]:
    """The card of each driver: (station number from 1, connector) -> card, dealt in order, so that
    with at least ``stations * connectors`` cards every driver has a card of its own. With fewer,
    cards are dealt round and a driver waits while its card is in a session elsewhere."""
    if not cards:
        raise ValueError("the drivers need at least one card")
    seats = [(i, c) for i in range(1, stations + 1) for c in range(1, connectors + 1)]
    return {seat: cards[n % len(cards)] for n, seat in enumerate(seats)}


class CardHolders:
    """Which station connectors share each card, to tell whether a card is in a session right now
    (read from the stations themselves, so a session stopped remotely frees its card at once)."""

    def __init__(self, cards: Mapping[tuple[int, int], str], stations: Mapping[int, SessionStation]) -> None:
        self._stations = stations
        self._holders: dict[str, list[tuple[int, int]]] = {}
        for seat, card in cards.items():
            self._holders.setdefault(card, []).append(seat)

    def in_session(self, card: str) -> bool:
        return any(
            connector in self._stations[index].active_transactions()
            for index, connector in self._holders.get(card, [])
            if index in self._stations
        )


async def _stop_later(
    station: SessionStation, connector_id: int, transaction_id: int | str, after: float, rng: random.Random
) -> None:
    await asyncio.sleep(after)
    if station.active_transactions().get(connector_id) == transaction_id:
        reason = "EVDisconnected" if rng.random() < 0.2 else "Local"
        await station.stop_session(connector_id, reason)


async def _drive_sessions(
    station: SessionStation,
    stop: asyncio.Event,
    index: int,
    cards: Mapping[int, str],
    holders: CardHolders,
    session_every: float,
    rng: random.Random,
) -> None:
    """Produce charging sessions on one station: on average one new session every ``session_every``
    seconds (exponentially distributed), each lasting 0.5..3 x ``session_every``, by the driver of a
    free connector among ``cards`` (connector -> the card its driver holds)."""
    long_running = (index - 1) % LONG_SESSION_EVERY_N_STATIONS == 0 and 1 in cards
    stoppers: set[asyncio.Task[None]] = set()

    def schedule_stop(connector_id: int, tx: int | str, after: float) -> None:
        task = asyncio.create_task(_stop_later(station, connector_id, tx, after, rng))
        stoppers.add(task)
        task.add_done_callback(stoppers.discard)

    def ready(connector_id: int) -> bool:
        return station.is_connector_free(connector_id) and not holders.in_session(cards[connector_id])

    now = time.monotonic()
    next_random = now + rng.expovariate(1.0 / session_every)
    next_long = now if long_running else float("inf")
    try:
        while not stop.is_set():
            if not station.is_online:
                with contextlib.suppress(TimeoutError):
                    await station.wait_online(timeout=5.0)
                continue
            now = time.monotonic()
            if now >= next_long:
                next_long = now + session_every
                if ready(1):
                    tx = await station.start_session(1, cards[1])
                    if tx is not None:
                        schedule_stop(1, tx, rng.uniform(*LONG_SESSION_SECONDS))
            if now >= next_random:
                next_random = now + rng.expovariate(1.0 / session_every)
                free = [connector_id for connector_id in sorted(cards) if ready(connector_id)]
                if free:
                    connector_id = rng.choice(free)
                    tx = await station.start_session(connector_id, cards[connector_id])
                    if tx is not None:
                        schedule_stop(connector_id, tx, rng.uniform(0.5, 3.0) * session_every)
            if await _wait(stop, min(next_random, next_long) - time.monotonic()):
                return
    finally:
        for task in stoppers:
            task.cancel()


async def run_fleet(
    base_url: str,
    count: int,
    prefix: str = "SIM",
    connectors: int = 2,
    id_tags: list[str] | None = None,
    session_every: float | None = 60.0,
    meter_interval: float = 10.0,
    password: str | None = None,
    stop_event: asyncio.Event | None = None,
    ocpp_version: OcppVersion = "1.6",
    idle_connectors: Collection[tuple[int, int]] = (),
) -> None:
    """Run ``count`` simulated stations ``{prefix}001``.. against ``base_url`` until ``stop_event`` is set
    (or the task is cancelled), speaking ``ocpp_version`` ("mixed": 1.6 and 2.0.1 in turn). The drivers'
    cards are ``id_tags``, dealt one per connector (see ``driver_cards``); no driver uses the connectors
    in ``idle_connectors`` ((station number, connector) pairs). On the way out running sessions are
    stopped cleanly (reason Other) when the station is online, then all stations are closed."""
    stop = stop_event if stop_event is not None else asyncio.Event()
    tags = list(id_tags) if id_tags else default_id_tags()
    cards = driver_cards(tags, count, connectors)
    for station_number, connector in idle_connectors:
        cards.pop((station_number, connector), None)
    rng = random.Random()
    stations = [
        make_station(
            f"{prefix}{i:03d}",
            base_url,
            version_of(i, ocpp_version),
            connectors=connectors,
            password=password,
            meter_interval=max(1, round(meter_interval)),
            rng=random.Random(rng.random()),
        )
        for i in range(1, count + 1)
    ]
    holders = CardHolders(cards, dict(enumerate(stations, start=1)))
    logger.info("starting %d simulated stations (OCPP %s) against %s", count, ocpp_version, base_url)
    connections: list[asyncio.Task[None]] = []
    drivers: list[asyncio.Task[None]] = []
    for index, station in enumerate(stations, start=1):
        connections.append(
            asyncio.create_task(_keep_connected(station, stop, index, random.Random(rng.random())))
        )
        if session_every:
            drivers.append(
                asyncio.create_task(
                    _drive_sessions(
                        station,
                        stop,
                        index,
                        {c: card for (i, c), card in cards.items() if i == index},
                        holders,
                        session_every,
                        random.Random(rng.random()),
                    )
                )
            )
    try:
        await stop.wait()
    finally:
        stop.set()
        for task in drivers:
            task.cancel()
        await asyncio.gather(*drivers, return_exceptions=True)

        async def wind_down(station: SessionStation) -> None:
            if station.is_online:
                for connector_id in list(station.active_transactions()):
                    await station.stop_session(connector_id, "Other")
            await station.close()

        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(
                asyncio.gather(*(wind_down(s) for s in stations), return_exceptions=True), 15
            )
        for station in stations:
            await station.close()
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        logger.info("simulated stations stopped")
