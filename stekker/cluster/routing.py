"""Commands to stations held by another process: the routed command port and its executor.

`RoutedCommands` is the services' CommandPort in a cluster. A station with a socket in this
process goes to the local gateway; any other goes through Redis to the gateway that holds it
(the station registry says which): the caller pushes a request on that node's list
`commands:<node>` and waits on its own reply list `reply:<id>`; the node's `CommandExecutor` pops
it, sends the CALL over the station's socket (whose lock keeps one outstanding CALL per station,
whoever asked), and pushes the answer back.

What travels is the OCPP CALL itself, not the neutral command: the caller translates the
command for the station's protocol (the registry knows it), ships the CALL(s), and reads the
raw reply with the same translation. So nothing but OCPP JSON crosses Redis (the neutral
arguments and replies hold dataclasses, dates and Decimals), the executor needs no knowledge of
commands, and a command the station's version lacks is refused before anything is sent.

Request (JSON): id, station, protocol, command (its name, for logs), steps [{action, payload,
tolerate}], timeout (per CALL, s), deadline (epoch s: after it the caller no longer waits and
the executor drops the request), correlation (follows the command in both processes' logs),
from (the caller's node). Reply: {"id", "results": [{"ok": payload} | {"error": [code, text]}]}
or {"id", "failure": {"kind", "message", "code"?, "description"?}}; kinds map back to the
exceptions the local port raises. A reply list expires soon after it is written, so an answer
that comes after the caller gave up is dropped, as it is in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from stekker import logconfig
from stekker.cluster.redis_link import REDIS_TROUBLE, connect
from stekker.cluster.registry import Owner, StationRegistry
from stekker.metrics import COMMAND_SECONDS, COMMANDS
from stekker.ocpp.outbound import Outbound, OutboundSeries
from stekker.ocpp.server import SUPPORTED, Gateway
from stekker.services.context import ServiceContext
from stekker.services.ports import (
    ClusterUnavailable,
    CommandError,
    CommandNotSupported,
    CommandTimeout,
    OutcomeUnknown,
    StationCallError,
    StationCommand,
    StationOffline,
)

log = logging.getLogger(__name__)

# The caller waits this much longer than the station is given, for the two Redis hops.
REPLY_MARGIN = 1.0
# A reply nobody took (its caller gave up) is gone after this.
REPLY_TTL_SECONDS = 10
# A dead node's command list is not kept forever (a live node's is refreshed by every push).
COMMANDS_TTL_SECONDS = 120
MAX_STEPS = 64
MAX_REQUEST_BYTES = 1_000_000

def _correlation() -> str:
    """The caller's correlation id (an API request's), else a new one: it goes with the request,
    so the command reads the same in both processes' log lines (JSON logs carry it)."""
    return logconfig.CORRELATION_ID.get() or uuid.uuid4().hex[:16]


_FAILURES: dict[str, type[CommandError]] = {
    "offline": StationOffline,
    "timeout": CommandTimeout,
    "unknown": OutcomeUnknown,
    "not_supported": CommandNotSupported,
    "error": CommandError,
}


def _failure_of(exc: CommandError) -> dict[str, Any]:
    """An exception of the local port as the reply's failure."""
    if isinstance(exc, StationCallError):
        return {"kind": "call_error", "message": str(exc), "code": exc.code, "description": exc.description}
    for kind, cls in _FAILURES.items():
        if type(exc) is cls:
            return {"kind": kind, "message": str(exc)}
    return {"kind": "error", "message": str(exc)}


class _Moved(Exception):
    """The executor does not hold the station (any more): it moved between lookup and execution."""


@dataclass(frozen=True, slots=True)
class _Step:
    action: str
    payload: dict[str, Any]
    tolerate: bool  # a CALLERROR here is an answer, not the end of the series


def _steps(outbound: Outbound | OutboundSeries) -> list[Outbound]:
    return list(outbound.steps) if isinstance(outbound, OutboundSeries) else [outbound]


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, ClusterUnavailable):
        return "unavailable"
    if isinstance(exc, StationOffline):
        return "offline"
    if isinstance(exc, CommandTimeout):
        return "timeout"
    return "error"


