"""Cluster-wide limits: login lock-out and token-bucket rate limits whose counts every process
shares (issue 18, point 6).

In one process (no Redis) the counts stay in the process's memory, exactly as before: the
in-memory objects (`domain.login_throttle.LoginThrottle`, `opendata.ratelimit.TokenBuckets`,
`domain.problem_reports.ReportThrottle`) are the truth. With Redis each count is a small hash
under `limit:<kind>:<hashed key>`, changed by one Lua script per request (atomic: two processes
counting the same address at once cannot both slip through), and expiring on its own when it no
longer matters (a login record after the throttle's `forget_after`, a bucket once full again).

**Redis away: fail open to the local counts.** A lock-out that failed closed would lock every
operator and every station with a password out for the length of a Redis outage; a rate limit
that failed closed would turn a Redis outage into an open-data outage. So while Redis cannot be
reached each process counts on its own in memory (what Stekker did before the cluster): an
attacker gets at most N times the budget for the length of the outage, which is still slowed.
After a failure Redis is not asked again for `RETRY_AFTER` seconds, so an outage that makes
every command wait for its timeout costs that wait once, not on every login or handshake.

Keys hold no raw user names or addresses: each is hashed (`key_part`), so odd characters,
very long names and IPv6 addresses give keys of one fixed shape.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from redis.asyncio import Redis

from stekker.cluster.redis_link import REDIS_TROUBLE, Keys
from stekker.domain.login_throttle import LoginThrottle, user_key

log = logging.getLogger(__name__)

#: Seconds Redis is left alone after it failed (the local counts serve meanwhile).
RETRY_AFTER = 5.0


def key_part(text: str) -> str:
    """A fixed-length, Redis- and log-safe stand-in for a user name, address or station id."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class Breaker:
    """Whether to ask Redis now: not for `pause` seconds after it failed. Logs the start and the
    end of an outage once each, not per request."""

    def __init__(self, what: str, pause: float = RETRY_AFTER, clock: Callable[[], float] = time.monotonic):
        self.what = what
        self.pause = pause
        self._clock = clock
        self._down_until = -math.inf
        self.down = False

    def usable(self) -> bool:
        return self._clock() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        self._down_until = self._clock() + self.pause
        if not self.down:
            self.down = True
            log.warning(
                "%s: redis unreachable (%s); counting in this process until it is back", self.what, exc
            )

    def ok(self) -> None:
        if self.down:
            self.down = False
            log.warning("%s: redis is back; counting cluster-wide again", self.what)


# ---- login lock-out -------------------------------------------------------------------------

# The rule of domain.login_throttle (`delay_after`, forgetting after `forget_after`), on two
# hashes {f: failures, l: last failure in ms}: KEYS[1] the (name, address) pair, KEYS[2] the
# address. ARGV: now ms, pair free failures, address free failures, base ms, cap ms, forget ms,
# "1" to count this attempt when admitted (admit) or "0" to only ask (retry_after).
# Returns -1 when the attempt may go ahead, else the milliseconds still to wait.
_LOGIN_ADMIT = """
local now = tonumber(ARGV[1])
local base, cap, forget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function ready(key, free)
  local v = redis.call('HMGET', key, 'f', 'l')
  if not v[1] then return nil end
  local failures, last = tonumber(v[1]), tonumber(v[2])
  if last <= now - forget then
    redis.call('DEL', key)
    return nil
  end
  if failures < free then return last end
  local doublings = failures - free
  if doublings >= 64 then return last + cap end
  return last + math.min(cap, base * 2 ^ doublings)
end
local moment = nil
for i, free in ipairs({tonumber(ARGV[2]), tonumber(ARGV[3])}) do
  local r = ready(KEYS[i], free)
  if r and (not moment or r > moment) then moment = r end
end
if moment and moment > now then return math.ceil(moment - now) end
if ARGV[7] == '1' then
  for i = 1, 2 do
    redis.call('HINCRBY', KEYS[i], 'f', 1)
    redis.call('HSET', KEYS[i], 'l', ARGV[1])
    redis.call('PEXPIRE', KEYS[i], forget)
  end
end
return -1
"""

# The admitted attempt had the right password: the pair starts again, the address loses one.
_LOGIN_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('HINCRBY', KEYS[2], 'f', -1) <= 0 then
  redis.call('DEL', KEYS[2])
