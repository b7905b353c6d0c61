"""The process's connection to Redis, and the names of what Stekker keeps there.

Every key starts with the installation's prefix (STEKKER_REDIS_PREFIX, "stekker:"), so two
installations can share one Redis. Names are built here, so each part of the cluster code
names its keys in one place and `stekker cluster status` can find them.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Seconds for one command: a Redis that does not answer must not hang a station's frame.
COMMAND_TIMEOUT = 3.0
CONNECT_TIMEOUT = 3.0


class ClusterMessagingUnavailable(RuntimeError):
    """Redis cannot be reached: what needs another process cannot be done right now."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("cluster messaging unavailable" + (f": {detail}" if detail else ""))


REDIS_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
"""What a call raises when Redis is away (as opposed to a command it refused)."""

REDIS_TROUBLE: tuple[type[Exception], ...] = (*REDIS_DOWN, RedisError)
"""Redis away, or any error it answered: what a best-effort caller catches."""

__all__ = ["REDIS_DOWN", "REDIS_TROUBLE", "ClusterMessagingUnavailable", "Keys", "RedisError", "connect"]


def reason(exc: BaseException) -> str:
    """One line: why Redis could not be used."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def connect(url: str, *, blocking: bool = False) -> Redis:
    """A client for `url`. `blocking`: for XREAD/BLPOP loops, with no per-command timeout
    (they wait on purpose); their own `block` argument bounds them."""
    return Redis.from_url(
        url,
        socket_timeout=None if blocking else COMMAND_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        health_check_interval=15,
        retry_on_timeout=False,
        decode_responses=True,
    )


class Keys:
    """Key names under one installation's prefix."""

    def __init__(self, prefix: str = "stekker:") -> None:
        self.prefix = prefix

    def __call__(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # the station registry (stekker.cluster.registry)
    @property
    def owners(self) -> str:
        """Hash: station id → "node_id|protocol" of the gateway holding its socket."""
        return self("owners")

    @property
    def owner_changes(self) -> str:
        """Pub/sub channel: a JSON notice {station, owner, previous, seq} each time a station is
        taken or released (stekker.cluster.registry)."""
        return self("owners", "changes")

    def node(self, node_id: str) -> str:
        """Hash of one live node (roles, started, heartbeat, stations held); expires with its lease."""
        return self("node", node_id)

    @property
    def nodes(self) -> str:
        """Sorted set: node id → last heartbeat (epoch s); the live ones also have their `node` key."""
        return self("nodes")

    def commands(self, node_id: str) -> str:
        """List a gateway pops the commands for its stations from."""
        return self("commands", node_id)

    def reply(self, request_id: str) -> str:
        """List the caller of one routed command waits on."""
        return self("reply", request_id)

    def lease(self, name: str) -> str:
        return self("lease", name)

    @property
    def events(self) -> str:
        """The event stream (stekker.bus.streams)."""
        return self("events")

    def limit(self, kind: str, key: str) -> str:
        """A cluster-wide counter or throttle state (login lock-out, rate limits)."""
        return self("limit", kind, key)
