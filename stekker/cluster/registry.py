"""Which gateway holds each station's WebSocket: the station registry in Redis.

The hash `owners` maps a station id to "node_id|protocol" of the gateway holding its socket. A
gateway claims a station when its socket opens (the newest socket wins: a reconnect on another
gateway takes the station over at once) and releases it when the socket closes, but only while it
is still its own (compare-and-delete), so a late close never erases a newer owner.

Every change is announced on the channel `owners:changes` as JSON
`{"station": id, "owner": "node|protocol" or null, "previous": node or null, "seq": "n"}`; the
gateway that held a station taken over elsewhere closes its stale socket on that notice. `seq`
(Redis's clock in microseconds, kept increasing) orders claims, so a notice older than our own
claim is ignored, also across a Redis restart.

A node is trusted only while its heartbeat key lives (`stekker.cluster.nodes`): a station whose
owner is dead counts as offline. The synchronous questions of the command port (is it
connected, which protocol) are answered from a local mirror kept up to date by the channel and
by a full resync every `resync_seconds`; the resync also re-claims this gateway's own stations,
so after a Redis outage (or a Redis that restarted empty) the registry is whole again.

Redis trouble never reaches a station's handling: claims and releases that fail are logged (once
per outage) and made good by the next resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis

from stekker.cluster.leases import while_leading
from stekker.cluster.nodes import alive
from stekker.cluster.redis_link import REDIS_TROUBLE, Keys
from stekker.services import stations
from stekker.services.context import ServiceContext

log = logging.getLogger(__name__)

# The seq of a claim: Redis's clock in microseconds, kept increasing (a Redis that restarted
# empty goes on from its clock, so claims made before and after a restart still order
# correctly). A Lua function each claiming script starts with; KEYS[2] is the seq counter.
_NEXT_SEQ = """
local function next_seq()
  local now = redis.call('time')
  local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local last = tonumber(redis.call('get', KEYS[2]) or '0')
  if t <= last then t = last + 1 end
  local text = string.format('%.0f', t)
  redis.call('set', KEYS[2], text)
  return text
end
"""

# KEYS: owners hash, seq counter. ARGV: station, "node|protocol", node, channel.
# Returns {previous value or false, seq}.
_CLAIM = _NEXT_SEQ + """
local old = redis.call('hget', KEYS[1], ARGV[1])
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
local seq = next_seq()
local previous = false
if old then previous = string.match(old, '^([^|]*)') end
local notice = cjson.encode({station=ARGV[1], owner=ARGV[2], previous=previous or cjson.null, seq=seq})
redis.call('publish', ARGV[4], notice)
return {old or false, seq}
"""

# Re-claim after an outage: only where the station has no owner, or the same value we expect
# (ours, or a dead node's), never over a claim made meanwhile. ARGV: station, new, expected ("" = none).
_RECLAIM = _NEXT_SEQ + """
local old = redis.call('hget', KEYS[1], ARGV[1])
if (old or '') ~= ARGV[3] then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
local seq = next_seq()
local previous = false
if old then previous = string.match(old, '^([^|]*)') end
local notice = cjson.encode({station=ARGV[1], owner=ARGV[2], previous=previous or cjson.null, seq=seq})
redis.call('publish', ARGV[4], notice)
return seq
"""

# Release only what is still ours. ARGV: station, node, channel.
_RELEASE = _NEXT_SEQ + """
local old = redis.call('hget', KEYS[1], ARGV[1])
if not old then return -1 end
if string.match(old, '^([^|]*)') ~= ARGV[2] then return 0 end
redis.call('hdel', KEYS[1], ARGV[1])
local seq = next_seq()
redis.call('publish', ARGV[3], cjson.encode({station=ARGV[1], owner=cjson.null, previous=ARGV[2], seq=seq}))
return 1
"""

# One round trip for routing: the owner and whether its heartbeat lives. ARGV: station, node-key prefix.
_OWNER_ALIVE = """
local value = redis.call('hget', KEYS[1], ARGV[1])
if not value then return false end
local node = string.match(value, '^([^|]*)')
return {value, redis.call('exists', ARGV[2] .. node)}
"""


@dataclass(frozen=True, slots=True)
class Owner:
    """The gateway holding a station's socket, and the OCPP version the station speaks there."""

    node_id: str
    protocol: str

    def encode(self) -> str:
        return f"{self.node_id}|{self.protocol}"

    @classmethod
    def decode(cls, value: Any) -> Owner | None:
        """None for a value that is not "node|protocol" (hostile or foreign data is ignored)."""
        if not isinstance(value, str):
            return None
        node_id, sep, protocol = value.partition("|")
        if not sep or not node_id or not protocol:
            return None
        return cls(node_id, protocol)


