"""One station's WebSocket: inbound CALLs handled in order, one outbound CALL in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from stekker.domain.token_bucket import TokenBucket
from stekker.logconfig import STATION_ID
from stekker.metrics import OCPP_HANDLING_SECONDS, OCPP_MESSAGES
from stekker.ocpp.protocol import OCPP16, OCPP21, OCPP201, UNREADABLE_ID, ErrorCode, MessageType, OcppError
from stekker.ocpp.schemas import known_actions, validate
from stekker.services.message_log import IN, OUT, MessageLog, frame_identity
from stekker.services.outage import OutageLog, database_unavailable
from stekker.services.ports import CommandTimeout, OutcomeUnknown, StationCallError, StationOffline

if TYPE_CHECKING:
    from stekker.services.context import ServiceContext

log = logging.getLogger(__name__)
# Shared by every station's connection: the database is down for all of them at once.
DATABASE_OUTAGE = OutageLog("OCPP gateway", log)


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer, and work to start only after the answer is on the wire
    (e.g. configuring a station after its BootNotification was accepted)."""

    payload: dict[str, Any]
    after: Callable[[], Awaitable[None]] | None = None


Handler = Callable[["StationConnection", dict[str, Any]], Awaitable[Reply]]

# Our last outbound CALLs remembered per connection, so a late reply is still logged with
# the action it answers.
_RECENT_CALLS = 16
_END = None  # what the reader queues when the socket is done
FLOODING_CLOSE = 1008  # policy violation

# ---- metrics --------------------------------------------------------------------------------------
# A station chooses the action names it sends: only the actions OCPP defines get a label of their
# own, anything else counts as "other", so a hostile station cannot grow /metrics (or our memory).
_OTHER = "other"
_TYPE_NAMES = {
    MessageType.CALL: "CALL",
    MessageType.CALLRESULT: "CALLRESULT",
    MessageType.CALLERROR: "CALLERROR",
    MessageType.CALLRESULTERROR: "CALLRESULTERROR",
    MessageType.SEND: "SEND",
}
_label_actions: frozenset[str] | None = None


def _action_label(action: object) -> str:
    global _label_actions
    if _label_actions is None:
        _label_actions = known_actions(OCPP16) | known_actions(OCPP201) | known_actions(OCPP21)
    return action if isinstance(action, str) and action in _label_actions else _OTHER


