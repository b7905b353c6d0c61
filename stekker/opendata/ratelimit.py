"""A per-client rate limit for the open-data feeds: a token bucket per IP address.

A client may make `burst` requests at once and `per_minute` requests a minute after that; one
more gets a 429 with Retry-After and a sentence saying what the limit is. Only paths under
/opendata count. In one process the buckets live in its memory; in a cluster
(`TokenBuckets.shared` with Redis) they live in Redis, so a client gets its budget once for all
API processes together, not once per process (`stekker.cluster.limits`; while Redis is away each
process limits on its own again).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis
from starlette.types import ASGIApp, Receive, Scope, Send

from stekker.cluster.limits import SharedBuckets
from stekker.cluster.redis_link import Keys

PREFIX = "/opendata"
_MAX_CLIENTS = 100_000  # beyond this many remembered clients, the full (idle) buckets are forgotten


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """How many requests each client has left, refilled continuously."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.burst = burst
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @classmethod
    def shared(
        cls,
        redis: Redis | None,
        keys: Keys,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] | None = None,
    ) -> TokenBuckets:
        """Buckets for every API process on `redis` (`ctx.redis`, `ctx.keys`); with None, this
        process's own (`clock`: the tests' injected one, else monotonic resp. wall time)."""
        if redis is None:
            return cls(per_minute, burst, clock or time.monotonic)
        return ClusterTokenBuckets(redis, keys, per_minute, burst, clock)

    async def admit(self, client: str) -> float:
        """What the middleware asks: `take`, in this process."""
        return self.take(client)

    def take(self, client: str) -> float:
        """0 if the request may go ahead, else the seconds until it may."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= _MAX_CLIENTS:
                self._forget_idle(now)
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _forget_idle(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self._rate >= self.burst]
        for key in full:
            del self._buckets[key]


class ClusterTokenBuckets(TokenBuckets):
    """The buckets in Redis, shared by every API process; this object's own (in-memory)
    buckets count while Redis is away."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(per_minute, burst, clock or time.monotonic)
        self.cluster = SharedBuckets(
            redis,
            keys,
            "opendata",
            rate=per_minute / 60.0,
            burst=burst,
            local=self.take,
            clock=clock or time.time,
        )

    async def admit(self, client: str) -> float:
        return await self.cluster.take(client)


class RateLimit:
    """ASGI middleware applying `TokenBuckets` to /opendata."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = await self.buckets.admit(client[0] if client else "unknown")
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        seconds = max(1, math.ceil(wait))
        body = orjson.dumps(
            {
                "detail": f"too many requests: open data allows {self.buckets.per_minute} requests a minute "
                f"per client (bursts of {self.buckets.burst}); retry in {seconds} s, or follow "
                "/opendata/stream for changes instead of polling"
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(seconds).encode()),
                    (b"x-ratelimit-limit", str(self.buckets.per_minute).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
