"""The connection side of a simulated charge point, the same for every OCPP version.

:class:`StationLink` extends the ``ocpp`` package's ``ChargePoint`` with what a real station does around
its messages: connect (optionally with HTTP Basic auth), boot until accepted, heartbeat, reboot on request,
fail fast when the socket goes away, and run follow-up work only after a reply has left. The version
specific stations (:mod:`stekker.sim.station` for OCPP 1.6, :mod:`stekker.sim.station201` for 2.0.1)
subclass it together with ``ocpp.v16.ChargePoint`` or ``ocpp.v201.ChargePoint`` and fill in the hooks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast
from urllib.parse import quote

import websockets
from ocpp.charge_point import ChargePoint
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

__all__ = ["StationLink", "StationOffline", "handles", "logger"]

logger = logging.getLogger("stekker.sim")
# The ocpp package logs every frame at INFO; keep that quiet unless someone configures this logger.
frame_logger = logging.getLogger("stekker.sim.ocpp")
if frame_logger.level == logging.NOTSET:
    frame_logger.setLevel(logging.WARNING)

_F = TypeVar("_F", bound=Callable[..., Any])

#: Seconds to wait before booting again when a Pending/Rejected answer carries no interval.
DEFAULT_BOOT_RETRY = 30


def handles(action: str) -> Callable[[_F], _F]:
    """Typed wrapper around :func:`ocpp.routing.on` (which is untyped)."""
    return cast(Callable[[_F], _F], on(action))


class StationOffline(ConnectionError):
    """Raised when a message cannot be sent because the station is not connected (or not yet accepted)."""


class StationLink(ChargePoint):  # type: ignore[misc]
    """Connection lifecycle of a simulated station; subclasses add the protocol version's messages.

    Hooks a subclass provides: ``subprotocol``, :meth:`_boot_payload`, :meth:`_heartbeat_interval`,
    :meth:`_store_heartbeat_interval`, :meth:`_after_boot`, and optionally :meth:`_connection_settings`,
    :meth:`_halt_for_reboot` and :meth:`_owned_tasks`.

    A handler that must send messages of its own after its reply (starting a session after a remote start,
    rebooting after a Reset, ...) registers that work with :meth:`_defer`; it runs once the reply is sent.
    """

    subprotocol: str = ""

    def __init__(
        self,
        station_id: str,
        base_url: str,
        *,
        password: str | None,
        vendor: str,
        model: str,
        serial_number: str | None,
        firmware_version: str,
        max_heartbeat_interval: int,
        reboot_delay: float,
        response_timeout: float,
        rng: random.Random | None,
    ) -> None:
        super().__init__(station_id, None, response_timeout=response_timeout, logger=frame_logger)
        self.rng = rng or random.Random()
        self.station_id = station_id
        self.base_url = base_url.rstrip("/")
        self.password = password
        self.vendor = vendor
        self.model = model
        self.serial_number = serial_number or f"SC{self.rng.randrange(10**9, 10**10)}"
        self.firmware_version = firmware_version
        self.max_heartbeat_interval = max_heartbeat_interval
        self.reboot_delay = reboot_delay
        self.registration_status: str | None = None
        self.boot_count = 0
        # A station boots when it powers up or reboots, not when its network comes back: after a
        # lost connection (a gateway that died, an APN outage) it reconnects and carries on, its
        # sessions running. A BootNotification would tell the central system it rebooted (and
        # a 1.6 boot closes the sessions the central system thinks are open).
        self._needs_boot = True

        self._ws: ClientConnection | None = None
        self._conn_lost: asyncio.Event | None = None
        self._online = asyncio.Event()
        self._closing = False
        self._reboot_requested = False
        self._heartbeat_changed = asyncio.Event()
        self._boot_retry_now = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._deferred: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        # Every handled CALL gets the same follow-up hook: run what its handler deferred.
        for handlers in self.route_map.values():
            handlers.setdefault("_after_action", self._run_deferred_after)

    # ---- hooks --------------------------------------------------------------------------------

    def _boot_payload(self) -> Any:
        """The BootNotification request of this protocol version."""
        raise NotImplementedError

    def _heartbeat_interval(self) -> int:
        """Seconds between heartbeats as configured now (0 or less: ``max_heartbeat_interval``)."""
        raise NotImplementedError

    def _store_heartbeat_interval(self, seconds: int) -> None:
        """Keep the heartbeat interval the central system asked for in the station's configuration."""
        raise NotImplementedError

    async def _after_boot(self) -> None:
        """Runs once the BootNotification is accepted, and after a reconnect without a reboot: report
        statuses, send what was queued offline."""
        raise NotImplementedError

    def _connection_settings(self) -> tuple[int, int]:
        """(WebSocket ping interval, connection open timeout) in seconds; 0 disables either."""
        return 60, 60

    def _halt_for_reboot(self) -> None:
        """Stop activity that must not outlive a reboot (metering loops)."""

    def _owned_tasks(self) -> list[asyncio.Task[Any]]:
        """Tasks besides the spawned ones that :meth:`close` must cancel."""
        return []

    # ---- state --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.base_url}/{quote(self.station_id, safe='')}"

    @property
    def is_online(self) -> bool:
        """Connected and accepted by the central system (BootNotification Accepted)."""
        return self._online.is_set()

    async def wait_online(self, timeout: float | None = None) -> None:
        """Wait until the station is connected and its BootNotification was accepted."""
        await asyncio.wait_for(self._online.wait(), timeout)

    def _auth_headers(self) -> dict[str, str]:
        if not self.password:
            return {}
        token = base64.b64encode(f"{self.station_id}:{self.password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    # ---- background work ----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"{self.station_id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, StationOffline):
            logger.warning("%s: task %s failed: %r", self.station_id, task.get_name(), exc)

    def _defer(self, unique_id: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Remember work to run once the reply to the call ``unique_id`` is sent."""
        self._deferred[unique_id] = factory

    def _run_deferred_after(self, call_unique_id: str, **kwargs: Any) -> None:
        factory = self._deferred.pop(call_unique_id, None)
        if factory is not None:
            self._spawn(factory(), f"after-{call_unique_id[:8]}")

    # ---- connection lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        """Connect, boot and serve the connection.

        Returns when :meth:`close` is called. A Reset (or a firmware update) makes the station reboot: it
        closes the connection, waits ``reboot_delay`` and connects and boots again, all inside this call.
        Raises (``OSError``, ``websockets`` exceptions, ``StationOffline``) when the connection cannot be
        opened or is lost; the caller decides about reconnecting (see :func:`stekker.sim.fleet.run_fleet`).
        """
        self._closing = False
        while True:
            self._reboot_requested = False
            try:
                await self._serve_connection()
            except Exception:
                if not (self._closing or self._reboot_requested):
                    raise
            if self._closing:
                return
            if not self._reboot_requested:
                raise StationOffline(f"{self.station_id}: connection closed by the central system")
            logger.info("%s: rebooting", self.station_id)
            await asyncio.sleep(self.reboot_delay)
            if self._closing:
                return

    async def _serve_connection(self) -> None:
        ping, open_timeout = self._connection_settings()
        ws = await websockets.connect(
            self.url,
            subprotocols=[Subprotocol(self.subprotocol)],
            additional_headers=self._auth_headers(),
            user_agent_header=f"{self.vendor}-{self.model}/{self.firmware_version}",
            proxy=None,
            open_timeout=open_timeout or None,
            ping_interval=ping if ping > 0 else None,
            ping_timeout=max(ping, 20) if ping > 0 else None,
        )
        if ws.subprotocol != self.subprotocol:
            await ws.close(code=1002, reason=f"{self.subprotocol} subprotocol not agreed")
            raise ConnectionError(
                f"{self.station_id}: central system did not agree on subprotocol {self.subprotocol}"
            )
        logger.info("%s: connected to %s", self.station_id, self.url)
        lost = asyncio.Event()
        self._ws, self._connection, self._conn_lost = ws, ws, lost
        self._response_queue: asyncio.Queue[Any] = asyncio.Queue()
        self._deferred.clear()
        receiver = asyncio.create_task(self.start(), name=f"{self.station_id}:receive")
        receiver.add_done_callback(lambda _t: lost.set())
        heartbeat: asyncio.Task[None] | None = None
        try:
            if self._needs_boot:
                await self._boot()
                self._needs_boot = False
            else:
                self._online.set()  # reconnected without a reboot: the central system knows us
            await self._after_boot()
            heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"{self.station_id}:heartbeat")
            await receiver  # raises ConnectionClosed when the socket goes away
        finally:
            self._online.clear()
            lost.set()
            for task in (heartbeat, receiver):
                if task is None:
                    continue
                task.cancel()  # no-op when already finished; awaiting also retrieves its exception
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._ws = None
            self._conn_lost = None
            with contextlib.suppress(Exception):
                await ws.close()
            logger.info("%s: disconnected", self.station_id)

    async def close(self) -> None:
        """Shut the station down: cancel all its tasks and close the WebSocket. Running transactions stay
        open on the central system's side, as after a power cut; stop them first for a clean shutdown."""
        self._closing = True
        self._needs_boot = True  # a station shut down boots when it runs again
        self._online.clear()
        tasks = [t for t in [*self._tasks, *self._owned_tasks()] if not t.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def _reboot(self) -> None:
        """Close the connection; :meth:`run` then connects and boots again."""
        self._reboot_requested = True
        self._needs_boot = True
        self._online.clear()
        self._halt_for_reboot()
        if self._ws is not None:
            await self._ws.close(code=1001, reason="reboot")

    # ---- sending ------------------------------------------------------------------------------

    async def _request(self, payload: Any, *, need_online: bool = True) -> Any:
        """Send a CALL and return its result, failing fast with ``StationOffline`` when the connection goes
        away instead of waiting for the response timeout. CALLERRORs raise the matching ``OCPPError``."""
        lost = self._conn_lost
        if self._ws is None or lost is None or lost.is_set() or (need_online and not self._online.is_set()):
            raise StationOffline(f"{self.station_id} is offline")
        call_task = asyncio.ensure_future(self.call(payload, suppress=False))
        lost_task = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait({call_task, lost_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost_task.cancel()
            if not call_task.done():
                call_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await call_task
        if call_task.cancelled():
            raise StationOffline(f"{self.station_id}: connection lost while waiting for a response")
        return call_task.result()

    async def _try_send(self, payload: Any) -> Any:
        """Like ``_request`` but only logs failures (for notifications whose loss is harmless)."""
        try:
            return await self._request(payload)
        except StationOffline:
            return None
        except (OCPPError, TimeoutError) as exc:
            logger.warning("%s: %s failed: %r", self.station_id, type(payload).__name__, exc)
            return None

    # ---- boot and heartbeat -------------------------------------------------------------------

    async def _boot(self) -> None:
        """BootNotification until Accepted; Pending and Rejected are retried after the interval the
        central system asked for (or given up early when the connection goes away meanwhile)."""
        while True:
            resp = await self._request(self._boot_payload(), need_online=False)
            self.registration_status = str(resp.status)
            interval = int(resp.interval)
            logger.info("%s: BootNotification %s (interval %s)", self.station_id, resp.status, interval)
            if resp.status == "Accepted":
                self.boot_count += 1
                if interval > 0:
                    self._store_heartbeat_interval(min(interval, self.max_heartbeat_interval))
                self._online.set()
                return
            lost = self._conn_lost
            delay = min(interval, self.max_heartbeat_interval) if interval > 0 else DEFAULT_BOOT_RETRY
            if lost is None:
                raise StationOffline(f"{self.station_id} is offline")
            self._boot_retry_now.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (lost, self._boot_retry_now)]
            try:
                await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    def _retry_boot_now(self) -> None:
        """Send the next BootNotification at once instead of after the interval (a triggered boot)."""
        self._boot_retry_now.set()

    async def _heartbeat_loop(self) -> None:
        while True:
            interval = self._heartbeat_interval()
            if interval <= 0:
                interval = self.max_heartbeat_interval
            self._heartbeat_changed.clear()
            try:
                await asyncio.wait_for(
                    self._heartbeat_changed.wait(), timeout=min(interval, self.max_heartbeat_interval)
                )
                continue  # interval changed: start over with the new value
            except TimeoutError:
                pass
            try:
                await self._request(self._call.Heartbeat())
            except StationOffline:
                return
            except (OCPPError, TimeoutError) as exc:
                logger.warning("%s: Heartbeat failed: %r", self.station_id, exc)