class _Children(dict[str | None, Any]):
    """Metric children by action, each made by `.labels()` once: a frame costs one dict lookup
    and an `inc`/`observe`. Unknown actions share the "other" child and are not remembered."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        super().__init__()
        self._make = make
        self._other: Any = None

    def __missing__(self, action: str | None) -> Any:
        label = _action_label(action)
        if label == _OTHER:
            if self._other is None:
                self._other = self._make(_OTHER)
            return self._other
        child = self[action] = self._make(label)
        return child


def _message_counters(direction: str) -> dict[int, _Children]:
    def counter(type_name: str) -> Callable[[str], Any]:
        return lambda action: OCPP_MESSAGES.labels(direction, action, type_name)

    return {kind: _Children(counter(name)) for kind, name in _TYPE_NAMES.items()}


_IN = _message_counters("in")
_OUT = _message_counters("out")
_UNREADABLE_IN = OCPP_MESSAGES.labels("in", _OTHER, "unreadable")
_HANDLING = _Children(lambda action: OCPP_HANDLING_SECONDS.labels(action))


class StationConnection:
    """A connected station. Inbound CALLs are processed one at a time, in arrival order, and
    answered only after what they carry is committed. Outbound CALLs wait for each other; a
    reply that arrives after its call timed out is dropped, never matched to a later call.

    Every frame in and out (rejected ones too) goes to the message log when one is given;
    `last_frame_at` and `silent_since` are what the gateway's heartbeat watch reads and sets.

    Each station gets a fair share (`ocpp_station_rate` frames a second after a burst of
    `ocpp_station_burst`): a frame beyond that waits for its token, and while frames wait we
    stop reading the socket once `ocpp_station_backlog` of them are queued, so TCP flow
    control slows the station down; nothing is dropped. OCPP lets a station have one CALL
    unanswered, so a full backlog means pipelining: a station that keeps it full for
    `ocpp_flood_seconds` is disconnected (1008) and a `flooding` event recorded.
    """

    def __init__(
        self,
        station_id: str,
        protocol: str,
        websocket: ServerConnection,
        handlers: Mapping[str, Handler],
        ctx: ServiceContext,
        on_activity: Callable[[str], None],
        message_log: MessageLog | None = None,
        on_resumed: Callable[[StationConnection, datetime], None] | None = None,
        on_flooding: Callable[[StationConnection, dict[str, Any]], Awaitable[None]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.station_id = station_id
        self.protocol = protocol
        self.ctx = ctx
        self._ws = websocket
        self._handlers = handlers
        self._on_activity = on_activity
        self._log = message_log
        self._on_resumed = on_resumed
        self._call_lock = asyncio.Lock()
        self._pending: tuple[str, str, asyncio.Future[dict[str, Any]]] | None = None
        self._pending_sent = False  # the pending CALL was handed to the socket
        self._finishing = False  # closing for a shutdown: no new frame is handled
        self._idle = asyncio.Event()  # set while no frame is being handled
        self._idle.set()
        self._recent_calls: dict[str, str] = {}  # message id → action of our CALLs
        self._tasks: set[asyncio.Task[None]] = set()
        self.replaced = False
        self.closed = False
        self.opened_at = ctx.now()
        self.last_frame_at = self.opened_at
        self.silent_since: datetime | None = None  # set while the station is overdue
        s = ctx.settings
        self._on_flooding = on_flooding
        self._monotonic = monotonic
        self.bucket = TokenBucket(s.ocpp_station_rate, s.ocpp_station_burst, monotonic)
        self._backlog: asyncio.Queue[str | bytes | None] = asyncio.Queue(s.ocpp_station_backlog)
        self._full_since: float | None = None  # the backlog is full (pipelining) since
        self.received = 0  # frames read from the socket
        self.handled = 0  # frames taken from the backlog and handled
        self.throttled = 0  # frames that waited for their token
        self.flooding = False

    @property
    def remote(self) -> str:
        address = self._ws.remote_address
        return f"{address[0]}:{address[1]}" if address else "?"

    async def serve(self) -> None:
        """Handle frames until the socket closes; a reader task queues them (bounded)."""
        # this connection's task (websockets runs one per socket) logs with the station's id,
        # to its end; the reader and the work spawned from here inherit it
        STATION_ID.set(self.station_id)
        reader = asyncio.create_task(self._read(), name=f"{self.station_id}:read")
        try:
            while (message := await self._backlog.get()) is not _END:
                if self._ws.state is State.CLOSED:
                    # Nothing queued can be answered now; unanswered, the station sends it again.
                    break
                if self._finishing:  # we are closing: unanswered, the station sends it again
                    continue
                self._idle.clear()
                try:
                    if not await self._handle(message):
                        break
                finally:
                    self._idle.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            reader.cancel()
            if self._pending is not None and not self._pending[2].done():
                self._pending[2].set_exception(self._lost_call(self._pending[1]))
            for task in self._tasks:
                task.cancel()

    async def _handle(self, message: str | bytes) -> bool:
        """One frame from the backlog, within the station's fair share; False: the station
        flooded us and is being disconnected."""
        if self._full_since is not None and self._backlog.qsize() <= self._backlog.maxsize // 2:
            self._full_since = None
        wait = self.bucket.reserve()
        if wait > 0:
            self.throttled += 1
            if self._flooded_for() >= self.ctx.settings.ocpp_flood_seconds:
                await self._flooded()
                return False
            await asyncio.sleep(wait)
        now = self.ctx.now()
        self.last_frame_at = now
        if self.silent_since is not None and self._on_resumed is not None:
            self._on_resumed(self, now)
        self.silent_since = None
        self._on_activity(self.station_id)
        self.handled += 1
        await self._on_frame(message, now)
        return True

    async def finish(self, code: int, reason: str, timeout: float) -> None:
        """Close for a shutdown: take no new frame, let the one in hand be committed and
        answered (within `timeout`), then close with `code` and `reason`."""
        self._finishing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        await self.close(code, reason)

    async def _read(self) -> None:
        """Move frames from the socket to the backlog; when it is full this waits, and the
        socket is not read meanwhile (back-pressure)."""
        try:
            async for message in self._ws:
                if self._backlog.full() and self._full_since is None:
                    self._full_since = self._monotonic()
                await self._backlog.put(message)
                self.received += 1
        except ConnectionClosed:
            pass
        # the handler loop drains the backlog, so the end marker gets its turn (on
        # cancellation the loop is gone and needs none)
        await self._backlog.put(_END)

    def _flooded_for(self) -> float:
        return 0.0 if self._full_since is None else self._monotonic() - self._full_since

    async def _flooded(self) -> None:
        s = self.ctx.settings
        self.flooding = True
        reason = (
            f"flooding: over {self._backlog.maxsize} frames unanswered for "
            f"{s.ocpp_flood_seconds:g} s (limit {s.ocpp_station_rate:g}/s, burst {s.ocpp_station_burst})"
        )
        log.warning("%s: disconnected: %s", self.station_id, reason)
        if self._on_flooding is not None:
            detail = {
                "backlog": self._backlog.maxsize,
                "seconds": s.ocpp_flood_seconds,
                "rate": s.ocpp_station_rate,
                "burst": s.ocpp_station_burst,
                "throttled": self.throttled,
            }
            try:
                await self._on_flooding(self, detail)
            except Exception as exc:  # the disconnect matters more than its record
                log.warning("%s: could not record the flooding event: %r", self.station_id, exc)
        # The station's answering close frame is queued behind its flood, which we do not
        # read any more: give it a moment, then drop the connection.
        try:
            async with asyncio.timeout(min(s.ws_close_timeout, 1.0)):
                await self.close(FLOODING_CLOSE, reason[:120])
        except TimeoutError:
            self._ws.transport.abort()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason)

    def spawn(self, work: Callable[[], Awaitable[None]], name: str) -> None:
        """Run work tied to this connection; it is cancelled when the station disconnects."""

        async def guarded() -> None:
            STATION_ID.set(self.station_id)  # spawned before `serve` too (reconciliation)
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: background work %s failed", self.station_id, name)

        task = asyncio.create_task(guarded(), name=f"{self.station_id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- inbound -------------------------------------------------------------------------

    async def _on_frame(self, message: str | bytes, at: datetime) -> None:
        try:
            frame = orjson.loads(message)
        except orjson.JSONDecodeError:
            _UNREADABLE_IN.inc()
            self._record_in(message, None, at)
            await self._send_error(UNREADABLE_ID, ErrorCode.FORMAT_VIOLATION, "frame is not valid JSON")
            return
        self._record_in(message, frame, at)
        if not isinstance(frame, list) or len(frame) < 3 or type(frame[0]) is not int:
            _UNREADABLE_IN.inc()
            msg_id = _readable_id(frame)
            await self._send_error(
                msg_id, ErrorCode.FORMAT_VIOLATION, "not an OCPP-J frame: expected [type, id, ...]"
            )
            return
        kind = frame[0]
        counters = _IN.get(kind)
        if counters is None:  # no message type: counted as unreadable, answered below
            _UNREADABLE_IN.inc()
        elif kind == MessageType.CALL:
            action = frame[2] if type(frame[2]) is str else None
            counters[action].inc()
            started = time.perf_counter()
            await self._on_call(frame)
            _HANDLING[action].observe(time.perf_counter() - started)
            return
        elif kind == MessageType.SEND:
            counters[frame[2] if type(frame[2]) is str else None].inc()
        else:  # a reply (or 2.1's error about one of ours): under the action of our CALL
            counters[self._recent_calls.get(frame[1]) if type(frame[1]) is str else None].inc()
        if kind == MessageType.CALLRESULT:
            self._on_result(frame)
        elif kind == MessageType.CALLERROR:
            self._on_error(frame)
        elif kind in (MessageType.SEND, MessageType.CALLRESULTERROR) and self.protocol == OCPP21:
            # 2.1 forbids answering these; periodic event streams are not kept yet
            log.debug("%s: %s frame not processed: %.200r", self.station_id, MessageType(kind).name, frame)
        else:
            await self._send_error(
                _readable_id(frame), ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED, f"unknown message type {kind}"
            )

    async def _on_call(self, frame: list[Any]) -> None:
        if len(frame) != 4 or not isinstance(frame[1], str) or not isinstance(frame[2], str):
            await self._send_error(
                _readable_id(frame),
                ErrorCode.FORMAT_VIOLATION,
                "a CALL is [2, id, action, payload]",
                action=frame[2] if isinstance(frame[2], str) else None,
            )
            return
        _, msg_id, action, payload = frame
        if not isinstance(payload, dict):
            await self._send_error(
                msg_id, ErrorCode.FORMAT_VIOLATION, "CALL payload must be an object", action=action
            )
            return
        handler = self._handlers.get(action)
        if handler is None:
            if action in known_actions(self.protocol):
                await self._send_error(
                    msg_id,
                    ErrorCode.NOT_SUPPORTED,
                    f"{action} is known but not supported from a station here",
                    action=action,
                )
            else:
                await self._send_error(
                    msg_id, ErrorCode.NOT_IMPLEMENTED, f"unknown action {action!r}", action=action
                )
            return
        try:
            validate(self.protocol, action, payload)
            reply = await handler(self, payload)
        except OcppError as exc:
            await self._send_error(msg_id, exc.code, exc.description, exc.details, action=action)
            return
        except Exception as exc:
            if _is_bad_value(exc):
                # Schema-valid but unstorable (a date before year 1 in UTC, an integer too big
                # for its column, NUL in text): a retry can never succeed, so InternalError
                # would make the station resend it forever and block its transaction queue.
                log.warning("%s: %s carries a value we cannot store: %r", self.station_id, action, exc)
                await self._send_error(
                    msg_id,
                    ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                    "a value is out of range or cannot be stored",
                    action=action,
                )
                return
            # Nothing was acknowledged: the station keeps the message and retries (rule 4).
            if database_unavailable(exc):
                DATABASE_OUTAGE.failed(exc)  # one line per outage, not a traceback per message
            else:
                log.exception("%s: %s failed", self.station_id, action)
            await self._send_error(
                msg_id,
                ErrorCode.INTERNAL_ERROR,
                "the central system could not store this; retry later",
                action=action,
            )
            return
        if DATABASE_OUTAGE.since is not None:
            DATABASE_OUTAGE.ok()
        try:
            validate(self.protocol, action, reply.payload, response=True)
        except OcppError as exc:
            log.error("%s: our %s reply breaks the schema: %s", self.station_id, action, exc.description)
            await self._send_error(
                msg_id, ErrorCode.INTERNAL_ERROR, "central system produced an invalid reply", action=action
            )
            return
        await self._send([MessageType.CALLRESULT, msg_id, reply.payload], action)
        if reply.after is not None:
            self.spawn(reply.after, f"after-{action}")

    # ---- outbound ------------------------------------------------------------------------

    async def call(self, action: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send a CALL and wait for its CALLRESULT payload (validated against the schema)."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                async with self._call_lock:
                    if self.closed:
                        raise StationOffline(f"{self.station_id} is not connected")
                    msg_id = str(uuid.uuid4())
                    future: asyncio.Future[dict[str, Any]] = loop.create_future()
                    self._pending = (msg_id, action, future)
                    self._recent_calls[msg_id] = action
                    if len(self._recent_calls) > _RECENT_CALLS:
                        del self._recent_calls[next(iter(self._recent_calls))]
                    self._pending_sent = False
                    try:
                        await self._send([MessageType.CALL, msg_id, action, payload], action)
                        self._pending_sent = True
                        return await future
                    finally:
                        self._pending = None
        except TimeoutError:
            raise CommandTimeout(f"{self.station_id} did not answer {action} within {timeout:g} s") from None
        except ConnectionClosed:
            raise StationOffline(f"{self.station_id} disconnected") from None

    def _lost_call(self, action: str) -> StationOffline | OutcomeUnknown:
        """What the pending call became when the connection closed: once the frame was handed
        to the socket the station may have acted on it (and rebooted without answering)."""
        if self._pending_sent:
            return OutcomeUnknown(
                f"unknown: {self.station_id} disconnected after receiving the call ({action})"
            )
        return StationOffline(f"{self.station_id} disconnected")

    def _take_pending(self, frame: list[Any]) -> tuple[str, asyncio.Future[dict[str, Any]]] | None:
        pending = self._pending
        if pending is None or len(frame) < 2 or frame[1] != pending[0] or pending[2].done():
            log.warning(
                "%s: dropped a reply to no outstanding call (late or unknown): %.200r", self.station_id, frame
            )
            return None
        return pending[1], pending[2]

    def _on_result(self, frame: list[Any]) -> None:
        taken = self._take_pending(frame)
        if taken is None:
            return
        action, future = taken
        payload = frame[2]
        try:
            validate(self.protocol, action, payload, response=True)
        except OcppError as exc:
            future.set_exception(
                StationCallError(exc.code.value, f"invalid {action} reply: {exc.description}")
            )
            return
        future.set_result(payload)

    def _on_error(self, frame: list[Any]) -> None:
        taken = self._take_pending(frame)
        if taken is None:
            return
        code = str(frame[2]) if len(frame) > 2 else "GenericError"
        description = str(frame[3]) if len(frame) > 3 else ""
        taken[1].set_exception(StationCallError(code, description))

    # ---- wire ----------------------------------------------------------------------------

    def _record_in(self, message: str | bytes, frame: Any, at: datetime) -> None:
        """Log an inbound frame: a CALL with its action, a reply with the action of our CALL."""
        if self._log is None:
            return
        message_type, message_id = frame_identity(frame)
        action: str | None = None
        if message_type == MessageType.CALL:
            action = frame[2] if len(frame) > 2 and isinstance(frame[2], str) else None
        elif message_type in (MessageType.CALLRESULT, MessageType.CALLERROR):
            action = self._recent_calls.get(message_id)
        self._log.record(self.station_id, IN, message_type, message_id, action, message, at)

    async def _send(self, frame: list[Any], action: str | None = None) -> None:
        """Send a frame; it is logged as sent when handed to the socket."""
        text = orjson.dumps(frame).decode()
        _OUT[frame[0]][action].inc()
        if self._log is not None:
            self._log.record(self.station_id, OUT, frame[0], frame[1], action, text, self.ctx.now())
        await self._ws.send(text)

    async def _send_error(
        self,
        msg_id: str,
        code: ErrorCode,
        description: str,
        details: dict[str, Any] | None = None,
        action: str | None = None,
    ) -> None:
        log.info("%s: CALLERROR %s %s", self.station_id, code.value, description)
        try:
            await self._send(
                [MessageType.CALLERROR, msg_id, code.wire(self.protocol), description, details or {}], action
            )
        except ConnectionClosed:
            pass


def _readable_id(frame: Any) -> str:
    if isinstance(frame, list) and len(frame) >= 2 and isinstance(frame[1], str) and len(frame[1]) <= 36:
        return frame[1]
    return UNREADABLE_ID


def _is_bad_value(exc: BaseException) -> bool:
    """Whether a failure comes from a value in the message rather than from the database
    being unavailable: a ValueError/OverflowError anywhere in the chain (our parsing, or the
    driver refusing a parameter), or a PostgreSQL data exception (SQLSTATE class 22)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ValueError | OverflowError):
            return True
        if str(getattr(current, "sqlstate", "") or "").startswith("22"):
            return True
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False
