"""OCPP load generator (1.6J, 2.0.1 or a mix): N simulated stations over loopback, one JSON line
of results.

Runs in its own process (bench/run.py starts it with subprocess) so that it never shares an
event loop with the server under test. Each station connects to `{url}{station_id}` and then
waits for every other station; in the measured phase it sends at `--rate` messages per second
(jittered), one outstanding CALL at a time, and records the round-trip time of each. CALLs
from the server are answered and not measured. What a station sends depends on `--ocpp`:

- 1.6 (`ocpp1.6`): BootNotification and one StatusNotification per connector (0..C); measured:
  MeterValues and Heartbeats, 4:1.
- 2.0.1 (`ocpp2.0.1`): BootNotification, StatusNotification per EVSE (1..C, EVSE 1 Occupied) and
  a TransactionEvent Started on EVSE 1 (CablePluggedIn, with the Transaction.Begin register);
  measured, per 10 messages: 7 TransactionEvent Updated (MeterValuePeriodic with the register,
  seqNo counting up), 2 Heartbeats and 1 StatusNotification.
- mixed: even-numbered stations 1.6, odd-numbered ones 2.0.1.

Progress events go to stderr as `EVENT <name>` lines; with `--hold-after` the generator keeps
its connections open after the measured phase until a line (or EOF) arrives on stdin, so the
orchestrator can sample the server's memory with every station still connected.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

HEARTBEAT_EVERY = 5  # every 5th measured message is a Heartbeat, the rest MeterValues (1.6)
STATUS_EVERY = 10  # and 2.0.1 replaces one TransactionEvent in 10 by a StatusNotification
OCPP_VERSIONS = ("1.6", "2.0.1", "mixed")
SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
SERVER_CALL_REPLIES: dict[str, dict[str, Any]] = {
    "ChangeConfiguration": {"status": "Accepted"},
    "GetLocalListVersion": {"listVersion": 0},
    "SendLocalList": {"status": "Accepted"},
    "GetConfiguration": {"configurationKey": []},
}
SERVER_CALL_REPLIES_201: dict[str, dict[str, Any]] = {
    "SetVariables": {"setVariableResult": []},
    "GetVariables": {"getVariableResult": []},
    "GetLocalListVersion": {"versionNumber": 0},
    "SendLocalList": {"status": "Accepted"},
    "GetBaseReport": {"status": "EmptyResultSet"},
}
DEFAULT_SERVER_CALL_REPLY: dict[str, Any] = {"status": "Accepted"}

BOOT_PAYLOAD = orjson.dumps(
    {
        "chargePointVendor": "StekkerBench",
        "chargePointModel": "LoadGen",
        "chargePointSerialNumber": "bench",
        "firmwareVersion": "1.0.0",
    }
).decode()
STATUS_TEMPLATE = (
    '[2,"{id}","StatusNotification",{{"connectorId":{connector},"errorCode":"NoError",'
    '"status":"Available","timestamp":"{ts}"}}]'
)
METER_TEMPLATE = (
    '[2,"{id}","MeterValues",{{"connectorId":1,"meterValue":[{{"timestamp":"{ts}","sampledValue":'
    '[{{"value":"{wh}","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register",'
    '"location":"Outlet","unit":"Wh"}}]}}]}}]'
)
HEARTBEAT_TEMPLATE = '[2,"{id}","Heartbeat",{{}}]'

BOOT_PAYLOAD_201 = orjson.dumps(
    {
        "chargingStation": {
            "model": "LoadGen",
            "vendorName": "StekkerBench",
            "serialNumber": "bench",
            "firmwareVersion": "1.0.0",
        },
        "reason": "PowerUp",
    }
).decode()
STATUS_TEMPLATE_201 = (
    '[2,"{id}","StatusNotification",{{"timestamp":"{ts}","connectorStatus":"{status}",'
    '"evseId":{evse},"connectorId":1}}]'
)
TRANSACTION_EVENT_TEMPLATE = (
    '[2,"{id}","TransactionEvent",{{"eventType":"{event}","timestamp":"{ts}","triggerReason":"{trigger}",'
    '"seqNo":{seq},"transactionInfo":{{"transactionId":"{tx}","chargingState":"Charging"}},'
    '"evse":{{"id":1,"connectorId":1}},"meterValue":[{{"timestamp":"{ts}","sampledValue":[{{"value":{wh},'
    '"context":"{context}","measurand":"Energy.Active.Import.Register","location":"Outlet",'
    '"unitOfMeasure":{{"unit":"Wh"}}}}]}}]}}]'
)


class CallError(Exception):
    """The server answered a CALL with a CALLERROR."""


@dataclass
class Stats:
    """Counters shared by all stations; only the measured phase is recorded in `latencies_ms`."""

    connect_errors: int = 0
    connected: int = 0
    messages_sent: int = 0
    responses: int = 0
    errors: int = 0
    server_calls_answered: int = 0
    connected_by_version: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class Config:
    """Parsed command line."""

    url: str
    stations: int
    rate: float
    duration: float
    ramp_concurrency: int
    connectors: int
    call_timeout: float
    connect_timeout: float
    prefix: str
    hold_after: bool
    hold_timeout: float
    seed: int
    ocpp: str = "1.6"

    def version_of(self, index: int) -> str:
        """The OCPP version station number `index` (from 0) speaks."""
        if self.ocpp == "mixed":
            return "1.6" if index % 2 == 0 else "2.0.1"
        return self.ocpp


class Timestamp:
    """ISO 8601 UTC timestamp, recomputed at most once per second (cheap for thousands of stations)."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        """Current time as `YYYY-MM-DDTHH:MM:SSZ`."""
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._text


TIMESTAMP = Timestamp()


def event(name: str) -> None:
    """Report a phase change to the orchestrator on stderr."""
    print(f"EVENT {name}", file=sys.stderr, flush=True)


class Station:
    """One simulated charge point: a reader task plus a caller with one outstanding CALL. A 2.0.1
    station also keeps the transaction it reports on (id, next seqNo) and its energy register."""

    def __init__(
        self, station_id: str, ws: ClientConnection, stats: Stats, call_timeout: float, version: str = "1.6"
    ) -> None:
        self.station_id = station_id
        self.ws = ws
        self.stats = stats
        self.call_timeout = call_timeout
        self.version = version
        self.transaction_id = ""
        self.seq_no = 0
        self.energy_wh = 0
        self._ids = itertools.count(1)
        self._pending_id = ""
        self._pending: asyncio.Future[Any] | None = None
        self.reader: asyncio.Task[None] | None = None

    def next_id(self) -> str:
        """A fresh unique id for an outgoing CALL."""
        return str(next(self._ids))

    async def read_loop(self) -> None:
        """Dispatch incoming frames until the connection closes."""
        try:
            async for raw in self.ws:
                try:
                    await self._dispatch(orjson.loads(raw))
                except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
                    continue  # not an OCPP frame we understand; a pending call will time out
        except ConnectionClosed:
            pass
        finally:
            if self._pending is not None and not self._pending.done():
                self._pending.set_exception(ConnectionError("connection closed"))

    async def _dispatch(self, msg: list[Any]) -> None:
        """Resolve our pending CALL, or answer a CALL from the server."""
        kind = msg[0]
        if kind == 2:
            replies = SERVER_CALL_REPLIES if self.version == "1.6" else SERVER_CALL_REPLIES_201
            reply = replies.get(msg[2], DEFAULT_SERVER_CALL_REPLY)
            await self.ws.send(orjson.dumps([3, msg[1], reply]).decode())
            self.stats.server_calls_answered += 1
            return
        if self._pending is None or self._pending.done() or msg[1] != self._pending_id:
            return  # late answer to a call that already timed out
        if kind == 3:
            self._pending.set_result(msg[2])
        else:
            self._pending.set_exception(CallError(f"{msg[2]}: {msg[3]}"))

    async def call(self, call_id: str, frame: str) -> Any:
        """Send one CALL frame and wait for its CALLRESULT payload (raises on CALLERROR/timeout)."""
        self._pending_id = call_id
        self._pending = asyncio.get_running_loop().create_future()
        await self.ws.send(frame)
        return await asyncio.wait_for(self._pending, self.call_timeout)

    async def timed_call(self, call_id: str, frame: str) -> None:
        """A measured CALL: counts it and records its latency, or counts an error."""
        self.stats.messages_sent += 1
        started = time.perf_counter()
        try:
            await self.call(call_id, frame)
        except (CallError, TimeoutError, ConnectionError, ConnectionClosed):
            self.stats.errors += 1
            return
        self.stats.responses += 1
        self.stats.latencies_ms.append((time.perf_counter() - started) * 1000.0)


async def open_station(index: int, cfg: Config, stats: Stats, gate: asyncio.Semaphore) -> Station | None:
    """Connect, boot and report connector status; None (and a connect error) on any failure."""
    station_id = f"{cfg.prefix}{index:06d}"
    version = cfg.version_of(index)
    async with gate:
        try:
            ws = await connect(
                cfg.url + station_id,
                subprotocols=[Subprotocol(SUBPROTOCOLS[version])],
                open_timeout=cfg.connect_timeout,
                ping_interval=None,
                compression=None,
                close_timeout=2,
            )
        except Exception:  # refused, handshake rejected, timeout: all count as connect errors
            stats.connect_errors += 1
            return None
        if ws.subprotocol != SUBPROTOCOLS[version]:
            stats.connect_errors += 1
            await ws.close()
            return None
        station = Station(station_id, ws, stats, cfg.call_timeout, version)
        seeded = random.Random(f"{cfg.seed}-{index}")
        station.energy_wh = seeded.randrange(1_000_000, 9_000_000)  # a lifetime register, never 0
        station.transaction_id = str(uuid.UUID(int=seeded.getrandbits(128), version=4))
        station.reader = asyncio.create_task(station.read_loop())
        try:
            if version == "1.6":
                await boot_station(station, cfg.connectors)
            else:
                await boot_station_201(station, cfg.connectors)
        except (CallError, TimeoutError, ConnectionError, ConnectionClosed, KeyError, TypeError):
            stats.connect_errors += 1
            await close_station(station)
            return None
    stats.connected += 1
    stats.connected_by_version[version] = stats.connected_by_version.get(version, 0) + 1
    return station


async def boot_station(station: Station, connectors: int) -> None:
    """BootNotification (must be Accepted) then StatusNotification for connectors 0..N."""
    call_id = station.next_id()
    result = await station.call(call_id, f'[2,"{call_id}","BootNotification",{BOOT_PAYLOAD}]')
    if result["status"] != "Accepted":
        raise CallError(f"boot {result['status']}")
    for connector in range(connectors + 1):
        call_id = station.next_id()
        await station.call(
            call_id, STATUS_TEMPLATE.format(id=call_id, connector=connector, ts=TIMESTAMP.now())
        )


async def boot_station_201(station: Station, evses: int) -> None:
    """BootNotification (must be Accepted), StatusNotification per EVSE 1..N (EVSE 1 Occupied), then a
    TransactionEvent Started on EVSE 1 that the measured Updated events belong to."""
    call_id = station.next_id()
    result = await station.call(call_id, f'[2,"{call_id}","BootNotification",{BOOT_PAYLOAD_201}]')
    if result["status"] != "Accepted":
        raise CallError(f"boot {result['status']}")
    for evse in range(1, max(1, evses) + 1):
        call_id = station.next_id()
        status = "Occupied" if evse == 1 else "Available"
        frame = STATUS_TEMPLATE_201.format(id=call_id, ts=TIMESTAMP.now(), status=status, evse=evse)
        await station.call(call_id, frame)
    call_id = station.next_id()
    await station.call(call_id, transaction_event(station, call_id, "Started"))


def transaction_event(station: Station, call_id: str, event: str) -> str:
    """A TransactionEvent frame for the station's transaction, with the next seqNo."""
    seq_no, station.seq_no = station.seq_no, station.seq_no + 1
    started = event == "Started"
    return TRANSACTION_EVENT_TEMPLATE.format(
        id=call_id,
        event=event,
        ts=TIMESTAMP.now(),
        trigger="CablePluggedIn" if started else "MeterValuePeriodic",
        seq=seq_no,
        tx=station.transaction_id,
        wh=station.energy_wh,
        context="Transaction.Begin" if started else "Sample.Periodic",
    )


