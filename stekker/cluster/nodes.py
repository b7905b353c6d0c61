"""Each node's heartbeat in Redis, and the list of live nodes (`stekker cluster status`).

A node is alive while its key `node:<id>` exists: the beacon rewrites it every lease/3 seconds
with a time to live of one lease, so a killed process drops out of the list one lease after its
last beat. Other parts ask `alive()` before trusting what a node claims (the station registry:
a station held by a dead node is offline).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from stekker.cluster.node import NodeInfo
from stekker.cluster.redis_link import REDIS_TROUBLE, Keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One live node as its last heartbeat described it."""

    node_id: str
    roles: list[str]
    started_at: float
    heartbeat_at: float
    stations: int
    leading: list[str]
    detail: dict[str, Any] = field(default_factory=dict)


class NodeBeacon:
    """Writes this node's heartbeat until stopped. `describe` adds what the node holds now
    (stations, leases): called at each beat, it must be cheap and must not raise."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        node: NodeInfo,
        lease_seconds: float,
        describe: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self.node = node
        self.lease_seconds = lease_seconds
        self._describe = describe
        self._started = time.time()
        self._task: asyncio.Task[None] | None = None
        self.last_beat_ok: bool = False

    async def beat(self) -> None:
        now = time.time()
        described = self._describe()
        payload = {
            "roles": self.node.role_names,
            "started_at": self._started,
            "heartbeat_at": now,
            "stations": int(described.pop("stations", 0)),
            "leading": list(described.pop("leading", [])),
            "detail": described,
        }
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._keys.node(self.node.node_id), orjson.dumps(payload), px=int(self.lease_seconds * 1000))
        pipe.zadd(self._keys.nodes, {self.node.node_id: now})
        # the index forgets nodes that have been silent for a day
        pipe.zremrangebyscore(self._keys.nodes, "-inf", now - 86_400)
        await pipe.execute()

    async def start(self) -> None:
        """The first beat is written before `start` returns: a node that cannot announce
        itself does not serve (Redis unreachable at start is a start-up error)."""
        await self.beat()
        self.last_beat_ok = True
        self._task = asyncio.create_task(self._run(), name="node-beacon")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self.beat()
                if not self.last_beat_ok:
                    log.warning("redis is back: node %s beating again", self.node.node_id)
                self.last_beat_ok = True
            except REDIS_TROUBLE as exc:
                if self.last_beat_ok:
                    log.error("redis unreachable, node %s cannot beat: %s", self.node.node_id, exc)
                self.last_beat_ok = False

    async def stop(self) -> None:
        """Leave the cluster at once (a clean stop need not wait out the lease)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(*REDIS_TROUBLE):
            await self._redis.delete(self._keys.node(self.node.node_id))
            await self._redis.zrem(self._keys.nodes, self.node.node_id)


async def alive(redis: Redis, keys: Keys, node_ids: list[str]) -> set[str]:
    """Which of `node_ids` are alive now (their heartbeat key has not expired)."""
    unique = sorted(set(node_ids))
    if not unique:
        return set()
    pipe = redis.pipeline(transaction=False)
    for node_id in unique:
        pipe.exists(keys.node(node_id))
    found = await pipe.execute()
    return {node_id for node_id, exists in zip(unique, found, strict=True) if exists}


async def live_nodes(redis: Redis, keys: Keys) -> list[NodeStatus]:
    """Every node whose heartbeat has not expired, oldest first."""
    ids = [str(i) for i in await redis.zrange(keys.nodes, 0, -1)]
    if not ids:
        return []
    try:
        values = await redis.mget([keys.node(i) for i in ids])
    except UnicodeDecodeError:  # a value that is not text at all: read them one by one
        values = [await _text_or_none(redis, keys.node(i)) for i in ids]
    nodes = []
    for node_id, raw in zip(ids, values, strict=True):
        if raw is None:
            continue
        try:
            data = orjson.loads(raw)
            nodes.append(
                NodeStatus(
                    node_id=node_id,
                    roles=[str(r) for r in data.get("roles", [])],
                    started_at=float(data.get("started_at", 0)),
                    heartbeat_at=float(data.get("heartbeat_at", 0)),
                    stations=int(data.get("stations", 0)),
                    leading=[str(x) for x in data.get("leading", [])],
                    detail=dict(data.get("detail", {})),
                )
            )
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            # not written by a beacon (another program, an older version): listed, not trusted
            log.warning("node %s: unreadable heartbeat in Redis, left out of the list", node_id)
    return sorted(nodes, key=lambda n: n.started_at)


async def _text_or_none(redis: Redis, key: str) -> str | None:
    try:
        value = await redis.get(key)
    except UnicodeDecodeError:
        return "\x00"  # unreadable: the caller leaves it out
    return None if value is None else str(value)
