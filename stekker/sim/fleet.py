"""Run a fleet of simulated charge points against a central system.

Each station keeps its connection up (reconnecting with exponential backoff and jitter when it drops) and,
when ``session_every`` is set, a "driver" produces charging sessions on it: a random id tag on a free
connector, stopped again after a while. Every fifth station (1, 6, 11, ...) also starts a long session on
connector 1 right after it boots, so a demo has sessions in progress immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from stekker.sim.station import SimulatedStation

logger = logging.getLogger("stekker.sim")

#: Stations 1, 1+N, 1+2N, ... keep a long session running on connector 1.
LONG_SESSION_EVERY_N_STATIONS = 5
LONG_SESSION_SECONDS = (4 * 3600.0, 10 * 3600.0)
MAX_BACKOFF = 60.0


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
    station: SimulatedStation, stop: asyncio.Event, index: int, rng: random.Random
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


async def _stop_later(
    station: SimulatedStation, connector_id: int, transaction_id: int, after: float
) -> None:
    await asyncio.sleep(after)
    if station.connectors[connector_id].transaction_id == transaction_id:
        reason = "EVDisconnected" if station.rng.random() < 0.2 else "Local"
        await station.stop_session(connector_id, reason)


async def _drive_sessions(
    station: SimulatedStation,
    stop: asyncio.Event,
    index: int,
    id_tags: list[str],
    session_every: float,
    rng: random.Random,
) -> None:
    """Produce charging sessions on one station: on average one new session every ``session_every``
    seconds (exponentially distributed), each lasting 0.5..3 x ``session_every``."""
    long_running = (index - 1) % LONG_SESSION_EVERY_N_STATIONS == 0
    stoppers: set[asyncio.Task[None]] = set()

    def schedule_stop(connector_id: int, tx: int, after: float) -> None:
        task = asyncio.create_task(_stop_later(station, connector_id, tx, after))
        stoppers.add(task)
        task.add_done_callback(stoppers.discard)

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
                if station.connectors[1].transaction_id is None and station.connectors[1].is_free_for():
                    tx = await station.start_session(1, rng.choice(id_tags))
                    if tx is not None:
                        schedule_stop(1, tx, rng.uniform(*LONG_SESSION_SECONDS))
            if now >= next_random:
                next_random = now + rng.expovariate(1.0 / session_every)
                connector_id = station.free_connector()
                if connector_id is not None:
                    tx = await station.start_session(connector_id, rng.choice(id_tags))
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
) -> None:
    """Run ``count`` simulated stations ``{prefix}001``.. against ``base_url`` until ``stop_event`` is set
    (or the task is cancelled). On the way out running sessions are stopped cleanly (reason Other) when
    the station is online, then all stations are closed."""
    stop = stop_event if stop_event is not None else asyncio.Event()
    tags = list(id_tags) if id_tags else default_id_tags()
    rng = random.Random()
    stations = [
        SimulatedStation(
            f"{prefix}{i:03d}",
            base_url,
            connectors=connectors,
            password=password,
            meter_interval=max(1, round(meter_interval)),
            rng=random.Random(rng.random()),
        )
        for i in range(1, count + 1)
    ]
    logger.info("starting %d simulated stations against %s", count, base_url)
    connections: list[asyncio.Task[None]] = []
    drivers: list[asyncio.Task[None]] = []
    for index, station in enumerate(stations, start=1):
        connections.append(
            asyncio.create_task(_keep_connected(station, stop, index, random.Random(rng.random())))
        )
        if session_every:
            drivers.append(
                asyncio.create_task(
                    _drive_sessions(station, stop, index, tags, session_every, random.Random(rng.random()))
                )
            )
    try:
        await stop.wait()
    finally:
        stop.set()
        for task in drivers:
            task.cancel()
        await asyncio.gather(*drivers, return_exceptions=True)

        async def wind_down(station: SimulatedStation) -> None:
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