def measured_frame(station: Station, n: int, call_id: str, rng: random.Random) -> str:
    """The `n`th measured CALL of a station, by its OCPP version's message mix."""
    if n % HEARTBEAT_EVERY == HEARTBEAT_EVERY - 1:
        return HEARTBEAT_TEMPLATE.format(id=call_id)
    if station.version == "1.6":
        station.energy_wh += rng.randrange(1, 500)
        return METER_TEMPLATE.format(id=call_id, ts=TIMESTAMP.now(), wh=station.energy_wh)
    if n % STATUS_EVERY == STATUS_EVERY - 2:
        return STATUS_TEMPLATE_201.format(id=call_id, ts=TIMESTAMP.now(), status="Occupied", evse=1)
    station.energy_wh += rng.randrange(1, 500)
    return transaction_event(station, call_id, "Updated")


async def close_station(station: Station) -> None:
    """Close the WebSocket and stop the reader, never raising."""
    try:
        await station.ws.close()
    except Exception:
        pass
    if station.reader is not None:
        station.reader.cancel()


async def run_station(station: Station, rate: float, end: float, rng: random.Random) -> None:
    """Send the jittered measured messages at `rate` per second until the monotonic time `end`."""
    interval = 1.0 / rate
    next_send = time.monotonic() + rng.uniform(0.0, interval)
    for n in itertools.count():
        delay = next_send - time.monotonic()
        if next_send >= end:
            return
        if delay > 0:
            await asyncio.sleep(delay)
        call_id = station.next_id()
        await station.timed_call(call_id, measured_frame(station, n, call_id, rng))
        next_send = max(next_send + interval * rng.uniform(0.9, 1.1), time.monotonic())


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an already sorted list; None when empty."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def summarize(cfg: Config, stats: Stats, connect_seconds: float, measured_seconds: float) -> dict[str, Any]:
    """The result line."""
    lat = sorted(stats.latencies_ms)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "ocpp": cfg.ocpp,
        "stations_requested": cfg.stations,
        "stations_connected": stats.connected,
        "stations_connected_by_version": stats.connected_by_version,
        "connect_errors": cfg.stations - stats.connected,
        "messages_sent": stats.messages_sent,
        "responses": stats.responses,
        "errors": stats.errors,
        "msgs_per_s": round(stats.responses / measured_seconds, 1) if measured_seconds > 0 else 0.0,
        "offered_msgs_per_s": round(stats.connected * cfg.rate, 1),
        "p50_ms": ms(percentile(lat, 0.50)),
        "p99_ms": ms(percentile(lat, 0.99)),
        "max_ms": ms(lat[-1] if lat else None),
        "connect_seconds": round(connect_seconds, 2),
        "measured_seconds": round(measured_seconds, 2),
        "server_calls_answered": stats.server_calls_answered,
    }


