"""Leases: work that must run in one process at a time, taken over when that process dies.

A lease is a name held by one node until it expires; the holder renews it well before then.
One process (no Redis) holds every lease (`LocalLeases`). In a cluster the lease is a Redis key
set with NX and a time to live (`RedisLeases`): when the holder is killed, the key expires and
another node takes it at its next try, so takeover takes at most the TTL plus one try interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import Redis

from stekker.cluster.redis_link import REDIS_TROUBLE, Keys

log = logging.getLogger(__name__)

# Renew (or extend) only what we still hold: compare-and-set in one round trip.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Leases:
    """Base: `try_take` a named lease (or keep it), `release` it, ask who holds one."""

    node_id: str = ""

    async def try_take(self, name: str, ttl: float) -> bool:
        """True when this node holds `name` for `ttl` seconds from now (taken or renewed)."""
        raise NotImplementedError

    async def release(self, name: str) -> None:
        raise NotImplementedError

    async def holder(self, name: str) -> str | None:
        raise NotImplementedError

    def held(self) -> list[str]:
        """The leases this node believes it holds (for /metrics and `cluster status`)."""
        raise NotImplementedError


class LocalLeases(Leases):
    """One process: every lease is ours."""

    def __init__(self, node_id: str = "local") -> None:
        self.node_id = node_id
        self._held: set[str] = set()

    async def try_take(self, name: str, ttl: float) -> bool:
        self._held.add(name)
        return True

    async def release(self, name: str) -> None:
        self._held.discard(name)

    async def holder(self, name: str) -> str | None:
        return self.node_id if name in self._held else None

    def held(self) -> list[str]:
        return sorted(self._held)


class RedisLeases(Leases):
    """Leases as Redis keys `lease:<name>` = node id, with a TTL. Redis away: we hold nothing."""

    def __init__(self, redis: Redis, keys: Keys, node_id: str) -> None:
        self.node_id = node_id
        self._redis = redis
        self._keys = keys
        self._held: set[str] = set()

    async def try_take(self, name: str, ttl: float) -> bool:
        key = self._keys.lease(name)
        ms = max(1, int(ttl * 1000))
        try:
            if await self._redis.set(key, self.node_id, nx=True, px=ms):
                self._held.add(name)
                return True
            renewed = bool(await self._redis.eval(_RENEW, 1, key, self.node_id, ms))  # type: ignore[misc]
        except REDIS_TROUBLE:
            # without Redis we cannot know that no one else took it: stop leading
            self._held.discard(name)
            return False
        if renewed:
            self._held.add(name)
        else:
            self._held.discard(name)
        return renewed

    async def release(self, name: str) -> None:
        self._held.discard(name)
        with contextlib.suppress(*REDIS_TROUBLE):
            await self._redis.eval(_RELEASE, 1, self._keys.lease(name), self.node_id)  # type: ignore[misc]

    async def holder(self, name: str) -> str | None:
        value = await self._redis.get(self._keys.lease(name))
        return None if value is None else str(value)

    def held(self) -> list[str]:
        return sorted(self._held)


async def while_leading(
    leases: Leases,
    name: str,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    ttl: float,
    retry: float | None = None,
) -> None:
    """Run `work` (a loop that runs until cancelled) only while this node holds lease `name`.

    Renews every ttl/3; when a renewal fails (another node took it, or Redis is away), `work`
    is cancelled at once, and taken up again when the lease is ours again. Returns only when
    cancelled itself (the lease is then released, so a successor need not wait out the TTL)."""
    retry = ttl / 3 if retry is None else retry
    task: asyncio.Task[None] | None = None
    try:
        while True:
            ours = await leases.try_take(name, ttl)
            if ours and (task is None or task.done()):
                if task is not None and task.done() and not task.cancelled() and task.exception():
                    log.error("%s stopped: %r; starting it again", name, task.exception())
                log.info("%s: this node leads it now", name)
                task = asyncio.create_task(work(), name=f"lease:{name}")
            elif not ours and task is not None:
                log.warning("%s: lease lost; stopping here", name)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                task = None
            await asyncio.sleep(retry)
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await leases.release(name)