class RoutedCommands:
    """The CommandPort of a process in a cluster (see the module's docstring).

    `local`: this process's gateway (None on api/worker nodes); `registry`: the station registry
    (None: no cluster, only local stations). `blocking`: the client the caller waits for replies
    on (BLPOP); by default one made from STEKKER_REDIS_URL without a socket timeout, its pool
    opening a connection per concurrent wait, so concurrent commands never queue behind each
    other. `wall`: the clock deadlines are told in (shared by processes: epoch seconds).
    """

    def __init__(
        self,
        ctx: ServiceContext,
        local: Gateway | None,
        registry: StationRegistry | None,
        *,
        blocking: Redis | None = None,
        wall: Callable[[], float] = time.time,
        margin: float = REPLY_MARGIN,
    ) -> None:
        self.ctx = ctx
        self.local = local
        self.registry = registry
        self._wall = wall
        self._margin = margin
        self._own_blocking = blocking is None and ctx.settings.redis_url is not None
        self._blocking = blocking
        if self._own_blocking and ctx.settings.redis_url is not None:
            self._blocking = connect(ctx.settings.redis_url, blocking=True)

    async def close(self) -> None:
        """Close the reply client made here (after the last command)."""
        if self._own_blocking and self._blocking is not None:
            with contextlib.suppress(*REDIS_TROUBLE):
                await self._blocking.aclose()

    @property
    def node_id(self) -> str:
        return self.ctx.node.node_id

    # ---- the synchronous questions: local sockets, then the registry's mirror --------------

    def _mirrored(self, station_id: str) -> Owner | None:
        if self.registry is None:
            return None
        owner = self.registry.mirrored_owner(station_id)
        if owner is None or owner.node_id == self.node_id:  # ours, but no socket here: stale
            return None
        return owner

    def is_connected(self, station_id: str) -> bool:
        if self.local is not None and self.local.is_connected(station_id):
            return True
        return self._mirrored(station_id) is not None

    def connected_stations(self) -> list[str]:
        held = set(self.local.connected_stations()) if self.local is not None else set()
        if self.registry is not None:
            held.update(s for s in self.registry.mirrored_stations() if self._mirrored(s) is not None)
        return sorted(held)

    def protocol(self, station_id: str) -> str | None:
        if self.local is not None:
            protocol = self.local.protocol(station_id)
            if protocol is not None:
                return protocol
        owner = self._mirrored(station_id)
        return None if owner is None else owner.protocol

    # ---- send --------------------------------------------------------------------------------

    async def send(
        self, station_id: str, command: StationCommand, timeout: float | None = None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        route = "local"
        error: BaseException | None = None
        try:
            if self.local is not None and self.local.is_connected(station_id):
                return await self.local.send(station_id, command, timeout)
            route = "routed"
            return await self._routed(station_id, command, timeout)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if not isinstance(error, asyncio.CancelledError):
                COMMANDS.labels(route, _outcome(error)).inc()
                COMMAND_SECONDS.labels(route).observe(time.perf_counter() - started)

    async def _lookup(self, station_id: str) -> Owner | None:
        if self.registry is None:
            return None
        try:
            return await self.registry.owner(station_id)
        except REDIS_TROUBLE as exc:
            raise ClusterUnavailable(f"cannot find the gateway holding {station_id}") from exc

    async def _routed(
        self, station_id: str, command: StationCommand, timeout: float | None
    ) -> dict[str, Any]:
        owner = await self._lookup(station_id)
        if owner is None or owner.node_id == self.node_id:
            raise StationOffline(f"station {station_id} is offline")
        try:
            return await self._via(owner, station_id, command, timeout)
        except _Moved:
            pass
        # The station reconnected elsewhere between our lookup and the executor's: ask once
        # more (a reconnect is a moment; a station bouncing between gateways is offline to us).
        again = await self._lookup(station_id)
        if again is None or again == owner:
            raise StationOffline(f"station {station_id} is offline")
        if again.node_id == self.node_id and self.local is not None and self.local.is_connected(station_id):
            return await self.local.send(station_id, command, timeout)
        if again.node_id == self.node_id:
            raise StationOffline(f"station {station_id} is offline")
        try:
            return await self._via(again, station_id, command, timeout)
        except _Moved:
            raise StationOffline(f"station {station_id} is offline") from None

    async def _via(
        self, owner: Owner, station_id: str, command: StationCommand, timeout: float | None
    ) -> dict[str, Any]:
        translate = SUPPORTED.get(owner.protocol)
        if translate is None:
            raise CommandNotSupported(
                f"{station_id} speaks {owner.protocol}, which this process does not know"
            )
        outbound = translate[1](command)  # CommandNotSupported and bad arguments: before anything is sent
        steps = _steps(outbound)
        per_call = timeout or self.ctx.settings.call_timeout
        wait = per_call * len(steps)
        request_id = uuid.uuid4().hex
        correlation = _correlation()
        request = {
            "id": request_id,
            "station": station_id,
            "protocol": owner.protocol,
            "command": command.name,
            "steps": [
                {"action": s.action, "payload": s.payload, "tolerate": s.on_error is not None} for s in steps
            ],
            "timeout": per_call,
            "deadline": self._wall() + wait,
            "correlation": correlation,
            "from": self.node_id,
        }
        reply = await self._exchange(owner, request, wait)
        log.debug(
            "%s: %s routed to node %s answered",
            station_id,
            command.name,
            owner.node_id,
            extra={"correlation_id": correlation, "station_id": station_id},
        )
        return self._read(station_id, outbound, steps, reply)

    async def _exchange(self, owner: Owner, request: dict[str, Any], wait: float) -> dict[str, Any]:
        redis = self.ctx.redis
        if redis is None or self._blocking is None:
            raise ClusterUnavailable("no Redis configured")
        keys = self.ctx.keys
        queue = keys.commands(owner.node_id)
        reply_key = keys.reply(request["id"])
        try:
            pipe = redis.pipeline(transaction=False)
            pipe.lpush(queue, orjson.dumps(request))
            pipe.expire(queue, COMMANDS_TTL_SECONDS + int(wait))
            await pipe.execute()
        except REDIS_TROUBLE as exc:
            raise ClusterUnavailable(f"cannot hand the command to node {owner.node_id}") from exc
        until = time.monotonic() + wait + self._margin
        lost: BaseException | None = None
        while True:
            left = until - time.monotonic()
            if left <= 0:
                if lost is not None:
                    # handed over, then Redis went: the station may well have done it
                    raise OutcomeUnknown(
                        f"lost Redis while node {owner.node_id} carried out {request['command']} for "
                        f"{request['station']}: it may have reached the station"
                    ) from lost
                raise CommandTimeout(
                    f"{request['station']} did not answer {request['command']} within {wait:g} s "
                    f"(held by node {owner.node_id})"
                )
            try:
                # BLPOP's own timeout bounds the wait; the outer one guards a Redis that hangs
                async with asyncio.timeout(left + 1.0):
                    popped = await self._blocking.blpop([reply_key], timeout=max(left, 0.01))
            except TimeoutError:
                popped = None
            except REDIS_TROUBLE as exc:
                # The command is already handed over. A pooled connection made before Redis
                # restarted fails once and is replaced: wait on a fresh one rather than tell the
                # caller "unavailable" and have it try again (the station would do it twice).
                lost = exc
                await asyncio.sleep(min(0.2, max(until - time.monotonic(), 0)))
                continue
            if popped is None:
                continue
            reply = _parse_reply(popped[1], request["id"])
            if reply is not None:
                return reply

    def _read(
        self,
        station_id: str,
        outbound: Outbound | OutboundSeries,
        steps: list[Outbound],
        reply: dict[str, Any],
    ) -> dict[str, Any]:
        failure = reply.get("failure")
        if isinstance(failure, dict):
            raise _exception_of(station_id, failure)
        results = reply.get("results")
        if not isinstance(results, list) or len(results) != len(steps):
            raise CommandError(f"{station_id}: the gateway's reply did not match the command")
        neutral: list[dict[str, Any]] = []
        for step, result in zip(steps, results, strict=True):
            if isinstance(result, dict) and isinstance(result.get("ok"), dict):
                neutral.append(step.read(result["ok"]))
                continue
            error = result.get("error") if isinstance(result, dict) else None
            if not isinstance(error, list) or len(error) != 2 or step.on_error is None:
                raise CommandError(f"{station_id}: the gateway's reply did not match the command")
            neutral.append(step.on_error(StationCallError(str(error[0]), str(error[1]))))
        if isinstance(outbound, OutboundSeries):
            return outbound.combine(neutral)
        return neutral[0]


def _exception_of(station_id: str, failure: dict[str, Any]) -> Exception:
    kind = failure.get("kind")
    message = str(failure.get("message") or f"{station_id}: {kind}")
    if kind == "moved":
        return _Moved()
    if kind == "call_error":
        return StationCallError(
            str(failure.get("code") or "GenericError"), str(failure.get("description") or "")
        )
    cls = _FAILURES.get(str(kind), CommandError)
    return cls(message)


def _parse_reply(raw: Any, request_id: str) -> dict[str, Any] | None:
    """A reply for `request_id`, or None (logged) for anything else on the list."""
    try:
        reply = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        log.warning("dropped a reply that is not JSON: %.200r", raw)
        return None
    if not isinstance(reply, dict) or reply.get("id") != request_id:
        log.warning("dropped a reply of the wrong shape or for another request: %.200r", raw)
        return None
    if not isinstance(reply.get("results"), list) and not isinstance(reply.get("failure"), dict):
        log.warning("dropped a reply with neither results nor failure: %.200r", raw)
        return None
    return reply


@dataclass(frozen=True, slots=True)
class _Request:
    id: str
    station: str
    protocol: str
    command: str
    steps: list[_Step]
    timeout: float
    deadline: float
    correlation: str

    @classmethod
    def parse(cls, raw: Any) -> _Request | None:
        if isinstance(raw, str) and len(raw) > MAX_REQUEST_BYTES:
            return None
        try:
            data = orjson.loads(raw)
        except (orjson.JSONDecodeError, TypeError):
            return None
        if not isinstance(data, dict):
            return None
        try:
            steps_raw = data["steps"]
            if not isinstance(steps_raw, list) or not 0 < len(steps_raw) <= MAX_STEPS:
                return None
            steps = []
            for s in steps_raw:
                if not isinstance(s, dict) or not isinstance(s.get("action"), str):
                    return None
                if not isinstance(s.get("payload"), dict):
                    return None
                steps.append(_Step(s["action"], s["payload"], bool(s.get("tolerate"))))
            fields = (data["id"], data["station"], data["protocol"])
            if not all(isinstance(f, str) and f for f in fields):
                return None
            timeout, deadline = float(data["timeout"]), float(data["deadline"])
            if not timeout > 0:
                return None
            return cls(
                id=data["id"],
                station=data["station"],
                protocol=data["protocol"],
                command=str(data.get("command") or "?")[:64],
                steps=steps,
                timeout=timeout,
                deadline=deadline,
                correlation=str(data.get("correlation") or "")[:64],
            )
        except (KeyError, TypeError, ValueError):
            return None


class CommandExecutor:
    """On gateway nodes: carries out the commands other processes route to this node's stations.

    Pops requests from `commands:<node>` and runs each as a task (up to `concurrency` at once;
    then it stops popping, and requests wait in Redis); drops one whose deadline passed (its
    caller gave up) or that is not a request (logged); pushes the answer to the caller's reply
    list with a short expiry. `start()` / `stop()`.
    """

    def __init__(
        self,
        ctx: ServiceContext,
        gateway: Gateway,
        registry: StationRegistry | None = None,
        *,
        blocking: Redis | None = None,
        wall: Callable[[], float] = time.time,
        concurrency: int = 1000,
        poll_seconds: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.gateway = gateway
        self.registry = registry
        self._wall = wall
        self._own_blocking = blocking is None
        self._blocking = blocking
        self._slots = asyncio.Semaphore(concurrency)
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.dropped = 0  # requests dropped: malformed, or past their deadline
        self.executed = 0

    async def start(self) -> None:
        if self._blocking is None:
            url = self.ctx.settings.redis_url
            if url is None:
                raise RuntimeError("the command executor needs STEKKER_REDIS_URL")
            self._blocking = connect(url, blocking=True)
        self._task = asyncio.create_task(self._run(), name="command-executor")

    async def stop(self) -> None:
        """Stop popping; let the commands in hand finish (their callers wait for them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._own_blocking and self._blocking is not None:
            with contextlib.suppress(*REDIS_TROUBLE):
                await self._blocking.aclose()
            self._blocking = None

    async def _run(self) -> None:
        assert self._blocking is not None
        queue = self.ctx.keys.commands(self.ctx.node.node_id)
        failing = False
        while True:
            await self._slots.acquire()
            try:
                popped = await self._blocking.brpop([queue], timeout=self._poll)
            except REDIS_TROUBLE as exc:
                self._slots.release()
                if not failing:
                    log.error("command executor: redis unreachable: %s; trying again every second", exc)
                failing = True
                await asyncio.sleep(1.0)
                continue
            except BaseException:
                self._slots.release()
                raise
            if failing:
                log.warning("command executor: redis is back")
                failing = False
            if popped is None:
                self._slots.release()
                continue
            task = asyncio.create_task(self._serve(popped[1]))
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    async def _serve(self, raw: Any) -> None:
        request = _Request.parse(raw)
        if request is None:
            self.dropped += 1
            log.warning("command executor: dropped a request that is not one: %.200r", raw)
            return
        token = logconfig.CORRELATION_ID.set(request.correlation or None)
        try:
            if self._wall() >= request.deadline:
                self.dropped += 1
                log.info(
                    "%s: dropped routed %s: its caller gave up already",
                    request.station,
                    request.command,
                    extra={"correlation_id": request.correlation, "station_id": request.station},
                )
                return
            try:
                reply: dict[str, Any] = {"id": request.id, "results": await self._execute(request)}
            except CommandError as exc:
                reply = {"id": request.id, "failure": _failure_of(exc)}
            except _Moved:
                reply = {"id": request.id, "failure": {"kind": "moved", "message": "not held here"}}
            except Exception as exc:  # never leave the caller waiting on our bug
                log.exception("%s: routed %s failed", request.station, request.command)
                reply = {"id": request.id, "failure": {"kind": "error", "message": f"gateway error: {exc!r}"}}
            self.executed += 1
            await self._answer(request, reply)
        finally:
            logconfig.CORRELATION_ID.reset(token)

    async def _execute(self, request: _Request) -> list[dict[str, Any]]:
        connection = self.gateway.connections.get(request.station)
        if connection is None or connection.protocol != request.protocol:
            raise _Moved()
        results: list[dict[str, Any]] = []
        for step in request.steps:
            left = request.deadline - self._wall()
            if left <= 0:
                raise CommandTimeout(f"{request.station} did not answer {step.action} in time")
            try:
                payload = await connection.call(step.action, step.payload, min(request.timeout, left))
            except StationCallError as exc:
                if not step.tolerate:
                    raise
                results.append({"error": [exc.code, exc.description]})
                continue
            results.append({"ok": payload})
        return results

    async def _answer(self, request: _Request, reply: dict[str, Any]) -> None:
        redis = self.ctx.redis
        if redis is None:
            return
        key = self.ctx.keys.reply(request.id)
        body = orjson.dumps(reply)
        for attempt in range(3):
            try:
                pipe = redis.pipeline(transaction=False)
                pipe.lpush(key, body)
                pipe.expire(key, REPLY_TTL_SECONDS)
                await pipe.execute()
                return
            except REDIS_TROUBLE as exc:
                # a pooled connection from before a Redis restart fails once and is replaced:
                # the caller is still waiting for this answer, while its deadline lasts
                if attempt < 2 and request.deadline - self._wall() > 0.2:
                    await asyncio.sleep(0.1)
                    continue
                log.error(
                    "%s: could not return the answer to routed %s: %s",
                    request.station,
                    request.command,
                    exc,
                    extra={"correlation_id": request.correlation, "station_id": request.station},
                )