async def wait_for_release(limit_s: float) -> None:
    """Wait for a line or EOF on stdin, or `limit_s` seconds, without blocking the loop.

    stdin is read on a daemon thread (not the loop's executor, whose shutdown would wait for it).
    """
    loop = asyncio.get_running_loop()
    released = asyncio.Event()

    def read_stdin() -> None:
        sys.stdin.readline()
        loop.call_soon_threadsafe(released.set)

    threading.Thread(target=read_stdin, daemon=True).start()
    try:
        await asyncio.wait_for(released.wait(), limit_s)
    except TimeoutError:
        pass


async def open_all(cfg: Config, stats: Stats) -> list[Station]:
    """Open every station, `ramp_concurrency` at a time, within the connect budget."""
    gate = asyncio.Semaphore(cfg.ramp_concurrency)
    tasks = [asyncio.create_task(open_station(i, cfg, stats, gate)) for i in range(cfg.stations)]
    done, pending = await asyncio.wait(tasks, timeout=connect_budget(cfg))
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
    return [s for t in done if not t.cancelled() and t.exception() is None and (s := t.result()) is not None]


async def measure(cfg: Config, stations: list[Station], stats: Stats) -> float:
    """Run the measured phase; returns its wall-clock length in seconds."""
    rng = random.Random(cfg.seed)
    start = time.monotonic()
    end = start + cfg.duration
    tasks = [
        asyncio.create_task(run_station(s, cfg.rate, end, random.Random(rng.random()))) for s in stations
    ]
    if tasks:
        # Calls sent just before `end` may take up to call_timeout to finish or fail.
        _, pending = await asyncio.wait(tasks, timeout=cfg.duration + cfg.call_timeout + 5)
        for task in pending:
            task.cancel()
    return time.monotonic() - start