end
return 0
"""


class SharedLoginThrottle:
    """The login throttle's rule (`domain.login_throttle`) with its counts in Redis, so every
    process of the cluster sees the same failures; `rule` holds the parameters and is the
    in-memory store in one process and while Redis is away.

    `kind` names what is throttled ("login" for operators, "station" for station passwords), so
    the two never share counts. Every method takes `now` from the caller's injected clock."""

    def __init__(self, rule: LoginThrottle, redis: Redis | None, keys: Keys, kind: str) -> None:
        self.rule = rule
        self._redis = redis
        self._keys = keys
        self.kind = kind
        self.breaker = Breaker(f"{kind} throttle")

    @property
    def shared(self) -> bool:
        return self._redis is not None

    def _key_pair(self, username: str, address: str) -> list[str]:
        pair = key_part(f"{user_key(username)}\x00{address}")
        return [self._keys.limit(self.kind, "p" + pair), self._keys.limit(self.kind, "a" + key_part(address))]

    async def _ask(self, username: str, address: str, now: datetime, count: bool) -> tuple[bool, int | None]:
        """(whether Redis answered, the wait in whole seconds or None when free)."""
        if self._redis is None or not self.breaker.usable():
            return False, None
        rule = self.rule
        ms = _ms(now)
        args: list[Any] = [
            ms,
            rule.free_failures,
            rule.address_free_failures,
            rule.base_delay.total_seconds() * 1000,
            rule.max_delay.total_seconds() * 1000,
            max(1, int(rule.forget_after.total_seconds() * 1000)),
            "1" if count else "0",
        ]
        try:
            wait = int(await self._redis.eval(_LOGIN_ADMIT, 2, *self._key_pair(username, address), *args))  # type: ignore[misc]
        except REDIS_TROUBLE as exc:
            self.breaker.failed(exc)
            return False, None
        self.breaker.ok()
        return True, None if wait < 0 else max(1, math.ceil(wait / 1000))

    async def admit(self, username: str, address: str, now: datetime) -> int | None:
        """Admit an attempt, counted as a failure until `succeeded`; or the whole seconds to
        wait (nothing counted then). See `LoginThrottle.admit`."""
        answered, wait = await self._ask(username, address, now, count=True)
        return wait if answered else self.rule.admit(username, address, now)

    async def retry_after(self, username: str, address: str, now: datetime) -> int | None:
        answered, wait = await self._ask(username, address, now, count=False)
        return wait if answered else self.rule.retry_after(username, address, now)

    async def succeeded(self, username: str, address: str) -> None:
        """The admitted attempt had the right password (see `LoginThrottle.succeeded`)."""
        if self._redis is not None and self.breaker.usable():
            try:
                await self._redis.eval(_LOGIN_SUCCEEDED, 2, *self._key_pair(username, address))  # type: ignore[misc]
            except REDIS_TROUBLE as exc:
                self.breaker.failed(exc)
            else:
                self.breaker.ok()
                return
        self.rule.succeeded(username, address)


def login_throttle_for(redis: Redis | None, keys: Keys, kind: str, **params: Any) -> SharedLoginThrottle:
    """A throttle with `LoginThrottle(**params)`'s rule: shared through `redis` when given
    (`ctx.redis`, `ctx.keys`), in this process's memory when None."""
    return SharedLoginThrottle(LoginThrottle(**params), redis, keys, kind)


# ---- token buckets --------------------------------------------------------------------------

# A token bucket per key: {t: tokens, a: when they were counted, ms}. ARGV: now ms, tokens per
# ms, burst. Takes one token when there is one (returns 0), else takes nothing and returns the
# ms until there is one. A full bucket is the same as none, so the key expires once it would
# be full again. A clock behind the last writer's (another machine) refills nothing, never less.
_BUCKET_TAKE = """
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 't', 'a')
local tokens, at = burst, now
if v[1] then
  tokens, at = tonumber(v[1]), tonumber(v[2])
  if now > at then
    tokens = math.min(burst, tokens + (now - at) * rate)
    at = now
  end
end
if tokens < 1 then return math.max(1, math.ceil((1 - tokens) / rate)) end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'a', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return 0
"""


class Limiter(Protocol):
    """Something that says whether one more request under `key` may go ahead now."""

    async def take(self, key: str) -> float:
        """0 when it may (and it is counted), else the seconds until it may."""
        ...


class LocalBuckets:
    """One process: the in-memory buckets (`take` of TokenBuckets or ReportThrottle)."""

    def __init__(self, local: Callable[[str], float]) -> None:
        self._local = local

    async def take(self, key: str) -> float:
        return self._local(key)


class SharedBuckets:
    """Token buckets in Redis, one per key of `kind`: `burst` at once, then `rate` per second,
    for the whole cluster. `local` (an in-memory bucket's take) serves while Redis is away.

    `clock` is wall time in seconds (every process must read the same clock: time.time, not
    monotonic)."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        kind: str,
        *,
        rate: float,
        burst: int,
        local: Callable[[str], float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self._redis = redis
        self._keys = keys
        self.kind = kind
        self.rate = rate
        self.burst = burst
        self._local = local
        self._clock = clock
        self.breaker = Breaker(f"{kind} rate limit")

    async def take(self, key: str) -> float:
        if self.breaker.usable():
            now_ms = int(self._clock() * 1000)
            try:
                wait_ms = await self._redis.eval(  # type: ignore[misc]
                    _BUCKET_TAKE,
                    1,
                    self._keys.limit(self.kind, key_part(key)),
                    now_ms,
                    self.rate / 1000,
                    self.burst,
                )
            except REDIS_TROUBLE as exc:
                self.breaker.failed(exc)
            else:
                self.breaker.ok()
                return int(wait_ms) / 1000
        return self._local(key)


def buckets_for(
    redis: Redis | None,
    keys: Keys,
    kind: str,
    *,
    rate: float,
    burst: int,
    local: Callable[[str], float],
    clock: Callable[[], float] = time.time,
) -> Limiter:
    """Shared buckets when `redis` is given (`ctx.redis`), else the in-memory `local` ones."""
    if redis is None:
        return LocalBuckets(local)
    return SharedBuckets(redis, keys, kind, rate=rate, burst=burst, local=local, clock=clock)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