@dataclass(frozen=True, slots=True)
class OwnerChange:
    """One notice from the changes channel."""

    station_id: str
    owner: Owner | None
    previous: str | None
    seq: int

    @classmethod
    def parse(cls, data: Any) -> OwnerChange | None:
        try:
            message = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError):
            return None
        if not isinstance(message, dict):
            return None
        station = message.get("station")
        seq = message.get("seq")
        previous = message.get("previous")
        if isinstance(seq, str) and seq.isdigit():
            seq = int(seq)  # the scripts send it as text: JSON numbers in Lua keep 14 digits
        if not isinstance(station, str) or not isinstance(seq, int) or isinstance(seq, bool):
            return None
        owner = Owner.decode(message.get("owner")) if message.get("owner") is not None else None
        return cls(station, owner, previous if isinstance(previous, str) else None, seq)


TakeoverHandler = Callable[[str, int], None]
"""Called with (station_id, seq) when another node claimed a station this node holds a socket for."""


class StationRegistry:
    """The owners hash, this node's claims on it, and a mirror of it for synchronous questions.

    `local` (set by the gateway with `attach`) returns the stations this node holds sockets
    for, with their protocol and the seq of their claim (None: not claimed yet); `on_takeover`
    is called when one of them was claimed elsewhere. Start with `start()` (subscribes to the
    channel, loads the mirror), end with `stop()`.
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        node_id: str,
        lease_seconds: float,
        *,
        resync_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.node_id = node_id
        self.lease_seconds = lease_seconds
        self.resync_seconds = resync_seconds
        self._monotonic = monotonic
        self._mirror: dict[str, Owner] = {}
        self._alive: set[str] = {node_id}
        self._local: Callable[[], Mapping[str, tuple[str, int | None]]] = dict
        self._on_takeover: TakeoverHandler | None = None
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()  # resync now (Redis came back, a claim failed)
        self.healthy = True  # the last Redis call worked
        self.resyncs = 0  # full resyncs done (tests wait on it)
        self._ready = asyncio.Event()  # subscribed and loaded once

    def attach(
        self, local: Callable[[], Mapping[str, tuple[str, int | None]]], on_takeover: TakeoverHandler
    ) -> None:
        """The gateway's stations (station → (protocol, claim seq)) and its takeover handler."""
        self._local = local
        self._on_takeover = on_takeover

    # ---- claims (a gateway's own stations) -------------------------------------------------

    async def claim(self, station_id: str, protocol: str) -> tuple[str | None, int | None]:
        """Take `station_id` for this node: (previous owner node or None, claim seq). A seq of
        None means Redis could not be reached: the claim is made at the next resync."""
        if not self.healthy:
            # Redis was away at the last try: don't make the station wait for a connect
            # timeout; the resync that follows Redis's return claims it
            return None, None
        value = Owner(self.node_id, protocol).encode()
        try:
            old, seq = await self.redis.eval(  # type: ignore[misc]
                _CLAIM, 2, self.keys.owners, self._seq_key, station_id, value, self.node_id, self._channel
            )
            seq = int(seq)
        except REDIS_TROUBLE as exc:
            self._trouble("claim", station_id, exc)
            return None, None
        self._fine()
        self._mirror[station_id] = Owner(self.node_id, protocol)
        previous = Owner.decode(old)
        if previous is not None and previous.node_id != self.node_id:
            log.info("%s: taken over from node %s", station_id, previous.node_id)
            return previous.node_id, int(seq)
        return None, int(seq)

    async def release(self, station_id: str) -> bool | None:
        """Give `station_id` up if this node still holds it. True: released (or nobody held
        it); False: another node holds it now (the station reconnected there); None: Redis
        could not be reached (nobody can tell; the resync cleans up)."""
        if not self.healthy:
            return None
        try:
            result = await self.redis.eval(  # type: ignore[misc]
                _RELEASE, 2, self.keys.owners, self._seq_key, station_id, self.node_id, self._channel
            )
        except REDIS_TROUBLE as exc:
            self._trouble("release", station_id, exc)
            return None
        self._fine()
        if int(result) == 0:
            return False
        mirrored = self._mirror.get(station_id)
        if mirrored is not None and mirrored.node_id == self.node_id:
            del self._mirror[station_id]
        return True

    # ---- questions -------------------------------------------------------------------------

    async def owner(self, station_id: str) -> Owner | None:
        """The live owner of `station_id` now, from Redis (None: no owner, or a dead one).
        Raises the REDIS_TROUBLE exceptions: a caller that routes must know Redis is away."""
        found = await self.redis.eval(  # type: ignore[misc]
            _OWNER_ALIVE, 1, self.keys.owners, station_id, self.keys.node("")
        )
        if not found:
            return None
        value, exists = found
        owner = Owner.decode(value)
        if owner is None or not int(exists):
            return None
        return owner

    async def live_owners(self, station_ids: list[str], chunk: int = 1000) -> dict[str, Owner]:
        """The owners of `station_ids` whose node is alive (others are left out). Raises on
        Redis trouble."""
        found: dict[str, Owner] = {}
        for start in range(0, len(station_ids), chunk):
            part = station_ids[start : start + chunk]
            values = await self.redis.hmget(self.keys.owners, part)
            for station_id, value in zip(part, values, strict=True):
                owner = Owner.decode(value)
                if owner is not None:
                    found[station_id] = owner
        living = await alive(self.redis, self.keys, [o.node_id for o in found.values()])
        return {sid: owner for sid, owner in found.items() if owner.node_id in living}

    def mirrored_owner(self, station_id: str) -> Owner | None:
        """From the mirror (no I/O): the owner, if its node was alive at the last look."""
        owner = self._mirror.get(station_id)
        if owner is None or owner.node_id not in self._alive:
            return None
        return owner

    def mirrored_stations(self) -> list[str]:
        return [sid for sid, owner in self._mirror.items() if owner.node_id in self._alive]

    # ---- running ---------------------------------------------------------------------------

    async def start(self, wait: float = 5.0) -> None:
        """Follow the channel and load the mirror; returns once both are done (so no notice
        is missed from then on), or after `wait` seconds: Redis away at start is not fatal
        here (the node beacon decides that), the loop keeps trying."""
        self._task = asyncio.create_task(self._run(), name="station-registry")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def kick(self) -> None:
        """Ask for a resync soon (e.g. a claim could not be made)."""
        self._kick.set()

    async def resync(self) -> None:
        """Reload the whole hash and the live nodes, and re-claim this node's stations that are
        missing or held by a dead node; a station we hold that a live node claimed since is
        handed to the takeover handler (its socket here is stale)."""
        raw = await self.redis.hgetall(self.keys.owners)
        # claims from here on go straight to Redis again; the snapshot of ours below is taken
        # after this, so a station whose claim was skipped during the outage is in it
        self._fine()
        table: dict[str, Owner] = {}
        for station_id, value in raw.items():
            owner = Owner.decode(value)
            if owner is not None:
                table[str(station_id)] = owner
            else:
                log.warning("station registry: ignored a malformed owner for %.60r: %.60r", station_id, value)
        living = await alive(self.redis, self.keys, [o.node_id for o in table.values()])
        living.add(self.node_id)
        local = dict(self._local())
        pipe = self.redis.pipeline(transaction=False)
        reclaimed: list[tuple[str, str]] = []
        for station_id, (protocol, _seq) in local.items():
            current = table.get(station_id)
            mine = Owner(self.node_id, protocol)
            if current == mine:
                continue
            if current is not None and current.node_id != self.node_id and current.node_id in living:
                # claimed by a live node while we could not hear it: our socket is the stale one
                if self._on_takeover is not None:
                    self._on_takeover(station_id, 0)
                continue
            expected = "" if station_id not in raw else str(raw[station_id])
            pipe.eval(
                _RECLAIM,
                2,
                self.keys.owners,
                self._seq_key,
                station_id,
                mine.encode(),
                expected,
                self._channel,
            )
            reclaimed.append((station_id, protocol))
        # ours in Redis but closed here while Redis was away: give them up (compare-and-delete)
        stale = [sid for sid, o in table.items() if o.node_id == self.node_id and sid not in local]
        for station_id in stale:
            pipe.eval(_RELEASE, 2, self.keys.owners, self._seq_key, station_id, self.node_id, self._channel)
            del table[station_id]
        if reclaimed or stale:
            results = (await pipe.execute())[: len(reclaimed)]
            done = [sid for (sid, _p), seq in zip(reclaimed, results, strict=True) if int(seq)]
            for station_id, protocol in reclaimed:
                if station_id in done:
                    table[station_id] = Owner(self.node_id, protocol)
            log.info(
                "station registry: re-claimed %d station(s) held here, released %d closed here",
                len(done),
                len(stale),
            )
        self._mirror = table
        self._alive = living
        self.resyncs += 1

    async def _refresh_alive(self) -> None:
        nodes = {o.node_id for o in self._mirror.values()}
        living = await alive(self.redis, self.keys, sorted(nodes))
        living.add(self.node_id)
        self._alive = living

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except REDIS_TROUBLE as exc:
                self._trouble("follow", "", exc)
            except Exception:
                log.exception("station registry: unexpected error; starting again")
            await asyncio.sleep(1.0)

    async def _follow(self) -> None:
        """Subscribe first, then resync, so no change falls between the two; then apply
        notices, refresh node liveness every lease/3 and resync every `resync_seconds`."""
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            await self.resync()
            self._ready.set()
            next_resync = self._monotonic() + self.resync_seconds
            next_alive = self._monotonic() + self.lease_seconds / 3
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None and message.get("type") == "message":
                    self._apply(message.get("data"))
                now = self._monotonic()
                if self._kick.is_set() or now >= next_resync:
                    self._kick.clear()
                    await self.resync()
                    next_resync = now + self.resync_seconds
                    next_alive = now + self.lease_seconds / 3
                elif now >= next_alive:
                    await self._refresh_alive()
                    next_alive = now + self.lease_seconds / 3
        finally:
            with contextlib.suppress(*REDIS_TROUBLE, RuntimeError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _apply(self, data: Any) -> None:
        change = OwnerChange.parse(data)
        if change is None:
            log.warning("station registry: ignored a malformed change notice: %.200r", data)
            return
        if change.owner is None:
            self._mirror.pop(change.station_id, None)
            return
        self._mirror[change.station_id] = change.owner
        self._alive.add(change.owner.node_id)  # it just claimed: alive
        if change.owner.node_id == self.node_id:
            return
        held = self._local().get(change.station_id)
        if held is None:
            return
        _protocol, our_seq = held
        if our_seq is None or change.seq < our_seq:
            # our own claim is still on its way, or newer than this notice: the resync decides
            return
        if self._on_takeover is not None:
            self._on_takeover(change.station_id, change.seq)

    # ---- health ----------------------------------------------------------------------------

    def _trouble(self, what: str, station_id: str, exc: BaseException) -> None:
        if self.healthy:
            log.error(
                "station registry: redis unreachable (%s %s): %s; serving the stations held here, "
                "re-claiming them when it returns",
                what,
                station_id,
                exc,
            )
        self.healthy = False
        self._kick.set()

    def _fine(self) -> None:
        if not self.healthy:
            log.warning("station registry: redis is back")
        self.healthy = True

    @property
    def _channel(self) -> str:
        return self.keys.owner_changes

    @property
    def _seq_key(self) -> str:
        return self.keys("owners", "seq")


class OrphanSweeper:
    """On gateway nodes: finds the stations a dead gateway left `online` and marks them offline
    (`stations.mark_orphans_offline`), every `interval` seconds, on one node of the cluster at
    a time (the lease "station-sweep"). A station must look orphaned for `grace` seconds (the
    node lease by default) before it is marked."""

    LEASE = "station-sweep"

    def __init__(
        self,
        ctx: ServiceContext,
        registry: StationRegistry,
        *,
        interval: float | None = None,
        grace: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.registry = registry
        lease = ctx.settings.cluster_lease_seconds
        self.interval = lease / 2 if interval is None else interval
        self.grace = timedelta(seconds=lease if grace is None else grace)
        self.suspects: dict[str, datetime] = {}
        self.sweeps = 0  # sweeps done here (tests wait on it)
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> list[str]:
        """One sweep: the station ids marked offline."""
        closed = await stations.mark_orphans_offline(self.ctx, self.registry, self.suspects, self.grace)
        self.sweeps += 1
        return closed

    async def start(self) -> None:
        ttl = self.ctx.settings.cluster_lease_seconds
        self._task = asyncio.create_task(
            while_leading(self.ctx.leases, self.LEASE, self._loop, ttl=ttl), name="station-sweep"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        # a new leader starts with no memory: every suspect waits out its grace again
        self.suspects.clear()
        failing = False
        while True:
            try:
                await self.sweep_once()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database away: the next sweep tries again
                if not failing:
                    log.error("station sweep failed: %r; trying again every %g s", exc, self.interval)
                failing = True
            await asyncio.sleep(self.interval)