async def run(cfg: Config) -> dict[str, Any]:
    """Connect, measure, optionally hold, disconnect; returns the summary."""
    stats = Stats()
    event("connecting")
    t0 = time.monotonic()
    stations = await open_all(cfg, stats)
    connect_seconds = time.monotonic() - t0
    event("measured_start")
    measured_seconds = await measure(cfg, stations, stats)
    event("measured_end")
    if cfg.hold_after:
        await wait_for_release(cfg.hold_timeout)
    if stations:
        await asyncio.wait([asyncio.create_task(close_station(s)) for s in stations], timeout=15)
    event("closed")
    return summarize(cfg, stats, connect_seconds, measured_seconds)


def connect_budget(cfg: Config) -> float:
    """Seconds allowed for opening all stations."""
    return max(60.0, cfg.stations / 50.0)


def hard_timeout(cfg: Config) -> float:
    """Seconds after which the process exits no matter what."""
    hold = cfg.hold_timeout if cfg.hold_after else 0.0
    return connect_budget(cfg) + 10 + cfg.duration + cfg.call_timeout + 10 + hold + 30


def start_watchdog(seconds: float, cfg: Config) -> None:
    """Exit the process (with an error line) if it is still running after `seconds`."""

    def fire() -> None:
        line = {"stations_requested": cfg.stations, "error": f"hard timeout after {seconds:.0f} s"}
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
        sys.stdout.flush()
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def parse_args(argv: list[str] | None = None) -> Config:
    """Command line to Config."""
    p = argparse.ArgumentParser(description="OCPP load generator (one JSON result line on stdout)")
    p.add_argument("--ocpp", choices=OCPP_VERSIONS, default="1.6", help="mixed: even stations 1.6, odd 2.0.1")
    p.add_argument("--url", default="ws://127.0.0.1:9000/ocpp/", help="station id is appended")
    p.add_argument("--stations", type=int, default=100)
    p.add_argument("--rate", type=float, default=0.2, help="messages per second per station")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of the measured phase")
    p.add_argument("--ramp-concurrency", type=int, default=200, help="connections opened at a time")
    p.add_argument(
        "--connectors", type=int, default=2, help="StatusNotification for connectors 0..N (2.0.1: EVSEs 1..N)"
    )
    p.add_argument("--call-timeout", type=float, default=10.0, help="seconds before a CALL counts as error")
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--prefix", default="BENCH", help="station id prefix")
    p.add_argument("--hold-after", action="store_true", help="keep connections until a line on stdin")
    p.add_argument("--hold-timeout", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if a.rate <= 0 or a.stations < 1 or a.ramp_concurrency < 1:
        p.error("--rate, --stations and --ramp-concurrency must be positive")
    url = a.url if a.url.endswith("/") else a.url + "/"
    return Config(
        url=url, stations=a.stations, rate=a.rate, duration=a.duration, ramp_concurrency=a.ramp_concurrency,
        connectors=a.connectors, call_timeout=a.call_timeout, connect_timeout=a.connect_timeout,
        prefix=a.prefix, hold_after=a.hold_after, hold_timeout=a.hold_timeout, seed=a.seed, ocpp=a.ocpp,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run the load and print one JSON line."""
    cfg = parse_args(argv)
    start_watchdog(hard_timeout(cfg), cfg)
    # With thousands of connections a generation-2 collection pauses this process for hundreds of
    # milliseconds, which would show up as server latency. The run is short and bounded, so the
    # cyclic garbage it accumulates is affordable.
    gc.disable()
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(run(cfg))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
