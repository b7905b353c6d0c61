"""The event bus of a cluster: one Redis stream that every process writes and reads.

Why a stream, not pub/sub: pub/sub forgets what nobody was listening to at that instant; a
stream keeps entries, so a consumer group can hand each event to one member, wait for its
acknowledgement and give an entry to another member when the first one dies.

- `publish` adds an entry (`stekker.bus.codec` says what it holds) to `keys.events`. It never
  raises: when Redis refuses or does not answer within PUBLISH_TIMEOUT, the event is kept in
  PostgreSQL (`stekker.bus.backlog`) and a relay task puts it on the stream when Redis answers
  again, oldest first. Meanwhile this process's own fan-out listeners get it at once (and not
  a second time when it comes back through the stream).
- Fan-out subscribers (`group=None`): one reader per process follows the stream from where the
  process started (XREAD BLOCK from the last id it saw) and runs each matching handler as a
  task, as InProcessBus does; the publisher's own process hears its events the same way.
- A consumer group (`group="cdr"`): one reader per group name per process, a member named after
  the node id. Each entry goes to one member; the member runs every handler of that group whose
  prefix matches, one entry at a time in stream order, and acknowledges (XACK) when all of them
  returned. A handler that raises leaves the entry pending; a periodic XAUTOCLAIM (entries idle
  longer than `claim_idle`) takes over the entries of a dead member and retries failed ones;
  after `max_deliveries` an entry is logged as an error and acknowledged, so one poisonous
  event cannot block a group for ever. Handlers must be idempotent (an entry handled just before
  its member died is handled again). A handler that starts long work should start a task and
  return: the next entries of the group wait for it in this process.

One group name is one subscriber: every process that joins group "x" must subscribe the same
(prefix, handler) pairs under it (the same code, the worker role), since an entry goes to one
member, which acknowledges it after running the handlers *it* has. Several `subscribe` calls may
name one group (one per topic of the same consumer); a handler registered in only some
processes would miss the entries the others took.

Where a new group starts: at the end of the stream ("$"), not at its beginning ("0"). "0" would
replay up to MAXLEN old events (notifications sent again, old sessions rebuilt) whenever a group
is added in a new release or Redis lost its groups. The risk of "$" is an event published before
the group existed; so every process creates the durable groups of DURABLE_GROUPS (and those it
subscribes) when it starts, before it publishes, and the publish script creates them with the
stream when the stream is missing (Redis restarted empty). A member that finds its group gone
(NOGROUP) creates it again after the last entry it saw, so nothing after that is skipped.

Redis away: readers retry with backoff and resume: fan-out from its last id, a group first with
its own pending entries (read from "0"), then new ones; nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stekker import metrics
from stekker.bus import Event, Handler
from stekker.bus.backlog import Backlog, Kept
from stekker.bus.codec import Entry, MalformedEntry, decode_entry, encode_data
from stekker.cluster.redis_link import REDIS_TROUBLE, Keys, connect

log = logging.getLogger(__name__)

# The stream is capped (approximately: Redis trims whole nodes, cheap) at this many entries so a
# group that nobody reads any more (renamed in a release) cannot fill Redis's memory: ~100-200 MB
# at our entry sizes. Below the cap the stream is trimmed to what every group has acknowledged
# (`trim`), so in normal running it holds minutes of events, and the cap is only reached when a
# group has been stuck for a long time (at 1,000 events/s: over 8 minutes; then the oldest of its
# unread events are lost, which the error log of `trim` says).
MAXLEN = 500_000
# Entries every group has acknowledged are still kept this long, for fan-out readers that were
# away (a reconnect resumes from the last id it saw).
FANOUT_KEEP_MS = 5 * 60 * 1000
# A station's frame waits at most this long for Redis before its event is kept in the database.
PUBLISH_TIMEOUT = 1.0
# Blocking reads: long enough to cost nothing, short enough to notice a cancel or a claim due.
BLOCK_MS = 2000

# The consumer groups the code base subscribes (services/cdrs, ocpi pushes, the local list
# syncer and the partners' lists in app.py, bulk jobs). Every process creates them at start, so
# the first events a gateway publishes are kept for a worker that starts later. A new group's
# name goes here (tests/test_bus_streams.py finds the names in the code and checks).
DURABLE_GROUPS: tuple[str, ...] = (
    "cdr",
    "ocpi-location-pushes",
    "ocpi-roaming-pushes",
    "local-list-sync",
    "partner-local-lists",
    "jobs",
)

# One round trip: create the groups with the stream when it is missing (Redis restarted empty),
# then add the entry. ARGV: maxlen, topic, data, at, node, fanned ("" = no), group names...
_PUBLISH = """
if redis.call('exists', KEYS[1]) == 0 then
  for i = 7, #ARGV do
    redis.pcall('xgroup', 'create', KEYS[1], ARGV[i], '$', 'MKSTREAM')
  end
