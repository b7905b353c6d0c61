"""Load generator for the cluster scenarios (bench/cluster.py): OCPP 1.6 stations that behave like
real ones when their gateway goes away, driven over stdin/stdout by the orchestrator.

Unlike bench/loadgen.py (connect, measure, leave), these stations live for the whole scenario:

- Each station connects to `urls[index % len(urls)]` + its id (so stations alternate over the
  gateways, or all go through one HAProxy), at most `--ramp-concurrency` connecting/booting at a
  time, and boots (BootNotification, StatusNotification for connectors 0..C).
- When its connection closes it reconnects after a jittered exponential backoff, as stations do
  (OCPP 2.0.1 RetryBackOffWaitMinimum / RetryBackOffRandomRange): `min(cap, base * 2^attempt)`
  plus a random `0..jitter` seconds, and boots again.
- It sends `--rate-total / stations` messages per second (jittered): MeterValues and Heartbeat
  4:1, one outstanding CALL at a time. A station in a transaction sends its MeterValues with the
  transactionId, and those (and Start/StopTransaction) go into an offline queue: kept while the
  station is offline and retransmitted in order after the next boot, as OCPP requires for
  transaction messages. Other messages are not sent while offline (counted as skipped).
- CALLs from the server are answered at once (GetLocalListVersion: listVersion 0, ...).

Counted: CALLs sent, CALLRESULTs, CALLERRORs, timeouts (connection open, no answer in time),
interrupted (the connection closed while the CALL waited: the station cannot know whether the
server stored it), retransmitted transaction messages, transaction messages given up, and every
offline interval of every station (closed at, booted again at, both on CLOCK_MONOTONIC, which
the orchestrator in another process reads too).

Control: one JSON object per line on stdin, `{"cmd": ...}`; one JSON answer per line on stdout,
`{"reply": cmd, ...}`. Commands: status, reset, stats, intervals, tx_start, tx_stop, quit.
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
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# bench/ is not a package: its scripts import each other by path
from loadgen import (
    BOOT_PAYLOAD,
    DEFAULT_SERVER_CALL_REPLY,
    HEARTBEAT_EVERY,
    HEARTBEAT_TEMPLATE,
    METER_TEMPLATE,
    SERVER_CALL_REPLIES,
    STATUS_TEMPLATE,
    TIMESTAMP,
)

METER_TX_TEMPLATE = (
    '[2,"{id}","MeterValues",{{"connectorId":1,"transactionId":{tx},"meterValue":[{{"timestamp":"{ts}",'
    '"sampledValue":[{{"value":"{wh}","context":"Sample.Periodic","measurand":'
    '"Energy.Active.Import.Register","location":"Outlet","unit":"Wh"}}]}}]}}]'
)
TX_ATTEMPTS = 5  # a transaction message is given up after this many sends without an answer


class CallError(Exception):
    """The server answered a CALL with a CALLERROR."""


class Interrupted(Exception):
    """The connection closed while a CALL waited for its answer."""


@dataclass
class Counters:
    """What every station adds to; reset by the `reset` command."""

    sent: int = 0
    answered: int = 0
    call_errors: int = 0
    timeouts: int = 0
    interrupted: int = 0
    interrupted_tx: int = 0
    retransmitted: int = 0
    tx_given_up: int = 0
    skipped_offline: int = 0
    connects: int = 0
    connect_failures: int = 0
    boots: int = 0
    server_calls: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    boot_ms: list[float] = field(default_factory=list)  # WebSocket open to the last boot answer


@dataclass
class Outgoing:
    """One CALL waiting in a station's queue. `build` makes the frame for a call id; a transaction
    message (`keep`) survives a lost connection and is sent again."""

    build: Any
    keep: bool
    kind: str
    attempts: int = 0
    done: asyncio.Future[Any] | None = None


@dataclass
class Config:
    """Parsed command line."""

    urls: list[str]
    stations: int
    first: int
    prefix: str
    rate_total: float
    total_stations: int
    ramp_concurrency: int
    connectors: int
    call_timeout: float
    connect_timeout: float
    backoff_base: float
    backoff_cap: float
    backoff_jitter: float
    seed: int
    lifetime: float


class Station:
    """One simulated 1.6 charge point that keeps itself connected."""

    def __init__(self, index: int, cfg: Config, counters: Counters, gate: asyncio.Semaphore) -> None:
        self.index = index
        self.station_id = f"{cfg.prefix}{index:06d}"
        self.url = cfg.urls[index % len(cfg.urls)] + self.station_id
        self.cfg = cfg
        self.c = counters
        self.gate = gate
        self.rng = random.Random(f"{cfg.seed}-{index}")
        self.energy_wh = self.rng.randrange(1_000_000, 9_000_000)
        self.ws: ClientConnection | None = None
        self.online = False
        self.ever_online = False
        self.queue: deque[Outgoing] = deque()
        self.wakeup = asyncio.Event()
        self.transaction_id: int | None = None
        self.in_transaction = False
        self.offline_since: float | None = time.monotonic()
        self.intervals: list[tuple[float, float | None]] = []  # (went offline, booted again)
        self.first_online: float | None = None
        self._ids = itertools.count(1)
        self._pending_id = ""
        self._pending: asyncio.Future[Any] | None = None

    # ---- connection life

    async def live(self, stop: asyncio.Event) -> None:
        """Connect, boot, serve the queue; on a lost connection back off and do it again."""
        attempt = 0
        while not stop.is_set():
            reader = await self._connect_and_boot()
            if reader is None:
                attempt += 1
                await self._sleep(self._backoff(attempt), stop)
                continue
            attempt = 0
            drainer = asyncio.create_task(self._drain())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if reader.done():
                # let the drainer see its CALL interrupted (and count it) before it is cancelled
                await asyncio.wait({drainer}, timeout=0.5)
            drainer.cancel()
            self._went_offline()
            await self._close()
            reader.cancel()
            if stop.is_set():
                return
            await self._sleep(self._backoff(0), stop)

    def _backoff(self, attempt: int) -> float:
        base = min(self.cfg.backoff_cap, self.cfg.backoff_base * 2 ** min(attempt, 16))
        return float(base + self.rng.uniform(0.0, self.cfg.backoff_jitter))

    @staticmethod
    async def _sleep(seconds: float, stop: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except TimeoutError:
            pass

    async def _connect_and_boot(self) -> asyncio.Task[None] | None:
        """Open the WebSocket and boot; the connection's reader task, or None (counted) on failure."""
        async with self.gate:
            try:
                ws = await connect(
                    self.url,
                    subprotocols=[Subprotocol("ocpp1.6")],
                    open_timeout=self.cfg.connect_timeout,
                    ping_interval=None,
                    compression=None,
                    close_timeout=2,
                )
            except Exception:  # refused, 503 at admission, handshake timeout: retry after a backoff
                self.c.connect_failures += 1
                return None
            self.ws = ws
            self.c.connects += 1
            opened = time.perf_counter()
            reader = asyncio.create_task(self._read_loop(ws))
            try:
                call_id = self.next_id()
                result = await self._call(call_id, f'[2,"{call_id}","BootNotification",{BOOT_PAYLOAD}]')
                if result.get("status") != "Accepted":
                    raise CallError(f"boot {result.get('status')}")
                for connector in range(self.cfg.connectors + 1):
                    call_id = self.next_id()
                    frame = STATUS_TEMPLATE.format(id=call_id, connector=connector, ts=TIMESTAMP.now())
                    await self._call(call_id, frame)
            except (CallError, Interrupted, TimeoutError, ConnectionClosed, OSError, AttributeError):
                self.c.connect_failures += 1
                reader.cancel()
                await self._close()
                return None
        self.c.boots += 1
        self.c.boot_ms.append((time.perf_counter() - opened) * 1000.0)
        self.online = True
        now = time.monotonic()
        if not self.ever_online:
            self.ever_online = True
            self.first_online = now
        elif self.offline_since is not None:
            self.intervals.append((self.offline_since, now))
        self.offline_since = None
        for item in self.queue:
            if item.attempts:
                self.c.retransmitted += 1
        self.wakeup.set()
        return reader

    def _went_offline(self) -> None:
        if self.online:
            self.online = False
            self.offline_since = time.monotonic()
        # what was not a transaction message is not sent again (a real station drops it too)
        kept: deque[Outgoing] = deque()
        for item in self.queue:
            if item.keep:
                kept.append(item)
            else:
                self.c.skipped_offline += 1
                if item.done is not None and not item.done.done():
                    item.done.set_exception(Interrupted())
        self.queue = kept

    async def _close(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            try:
                await ws.close()
            except Exception:
                pass

    # ---- frames

    def next_id(self) -> str:
        """A fresh call id, unique for the station's lifetime (across connections)."""
        return str(next(self._ids))

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                try:
                    msg = orjson.loads(raw)
                    kind = msg[0]
                    if kind == 2:
                        action = msg[2]
                        self.c.server_calls[action] = self.c.server_calls.get(action, 0) + 1
                        reply = SERVER_CALL_REPLIES.get(action, DEFAULT_SERVER_CALL_REPLY)
                        await ws.send(orjson.dumps([3, msg[1], reply]).decode())
                        continue
                    pending = self._pending
                    if pending is None or pending.done() or msg[1] != self._pending_id:
                        continue  # late answer to a call that timed out
                    if kind == 3:
                        pending.set_result(msg[2])
                    else:
                        pending.set_exception(CallError(f"{msg[2]}: {msg[3]}"))
                except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
                    continue
        except ConnectionClosed:
            pass
        finally:
            if self._pending is not None and not self._pending.done():
                self._pending.set_exception(Interrupted())

    async def _call(self, call_id: str, frame: str) -> Any:
        ws = self.ws
        if ws is None:
            raise Interrupted()
        self._pending_id = call_id
        self._pending = asyncio.get_running_loop().create_future()
        try:
            await ws.send(frame)
        except ConnectionClosed:
            raise Interrupted() from None
        return await asyncio.wait_for(self._pending, self.cfg.call_timeout)

    async def _drain(self) -> None:
        """Send the queue's CALLs one at a time while connected."""
        while True:
            while not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
            item = self.queue[0]
            call_id = self.next_id()
            item.attempts += 1
            self.c.sent += 1
            started = time.perf_counter()
            try:
                result = await self._call(call_id, item.build(call_id))
            except CallError as exc:
                self.c.call_errors += 1
                self._finish(item, exc)
                continue
            except TimeoutError:
                self.c.timeouts += 1
                if not item.keep or item.attempts >= TX_ATTEMPTS:
                    if item.keep:
                        self.c.tx_given_up += 1
                    self._finish(item, TimeoutError())
                continue
            except Interrupted:
                self.c.interrupted += 1
                if item.keep:
                    self.c.interrupted_tx += 1
                    if item.attempts >= TX_ATTEMPTS:
                        self.c.tx_given_up += 1
                        self._finish(item, Interrupted())
                elif self.queue and self.queue[0] is item:
                    self._finish(item, Interrupted())
                return  # the connection is gone: live() reconnects
            self.c.answered += 1
            self.c.latencies_ms.append((time.perf_counter() - started) * 1000.0)
            self._finish(item, None, result)

    def _finish(self, item: Outgoing, exc: BaseException | None, result: Any = None) -> None:
        if self.queue and self.queue[0] is item:
            self.queue.popleft()
        if item.done is not None and not item.done.done():
            if exc is None:
                item.done.set_result(result)
            else:
                item.done.set_exception(exc)

    def enqueue(self, item: Outgoing) -> None:
        """Queue a CALL (sent when online, in order)."""
        self.queue.append(item)
        self.wakeup.set()

    # ---- traffic

    async def background(self, rate: float, stop: asyncio.Event) -> None:
        """Periodic MeterValues and Heartbeats at `rate` per second, jittered."""
        if rate <= 0:
            return
        interval = 1.0 / rate
        await self._sleep(self.rng.uniform(0.0, interval), stop)
        for n in itertools.count():
            if stop.is_set():
                return
            self._tick(n)
            await self._sleep(interval * self.rng.uniform(0.9, 1.1), stop)

    def _tick(self, n: int) -> None:
        self.energy_wh += self.rng.randrange(1, 500)
        wh = self.energy_wh
        if self.in_transaction and self.transaction_id is not None:
            tx = self.transaction_id
            # the station's meter keeps running while it is offline: queued and sent later
            self.enqueue(
                Outgoing(
                    lambda cid, wh=wh, ts=TIMESTAMP.now(): METER_TX_TEMPLATE.format(
                        id=cid, tx=tx, ts=ts, wh=wh
                    ),
                    keep=True,
                    kind="MeterValues",
                )
            )
            return
        if not self.online or len(self.queue) > 2:
            self.c.skipped_offline += 1
            return
        if n % HEARTBEAT_EVERY == HEARTBEAT_EVERY - 1:
            self.enqueue(Outgoing(lambda cid: HEARTBEAT_TEMPLATE.format(id=cid), False, "Heartbeat"))
        else:
            self.enqueue(
                Outgoing(
                    lambda cid, wh=wh: METER_TEMPLATE.format(id=cid, ts=TIMESTAMP.now(), wh=wh),
                    False,
                    "MeterValues",
                )
            )

    async def start_transaction(self, id_tag: str) -> int | None:
        """StartTransaction on connector 1 (queued as a transaction message); the id or None."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        payload = {
            "connectorId": 1,
            "idTag": id_tag,
            "meterStart": self.energy_wh,
            "timestamp": TIMESTAMP.now(),
        }
        body = orjson.dumps(payload).decode()
        self.enqueue(
            Outgoing(
                lambda cid: f'[2,"{cid}","StartTransaction",{body}]', True, "StartTransaction", done=done
            )
        )
        try:
            result = await asyncio.wait_for(done, self.cfg.call_timeout * TX_ATTEMPTS + 60)
        except (CallError, Interrupted, TimeoutError):
            return None
        tx = result.get("transactionId")
        if isinstance(tx, int):
            self.transaction_id = tx
            self.in_transaction = True
            return tx
        return None

    def stop_transaction(self) -> asyncio.Future[Any] | None:
        """Queue StopTransaction after whatever the queue holds; the future resolves on its answer."""
        if self.transaction_id is None:
            return None
        self.in_transaction = False
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        payload = {
            "transactionId": self.transaction_id,
            "meterStop": self.energy_wh,
            "timestamp": TIMESTAMP.now(),
            "reason": "Local",
        }
        body = orjson.dumps(payload).decode()
        self.enqueue(
            Outgoing(lambda cid: f'[2,"{cid}","StopTransaction",{body}]', True, "StopTransaction", done=done)
        )
        return done


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of a sorted list."""
    if not values:
        return None
    rank = max(0, min(len(values) - 1, round(fraction * len(values) + 0.5) - 1))
    return values[rank]


class Fleet:
    """Every station of this process and the control commands."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.c = Counters()
        self.stop = asyncio.Event()
        gate = asyncio.Semaphore(cfg.ramp_concurrency)
        self.stations = [Station(i, cfg, self.c, gate) for i in range(cfg.first, cfg.first + cfg.stations)]
        self.tasks: list[asyncio.Task[None]] = []
        self.tx_stations: list[Station] = []

    def start(self) -> None:
        """Start every station's life and background traffic."""
        rate = self.cfg.rate_total / max(1, self.cfg.total_stations)
        for s in self.stations:
            self.tasks.append(asyncio.create_task(s.live(self.stop)))
            self.tasks.append(asyncio.create_task(s.background(rate, self.stop)))

    def status(self) -> dict[str, Any]:
        """How many stations are online, have ever been, and what is queued."""
        return {
            "online": sum(1 for s in self.stations if s.online),
            "ever_online": sum(1 for s in self.stations if s.ever_online),
            "stations": len(self.stations),
            "queued_tx": sum(sum(1 for i in s.queue if i.keep) for s in self.stations),
            "connect_failures": self.c.connect_failures,
            "now": time.monotonic(),
        }

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset, with the raw latencies (the orchestrator merges them)."""
        c = self.c
        return {
            "sent": c.sent,
            "answered": c.answered,
            "call_errors": c.call_errors,
            "timeouts": c.timeouts,
            "interrupted": c.interrupted,
            "interrupted_tx": c.interrupted_tx,
            "retransmitted": c.retransmitted,
            "tx_given_up": c.tx_given_up,
            "skipped_offline": c.skipped_offline,
            "connects": c.connects,
            "connect_failures": c.connect_failures,
            "boots": c.boots,
            "server_calls": dict(c.server_calls),
            "latencies_ms": [round(x, 2) for x in c.latencies_ms],
            "boot_ms": [round(x, 1) for x in c.boot_ms],
        }

    def reset(self) -> None:
        """Zero the counters (the stations keep their state)."""
        fresh = Counters()
        for name in Counters.__dataclass_fields__:
            setattr(self.c, name, getattr(fresh, name))

    def intervals(self) -> dict[str, Any]:
        """Every offline interval after the first boot; a station offline now has end null."""
        out: list[list[Any]] = []
        for s in self.stations:
            for start, end in s.intervals:
                out.append([s.station_id, start, end])
            if s.ever_online and not s.online and s.offline_since is not None:
                out.append([s.station_id, s.offline_since, None])
        return {"intervals": out, "never_online": sum(1 for s in self.stations if not s.ever_online)}

    async def tx_start(self, count: int, id_tag: str) -> dict[str, Any]:
        """Start a transaction on the first `count` online stations of this process."""
        chosen = [s for s in self.stations if s.online and s.transaction_id is None][:count]
        results = await asyncio.gather(*(s.start_transaction(id_tag) for s in chosen))
        self.tx_stations.extend(s for s, tx in zip(chosen, results, strict=True) if tx is not None)
        return {
            "started": sum(1 for tx in results if tx is not None),
            "failed": sum(1 for tx in results if tx is None),
            "transactions": {s.station_id: s.transaction_id for s in self.tx_stations},
        }

    async def tx_stop(self, timeout: float) -> dict[str, Any]:
        """Stop every transaction this process started; wait (bounded) for the answers."""
        meter_stop = {s.station_id: s.energy_wh for s in self.tx_stations if s.transaction_id is not None}
        futures = [f for s in self.tx_stations if (f := s.stop_transaction()) is not None]
        stopped = failed = 0
        if futures:
            done, pending = await asyncio.wait(futures, timeout=timeout)
            for f in done:
                if f.exception() is None:
                    stopped += 1
                else:
                    failed += 1
            failed += len(pending)
        return {
            "stopped": stopped,
            "failed": failed,
            "queued_tx": self.status()["queued_tx"],
            "meter_stop": meter_stop,
        }

    async def shutdown(self) -> None:
        """Close every connection (bounded)."""
        self.stop.set()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=15)
            for t in pending:
                t.cancel()


async def control(fleet: Fleet) -> None:
    """Read commands from stdin (a thread: stdin is a pipe) and answer on stdout."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=reader, daemon=True).start()
    while True:
        line = await lines.get()
        if not line:
            return  # the orchestrator went away
        try:
            msg = orjson.loads(line)
            cmd = msg["cmd"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            reply({"reply": "error", "error": f"bad command line: {line[:100]!r}"})
            continue
        if cmd == "quit":
            return
        if cmd == "status":
            reply({"reply": cmd, **fleet.status()})
        elif cmd == "stats":
            reply({"reply": cmd, **fleet.stats()})
        elif cmd == "reset":
            fleet.reset()
            reply({"reply": cmd})
        elif cmd == "intervals":
            reply({"reply": cmd, **fleet.intervals()})
        elif cmd == "tx_start":
            result = await fleet.tx_start(int(msg.get("count", 0)), str(msg.get("id_tag", "BENCHTAG")))
            reply({"reply": cmd, **result})
        elif cmd == "tx_stop":
            reply({"reply": cmd, **(await fleet.tx_stop(float(msg.get("timeout", 60))))})
        else:
            reply({"reply": "error", "error": f"unknown command {cmd!r}"})


def reply(obj: dict[str, Any]) -> None:
    """One JSON line on stdout."""
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


async def run(cfg: Config) -> None:
    """Start the fleet, obey the orchestrator until quit/EOF, close."""
    fleet = Fleet(cfg)
    fleet.start()
    try:
        await control(fleet)
    finally:
        await fleet.shutdown()
        reply({"reply": "quit", **fleet.status()})


def parse_args(argv: list[str] | None = None) -> Config:
    """Command line to Config."""
    p = argparse.ArgumentParser(description="Self-reconnecting OCPP 1.6 stations for bench/cluster.py")
    p.add_argument(
        "--url", action="append", required=True, help="ws://.../ocpp/ (repeat: stations alternate)"
    )
    p.add_argument("--stations", type=int, default=100, help="stations in this process")
    p.add_argument("--first", type=int, default=0, help="index of this process's first station")
    p.add_argument("--total-stations", type=int, default=0, help="all processes together (for the rate)")
    p.add_argument("--prefix", default="CL")
    p.add_argument("--rate-total", type=float, default=1000.0, help="messages/s of all stations together")
    p.add_argument("--ramp-concurrency", type=int, default=200)
    p.add_argument("--connectors", type=int, default=2)
    p.add_argument("--call-timeout", type=float, default=10.0)
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--backoff-base", type=float, default=0.5, help="first retry after base + jitter s")
    p.add_argument("--backoff-cap", type=float, default=30.0)
    p.add_argument("--backoff-jitter", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lifetime", type=float, default=3600.0, help="exit after this many seconds anyway")
    a = p.parse_args(argv)
    urls = [u if u.endswith("/") else u + "/" for u in a.url]
    return Config(
        urls=urls, stations=a.stations, first=a.first, prefix=a.prefix, rate_total=a.rate_total,
        total_stations=a.total_stations or a.stations, ramp_concurrency=a.ramp_concurrency,
        connectors=a.connectors, call_timeout=a.call_timeout, connect_timeout=a.connect_timeout,
        backoff_base=a.backoff_base, backoff_cap=a.backoff_cap, backoff_jitter=a.backoff_jitter,
        seed=a.seed, lifetime=a.lifetime,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run until told to quit (or the lifetime watchdog fires)."""
    cfg = parse_args(argv)
    timer = threading.Timer(cfg.lifetime, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    gc.disable()  # as bench/loadgen.py: a full collection would stall every station at once
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run(cfg))


if __name__ == "__main__":
    main()