end
if ARGV[6] == '' then
  return redis.call('xadd', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
    'topic', ARGV[2], 'data', ARGV[3], 'at', ARGV[4], 'node', ARGV[5])
end
return redis.call('xadd', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
  'topic', ARGV[2], 'data', ARGV[3], 'at', ARGV[4], 'node', ARGV[5], 'fanned', ARGV[6])
"""


# Python 3.11's asyncio.wait_for can swallow a cancel that races its inner future's completion
# (the reader then never stops); asyncio.timeout() does not, so every bound here uses it.

# Redis refused, is away, or did not answer in time
_AWAY: tuple[type[Exception], ...] = (*REDIS_TROUBLE, TimeoutError)


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class _Backoff:
    """Waits between retries while Redis is away: 0.1 s doubling to 2 s, jittered so that a
    cluster's readers do not knock all at once."""

    def __init__(self, first: float = 0.1, most: float = 2.0) -> None:
        self.first = first
        self.most = most
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    async def sleep(self) -> None:
        await asyncio.sleep(self.delay * random.uniform(0.5, 1.0))
        self.delay = min(self.most, self.delay * 2)


class StreamBus:
    """The `EventBus` of a cluster, on a Redis stream (see the module docstring).

    `db` keeps events published while Redis is away (None: in memory, for tests). `claim_idle`:
    seconds an entry stays with a member before another takes it (a dead member's, or a failed
    handler's retry); the default, two leases, outlives a busy handler. `groups`: the durable
    group names created at start. The app calls `start()` before the first publish it wants
    delivered to groups and `stop()` at shutdown.
    """

    def __init__(
        self,
        redis_url: str,
        keys: Keys,
        node_id: str,
        db: async_sessionmaker[AsyncSession] | None,
        *,
        groups: Iterable[str] = DURABLE_GROUPS,
        claim_idle: float = 20.0,
        max_deliveries: int = 10,
        batch: int = 100,
        relay_interval: float = 5.0,
        trim_interval: float = 60.0,
        maxlen: int = MAXLEN,
        backlog_memory: int = 100_000,
    ) -> None:
        self.node_id = node_id
        self.keys = keys
        self.stream = keys.events
        self.claim_idle = claim_idle
        self.max_deliveries = max_deliveries
        self.batch = batch
        self.relay_interval = relay_interval
        self.trim_interval = trim_interval
        self.maxlen = maxlen
        self._redis: Redis = connect(redis_url)
        # XREAD / XREADGROUP BLOCK wait on purpose: a client without a per-command timeout
        self._blocking: Redis = connect(redis_url, blocking=True)
        self._script = self._redis.register_script(_PUBLISH)
        self._groups_known: list[str] = list(dict.fromkeys(groups))
        self._fanout: list[tuple[str, Handler]] = []
        self._groups: dict[str, list[tuple[str, Handler]]] = {}
        self._group_tasks: dict[str, asyncio.Task[None]] = {}
        self._group_last: dict[str, str] = {}
        self._fanout_task: asyncio.Task[None] | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self._fanout_last: str | None = None
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._backlog = Backlog(db, memory_limit=backlog_memory, batch=max(batch, 100))
        self._relay_wake = asyncio.Event()
        self._direct = True  # False: Redis failed a publish; keep events until the relay caught up
        self._reader_down = False
        self._started = False

    # ---- the EventBus protocol --------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        """Put `event` on the stream; when Redis cannot take it now, keep it (never raises)."""
        data = encode_data(event.data)
        at = event.at.isoformat()
        if self._direct:
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT):
                    await self._add(event.topic, data, at, self.node_id, "")
                return
            except _AWAY as exc:
                # later events go to the backlog too (their order), until the relay sent it all
                self._direct = False
                log.error("redis cannot take events (%s): keeping them until it can", exc)
            except Exception:
                self._direct = False
                log.exception("publishing %s failed: keeping it", event.topic)
        # the listeners of this process need not wait for Redis; they skip it on the stream later
        self._fan_out(Entry(event, self.node_id, ""))
        try:
            kept = Kept(event.topic, orjson.loads(data), event.at, self.node_id, True)
            await self._backlog.keep(kept)
        except Exception:
            log.exception("event %s could not be kept", event.topic)
        self._relay_wake.set()

    def subscribe(self, prefix: str, handler: Handler, *, group: str | None = None) -> Callable[[], None]:
        entry = (prefix, handler)
        if group is None:
            self._fanout.append(entry)

            def unsubscribe_fanout() -> None:
                with contextlib.suppress(ValueError):
                    self._fanout.remove(entry)

            return unsubscribe_fanout
        self._groups.setdefault(group, []).append(entry)
        if group not in self._groups_known:
            self._groups_known.append(group)
        if self._started:
            self._start_group(group)

        def unsubscribe_group() -> None:
            handlers = self._groups.get(group, [])
            with contextlib.suppress(ValueError):
                handlers.remove(entry)
            if not handlers:
                # its pending entries go to another member after claim_idle
                self._groups.pop(group, None)
                task = self._group_tasks.pop(group, None)
                if task is not None:
                    task.cancel()

        return unsubscribe_group

    # ---- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Create the durable groups and start the readers and the relay. Redis away at start is
        not fatal here: the readers keep trying (the node beacon decides whether we may serve)."""
        self._started = True
        try:
            await self._ensure_groups(self._groups_known)
            self._fanout_last = await self._stream_end()
        except REDIS_TROUBLE as exc:
            log.error("redis unreachable at start (%s): the event readers keep trying", exc)
        self._fanout_task = asyncio.create_task(self._fanout_loop(), name="bus-fanout")
        for group in list(self._groups):
            self._start_group(group)
        self._relay_task = asyncio.create_task(self._relay_loop(), name="bus-relay")

    async def stop(self) -> None:
        """Stop reading and relaying. A group entry being handled stays pending (another member
        takes it after claim_idle); events kept in memory are lost (logged), those in the
        database wait for another process's relay."""
        self._started = False
        tasks = [t for t in (self._fanout_task, self._relay_task) if t is not None]
        tasks += list(self._group_tasks.values()) + list(self._handler_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # bounded: a handler that swallows its cancel must not hold up the shutdown
            _, stuck = await asyncio.wait(tasks, timeout=5)
            for task in stuck:
                log.warning("event bus stop: %s did not stop within 5 s", task.get_name())
        self._group_tasks.clear()
        self._fanout_task = self._relay_task = None
        if self._backlog.in_memory:
            log.error("stopping with %d events kept in memory: they are lost", self._backlog.in_memory)
        await self._redis.aclose()
        await self._blocking.aclose()

    # ---- monitoring ------------------------------------------------------------------------

    async def lag(self) -> dict[str, int]:
        """Per group: entries of the stream not yet delivered to any member."""
        return {name: lag for name, lag, _ in await self._group_info()}

    async def pending(self) -> dict[str, int]:
        """Per group: entries delivered to a member and not acknowledged yet."""
        return {name: pending for name, _, pending in await self._group_info()}

    async def backlog_size(self) -> int:
        """Events kept while Redis was away, not yet on the stream."""
        return await self._backlog.size()

    async def refresh_metrics(self) -> None:
        """Set the stream and backlog gauges (called by /metrics before each scrape)."""
        try:
            for name, lag, pending in await self._group_info():
                metrics.STREAM_LAG.labels(group=name).set(lag)
                metrics.STREAM_PENDING.labels(group=name).set(pending)
        except REDIS_TROUBLE as exc:
            log.debug("stream metrics unknown: %s", exc)
        metrics.EVENT_BACKLOG.set(await self.backlog_size())

    async def _group_info(self) -> list[tuple[str, int, int]]:
        try:
            groups = await self._redis.xinfo_groups(self.stream)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return []
            raise
        info = []
        for g in groups:
            lag = g.get("lag")
            if lag is None:
                # Redis cannot tell after deletions in the stream: what is there after its last id
                after: Any = await self._redis.xrange(
                    self.stream, f"({g['last-delivered-id']}", "+", count=10_000
                )
                lag = len(after)
            info.append((str(g["name"]), int(lag), int(g.get("pending", 0))))
        return info

    # ---- writing -----------------------------------------------------------------------------

    async def _add(self, topic: str, data: str, at: str, node: str, fanned: str, client: Any = None) -> Any:
        args: list[Any] = [self.maxlen, topic, data, at, node, fanned, *self._groups_known]
        return await self._script(keys=[self.stream], args=args, client=client)

    async def _send(self, batch: list[Kept]) -> None:
        """Put kept events on the stream in one pipeline; raises when Redis is away."""
        pipe = self._redis.pipeline(transaction=False)
        for item in batch:
            data = orjson.dumps(item.data).decode()
            fanned = item.node if item.fanned else ""
            await self._add(item.topic, data, item.at.isoformat(), item.node, fanned, client=pipe)
        await pipe.execute()

    async def _ensure_groups(self, groups: Iterable[str], at: str = "$") -> None:
        for group in groups:
            try:
                await self._redis.xgroup_create(self.stream, group, id=at, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _stream_end(self) -> str:
        last = await self._redis.xrevrange(self.stream, count=1)
        return str(last[0][0]) if last else "0-0"

    # ---- fan-out -------------------------------------------------------------------------------

    async def _fanout_loop(self) -> None:
        backoff = _Backoff()
        while True:
            try:
                if self._fanout_last is None:
                    self._fanout_last = await self._stream_end()
                async with asyncio.timeout(BLOCK_MS / 1000 + 5):
                    reply: Any = await self._blocking.xread(
                        {self.stream: self._fanout_last}, count=500, block=BLOCK_MS
                    )
            except _AWAY as exc:
                self._reading_failed(exc)
                await backoff.sleep()
                continue
            self._reading_again()
            backoff.reset()
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    self._fanout_last = entry_id
                    try:
                        entry = decode_entry(fields)
                    except MalformedEntry as exc:
                        log.warning("event stream entry %s skipped: %s", entry_id, exc)
                        continue
                    if entry.fanned != self.node_id:
                        self._fan_out(entry)

    def _fan_out(self, entry: Entry) -> None:
        topic = entry.event.topic
        for prefix, handler in list(self._fanout):
            if topic.startswith(prefix):
                task = asyncio.create_task(self._deliver(handler, entry.event))
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_tasks.discard)

    @staticmethod
    async def _deliver(handler: Handler, event: Event) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("event handler failed for %s", event.topic)

    def _reading_failed(self, exc: BaseException) -> None:
        if not self._reader_down:
            log.error("redis unreachable, events are not read (%s); retrying", exc)
        self._reader_down = True

    def _reading_again(self) -> None:
        if self._reader_down:
            log.warning("redis is back: reading events again")
        self._reader_down = False

    # ---- consumer groups -------------------------------------------------------------------

    def _start_group(self, group: str) -> None:
        task = self._group_tasks.get(group)
        if task is None or task.done():
            self._group_tasks[group] = asyncio.create_task(self._group_loop(group), name=f"bus-group:{group}")

    async def _group_loop(self, group: str) -> None:
        backoff = _Backoff()
        resume = True  # at start and after every outage: our own pending entries first
        next_claim = time.monotonic() + self.claim_idle / 2
        while True:
            try:
                if resume:
                    # after an outage the group may be gone (Redis restarted empty): after what we saw
                    await self._ensure_groups([group], at=self._group_last.get(group, "$"))
                    await self._handle_own_pending(group)
                    resume = False
                if time.monotonic() >= next_claim:
                    await self._claim(group)
                    next_claim = time.monotonic() + self.claim_idle / 2
                block = int(min(BLOCK_MS, max(10.0, (next_claim - time.monotonic()) * 1000)))
                async with asyncio.timeout(block / 1000 + 5):
                    reply: Any = await self._blocking.xreadgroup(
                        group, self.node_id, {self.stream: ">"}, count=self.batch, block=block
                    )
                backoff.reset()
                for _stream, entries in reply or []:
                    await self._handle_batch(group, entries)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    log.error("group %s: redis refused: %s", group, exc)
                    await backoff.sleep()
                    continue
                # Redis lost the group (restarted empty): again, after the last entry we saw
                at = self._group_last.get(group, "$")
                log.warning("group %s is gone from redis: created again after %s", group, at)
                with contextlib.suppress(*REDIS_TROUBLE):
                    await self._ensure_groups([group], at=at)
            except _AWAY as exc:
                self._reading_failed(exc)
                resume = True
                await backoff.sleep()

    async def _handle_own_pending(self, group: str) -> None:
        """Entries this member took and did not acknowledge (before a restart with the same node
        id, or an outage): handled again, once each, before new ones."""
        after = "0"
        while True:
            reply: Any = await self._blocking.xreadgroup(
                group, self.node_id, {self.stream: after}, count=self.batch
            )
            entries = reply[0][1] if reply else []
            if not entries:
                return
            after = entries[-1][0]
            await self._handle_batch(group, entries)

    async def _handle_batch(self, group: str, entries: list[Any]) -> None:
        """Handle a batch in stream order, then acknowledge what may be in one XACK: one round
        trip per batch, not per event (a member killed mid-batch has its handled entries handled
        again by another: at most one batch, and handlers are idempotent anyway)."""
        done: list[str] = []
        try:
            for entry_id, fields in entries:
                if await self._handle(group, entry_id, fields):
                    done.append(entry_id)
        finally:
            if done:
                # also when cancelled mid-batch (a stop): what was handled is acknowledged
                with contextlib.suppress(*REDIS_TROUBLE):
                    await self._redis.xack(self.stream, group, *done)

    async def _handle(self, group: str, entry_id: str, fields: Any) -> bool:
        """Run the group's matching handlers; True (acknowledge) when all returned, or none
        matched, or the entry is not an event."""
        if group not in self._group_last or _id(entry_id) > _id(self._group_last[group]):
            self._group_last[group] = entry_id
        try:
            event = decode_entry(fields).event
        except MalformedEntry as exc:
            log.warning("event stream entry %s skipped by group %s: %s", entry_id, group, exc)
            return True
        failed = False
        for prefix, handler in list(self._groups.get(group, [])):
            if event.topic.startswith(prefix):
                try:
                    await handler(event)
                except Exception:
                    failed = True
                    log.exception(
                        "group %s: handler failed for %s (entry %s); retried later",
                        group,
                        event.topic,
                        entry_id,
                    )
        return not failed

    async def _claim(self, group: str) -> None:
        """Take over entries idle longer than claim_idle (a dead member's, or our own failed ones)."""
        start = "0-0"
        for _ in range(10):  # bounded: new entries must not wait behind a long claim
            reply: Any = await self._redis.xautoclaim(
                self.stream, group, self.node_id, int(self.claim_idle * 1000), start, count=self.batch
            )
            start, claimed = str(reply[0]), reply[1]
            if claimed:
                pending = await self._redis.xpending_range(
                    self.stream, group, claimed[0][0], claimed[-1][0], self.batch * 2, self.node_id
                )
                deliveries = {p["message_id"]: int(p["times_delivered"]) for p in pending}
                retry = []
                for entry_id, fields in claimed:
                    if deliveries.get(entry_id, 1) > self.max_deliveries:
                        await self._give_up(group, entry_id, fields)
                    else:
                        retry.append((entry_id, fields))
                await self._handle_batch(group, retry)
            if start == "0-0":
                break
        await self._forget_members(group)

    async def _give_up(self, group: str, entry_id: str, fields: Any) -> None:
        try:
            what = decode_entry(fields).event
            detail = f"{what.topic} {str(what.data)[:500]}"
        except MalformedEntry as exc:
            detail = str(exc)
        log.error(
            "group %s GIVES UP on event stream entry %s after %d deliveries (every handler run failed): %s",
            group,
            entry_id,
            self.max_deliveries,
            detail,
        )
        await self._redis.xack(self.stream, group, entry_id)

    async def _forget_members(self, group: str) -> None:
        """Members of nodes gone for an hour with nothing pending (node ids are new at each start)."""
        for member in await self._redis.xinfo_consumers(self.stream, group):
            if (
                member["name"] != self.node_id
                and int(member["pending"]) == 0
                and int(member["idle"]) > 3_600_000
            ):
                await self._redis.xgroup_delconsumer(self.stream, group, member["name"])

    # ---- relay and trimming ------------------------------------------------------------------

    async def _relay_loop(self) -> None:
        backoff = _Backoff(0.2, 2.0)
        next_trim = time.monotonic() + self.trim_interval
        failing = False
        while True:
            wait = self.relay_interval if self._direct else backoff.delay
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._relay_wake.wait()
            self._relay_wake.clear()
            try:
                await self._relay_once()
                backoff.reset()
                if failing:
                    log.warning("event relay works again")
                failing = False
                if time.monotonic() >= next_trim:
                    next_trim = time.monotonic() + self.trim_interval
                    await self.trim()
            except _AWAY as exc:
                log.debug("relay: redis still away: %s", exc)
                backoff.delay = min(backoff.most, backoff.delay * 2)
            except Exception:
                # the database away (a relay reads the backlog every few seconds): one line, not one
                # every few seconds
                if not failing:
                    log.exception("event relay failed; trying again")
                failing = True

    async def _relay_once(self) -> None:
        if not self._direct:
            await self._redis.ping()
            # Redis may have restarted empty: the groups before the kept events
            await self._ensure_groups(self._groups_known)
        sent = await self._backlog.relay(self._send)
        if not self._direct:
            self._direct = True
            # what a publish kept while we were sending the last batch
            sent += await self._backlog.relay(self._send)
            log.warning("redis takes events again: %d kept events sent to the stream", sent)
        elif sent:
            log.warning("%d kept events sent to the stream", sent)

    async def trim(self, *, approximate: bool = True) -> int:
        """Drop the entries every group has acknowledged, older than FANOUT_KEEP_MS; returns how
        many. Any node may do it (XTRIM MINID is idempotent). `approximate`: only whole nodes of
        the stream (cheap; what the relay loop does)."""
        keep_from = (int(time.time() * 1000) - FANOUT_KEEP_MS, 0)
        try:
            groups = await self._redis.xinfo_groups(self.stream)
        except ResponseError:
            return 0  # no stream yet
        for g in groups:
            keep_from = min(keep_from, _id(str(g["last-delivered-id"])))
            if int(g.get("pending", 0)):
                summary = await self._redis.xpending(self.stream, g["name"])
                if summary.get("min"):
                    keep_from = min(keep_from, _id(str(summary["min"])))
        return int(
            await self._redis.xtrim(
                self.stream, minid=f"{keep_from[0]}-{keep_from[1]}", approximate=approximate
            )
        )
