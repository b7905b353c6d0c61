"""A simulated OCPP 1.6J charge point (client side).

The station speaks OCPP 1.6J over a WebSocket to a central system (``{base_url}/{station_id}``) and behaves
like a real AC charger: it boots, reports connector statuses, heartbeats, authorizes id tags, runs
transactions with a cumulative energy register that keeps growing across sessions, sends periodic meter
values and answers the central system's requests (remote start/stop, configuration, local list, reset,
unlock, availability, trigger message, diagnostics, firmware update, reservations, smart charging).

Everything the central system sends is answered first; side effects that need to send messages of their own
(starting a session after a RemoteStartTransaction, rebooting after a Reset, ...) run afterwards as
background tasks, from ``@after`` hooks, so the reply always leaves before the follow-up messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

from ocpp.exceptions import OCPPError
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from stekker.sim import uploads
from stekker.sim.authorization import LocalAuthorization, info_status
from stekker.sim.configuration import (
    SUPPORTED_MEASURANDS,
    ConfigValue,
    config_bool,
    config_int,
    config_list,
    default_configuration,
    valid_config_value,
)
from stekker.sim.hardware import NOMINAL_VOLTAGE, Connector, Reservation, SimulatedEV
from stekker.sim.link import StationLink, StationOffline, logger
from stekker.sim.link import handles as _on
from stekker.sim.metering import ChargingModel
from stekker.sim.reservations import ReservationBook
from stekker.sim.smart_charging import clear_profiles, install_profile
from stekker.sim.timeutil import iso, parse_iso, utc_now

# Re-exported: these names used to be defined here.
__all__ = [
    "NOMINAL_VOLTAGE",
    "SUPPORTED_MEASURANDS",
    "ConfigValue",
    "Connector",
    "Reservation",
    "SimulatedEV",
    "SimulatedStation",
    "StationOffline",
    "default_configuration",
    "iso",
    "parse_iso",
    "utc_now",
]

# ------------------------------------------------------------------------------------------------
# Station
# ------------------------------------------------------------------------------------------------


class SimulatedStation(StationLink, ChargePoint):  # type: ignore[misc]
    """An OCPP 1.6J AC charge point with ``connectors`` outlets, built on :class:`ocpp.v16.ChargePoint`.

    It models the station's identity (vendor, model, serial, firmware), its connectors (status, energy
    register, transaction, reservation, charging profiles, the EV plugged in), the OCPP configuration keys,
    the local authorization list and authorization cache. Use :meth:`run` to connect and serve (it returns
    when :meth:`close` is called and raises when the connection drops), :meth:`start_session` and
    :meth:`stop_session` to drive charging sessions locally, as a driver with an RFID card would.
    """

    def __init__(
        self,
        station_id: str,
        base_url: str,
        *,
        connectors: int = 2,
        password: str | None = None,
        vendor: str = "Stekker",
        model: str = "SimCharge AC22",
        serial_number: str | None = None,
        firmware_version: str = "1.8.3",
        max_current_a: float = 32.0,
        heartbeat_interval: int = 300,
        meter_interval: int = 10,
        max_heartbeat_interval: int = 3600,
        unplug_delay: float = 2.0,
        reboot_delay: float = 3.0,
        response_timeout: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if connectors < 1:
            raise ValueError("a station needs at least one connector")
        super().__init__(
            station_id,
            base_url,
            password=password,
            vendor=vendor,
            model=model,
            serial_number=serial_number,
            firmware_version=firmware_version,
            max_heartbeat_interval=max_heartbeat_interval,
            reboot_delay=reboot_delay,
            response_timeout=response_timeout,
            rng=rng,
        )
        self.meter_serial_number = f"MTR{self.rng.randrange(10**7, 10**8)}"
        self.unplug_delay = unplug_delay

        self.connectors: dict[int, Connector[int]] = {
            i: Connector(connector_id=i, energy_wh=float(self.rng.randint(1_000_000, 9_000_000)))
            for i in range(1, connectors + 1)
        }
        self.station_inoperative = False
        self.configuration = default_configuration(connectors, heartbeat_interval, meter_interval)
        if password:
            self.configuration["AuthorizationKey"].value = password
            self.configuration["SecurityProfile"].value = "1"
        self.authorization = LocalAuthorization()
        # ChargePointMaxProfile / defaults on connector 0
        self.station_profiles: dict[int, dict[str, Any]] = {}
        self.charging = ChargingModel(max_current_a, self.station_profiles, self.rng)
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self._offline_queue: list[Any] = []
        self.reservations = ReservationBook(self._spawn, self._reservation_expired)

    # ------------------------------------------------------------------------------------------------
    # Public properties and helpers
    # ------------------------------------------------------------------------------------------------

    @property
    def max_current_a(self) -> float:
        return self.charging.max_current_a

    @max_current_a.setter
    def max_current_a(self, value: float) -> None:
        self.charging.max_current_a = value

    @property
    def local_list(self) -> dict[str, dict[str, Any]]:
        """The local authorization list: id tag -> IdTagInfo."""
        return self.authorization.local_list

    @local_list.setter
    def local_list(self, value: dict[str, dict[str, Any]]) -> None:
        self.authorization.local_list = value

    @property
    def local_list_version(self) -> int:
        return self.authorization.local_list_version

    @local_list_version.setter
    def local_list_version(self, value: int) -> None:
        self.authorization.local_list_version = value

    @property
    def auth_cache(self) -> dict[str, dict[str, Any]]:
        """The authorization cache: id tag -> IdTagInfo."""
        return self.authorization.cache

    @auth_cache.setter
    def auth_cache(self, value: dict[str, dict[str, Any]]) -> None:
        self.authorization.cache = value

    def config(self, key: str) -> str:
        return self.configuration[key].value

    def config_bool(self, key: str) -> bool:
        return config_bool(self.configuration, key)

    def config_int(self, key: str, default: int = 0) -> int:
        return config_int(self.configuration, key, default)

    def config_list(self, key: str) -> list[str]:
        return config_list(self.configuration, key)

    def active_transactions(self) -> dict[int, int]:
        """connector id -> transaction id of the running transactions."""
        return {
            c.connector_id: c.transaction_id for c in self.connectors.values() if c.transaction_id is not None
        }

    def free_connector(self, id_tag: str | None = None) -> int | None:
        """The lowest numbered connector on which a session could start now, if any."""
        if self.station_inoperative:
            return None
        for c in self.connectors.values():
            if c.is_free_for(id_tag):
                return c.connector_id
        return None

    def is_connector_free(self, connector_id: int) -> bool:
        """Whether a session could start on ``connector_id`` now."""
        connector = self.connectors.get(connector_id)
        return connector is not None and not self.station_inoperative and connector.is_free_for()

    # ------------------------------------------------------------------------------------------------
    # Connection hooks (see StationLink)
    # ------------------------------------------------------------------------------------------------

    subprotocol = "ocpp1.6"
    #: Seconds each firmware update step takes (None: a realistic 0.5-2 s); tests make it short.
    firmware_step_delay: float | None = None

    def _connection_settings(self) -> tuple[int, int]:
        return self.config_int("WebSocketPingInterval", 60), self.config_int("ConnectionTimeOut", 60)

    def _heartbeat_interval(self) -> int:
        return self.config_int("HeartbeatInterval", 300)

    def _store_heartbeat_interval(self, seconds: int) -> None:
        self.configuration["HeartbeatInterval"].value = str(seconds)

    async def _after_boot(self) -> None:
        await self._send_all_statuses()
        await self._flush_offline_queue()

    def _halt_for_reboot(self) -> None:
        for c in self.connectors.values():
            if c.meter_task is not None:
                c.meter_task.cancel()

    def _owned_tasks(self) -> list[asyncio.Task[Any]]:
        tasks = [c.meter_task for c in self.connectors.values() if c.meter_task is not None]
        return tasks + self.reservations.timers()

    # ------------------------------------------------------------------------------------------------
    # Boot, heartbeat, status
    # ------------------------------------------------------------------------------------------------

    def _boot_payload(self) -> call.BootNotification:
        return call.BootNotification(
            charge_point_vendor=self.vendor,
            charge_point_model=self.model,
            charge_point_serial_number=self.serial_number,
            charge_box_serial_number=self.serial_number,
            firmware_version=self.firmware_version,
            meter_type="SimMeter 3P",
            meter_serial_number=self.meter_serial_number,
        )

    def _station_status(self) -> str:
        return "Unavailable" if self.station_inoperative else "Available"

    async def _send_status(self, connector_id: int) -> None:
        if connector_id == 0:
            status, error = self._station_status(), "NoError"
        else:
            c = self.connectors[connector_id]
            status, error = c.status, c.error_code
        await self._try_send(
            call.StatusNotification(
                connector_id=connector_id, error_code=error, status=status, timestamp=iso(utc_now())
            )
        )

    async def _send_all_statuses(self) -> None:
        for connector_id in [0, *self.connectors]:
            await self._send_status(connector_id)

    async def _set_status(self, c: Connector[int], status: str, error_code: str = "NoError") -> None:
        if c.status == status and c.error_code == error_code:
            return
        logger.debug("%s: connector %s %s -> %s", self.station_id, c.connector_id, c.status, status)
        c.status, c.error_code = status, error_code
        if self.is_online:
            await self._send_status(c.connector_id)

    async def report_fault(self, connector_id: int, error_code: str = "GroundFailure") -> None:
        """Simulate a hardware fault on a connector (status Faulted with ``error_code``)."""
        await self._set_status(self.connectors[connector_id], "Faulted", error_code)

    async def clear_fault(self, connector_id: int) -> None:
        c = self.connectors[connector_id]
        await self._set_status(c, "Unavailable" if c.inoperative else "Available")

    # ------------------------------------------------------------------------------------------------
    # Metering
    # ------------------------------------------------------------------------------------------------

    def _advance(self, c: Connector[int]) -> None:
        self.charging.advance(c)

    def _limit_w(self, c: Connector[int], phases: int) -> float:
        return self.charging.limit_w(c, phases)

    def _station_max_w(self, phases: int) -> float:
        return self.charging.station_max_w(phases)

    def _update_power(self, c: Connector[int]) -> None:
        self.charging.update_power(c)

    def _next_status(self, c: Connector[int]) -> str:
        return self.charging.next_status(c)

    def _sampled_values(self, c: Connector[int], context: str, measurands: list[str]) -> list[dict[str, Any]]:
        """The meter's readings as OCPP 1.6 SampledValues (values are strings, ``format`` Raw)."""
        values: list[dict[str, Any]] = []
        for sample in self.charging.samples(c, measurands):
            sv: dict[str, Any] = {
                "value": sample.text,
                "context": context,
                "format": "Raw",
                "measurand": sample.measurand,
                "location": sample.location,
            }
            if sample.phase is not None:
                sv["phase"] = sample.phase
            sv["unit"] = sample.unit
            values.append(sv)
        return values

    def _meter_value(
        self, c: Connector[int], context: str, measurands: list[str] | None = None
    ) -> dict[str, Any]:
        self._advance(c)
        ms = measurands if measurands is not None else self.config_list("MeterValuesSampledData")
        ms = [m for m in ms if m in SUPPORTED_MEASURANDS] or ["Energy.Active.Import.Register"]
        return {"timestamp": iso(utc_now()), "sampled_value": self._sampled_values(c, context, ms)}

    async def send_meter_values(self, connector_id: int, context: str = "Sample.Periodic") -> None:
        c = self.connectors[connector_id]
        await self._try_send(
            call.MeterValues(
                connector_id=connector_id,
                transaction_id=c.transaction_id,
                meter_value=[self._meter_value(c, context)],
            )
        )

    async def _meter_loop(self, c: Connector[int]) -> None:
        """While a transaction runs: integrate energy, follow the EV and profiles, send periodic MeterValues
        every MeterValueSampleInterval seconds (0 = no sampled meter values, the simulation still runs)."""
        while c.transaction_id is not None:
            interval = self.config_int("MeterValueSampleInterval", 10)
            await asyncio.sleep(interval if interval > 0 else 5)
            if c.transaction_id is None:
                return
            self._advance(c)
            status = self._next_status(c)
            if status != c.status and c.status in ("Charging", "SuspendedEV", "SuspendedEVSE") and c.id_tag:
                await self._set_status(c, status)
            self._update_power(c)
            if interval > 0 and self.is_online:
                await self.send_meter_values(c.connector_id)

    # ------------------------------------------------------------------------------------------------
    # Authorization
    # ------------------------------------------------------------------------------------------------

    def _local_authorization(self, id_tag: str) -> dict[str, Any] | None:
        """Local list first, then the authorization cache; only entries that are Accepted and not expired."""
        return self.authorization.lookup(
            id_tag,
            list_enabled=self.config_bool("LocalAuthListEnabled"),
            cache_enabled=self.config_bool("AuthorizationCacheEnabled"),
        )

    def _remember(self, id_tag: str, info: Any) -> None:
        self.authorization.remember(id_tag, info, cache_enabled=self.config_bool("AuthorizationCacheEnabled"))

    async def _authorize(self, id_tag: str) -> dict[str, Any]:
        resp = await self._request(call.Authorize(id_tag=id_tag))
        info = (
            resp.id_tag_info
            if isinstance(resp.id_tag_info, dict)
            else {"status": info_status(resp.id_tag_info)}
        )
        self._remember(id_tag, info)
        return cast(dict[str, Any], info)

    # ------------------------------------------------------------------------------------------------
    # Sessions
    # ------------------------------------------------------------------------------------------------

    async def start_session(self, connector_id: int, id_tag: str) -> int | None:
        """A driver plugs in on ``connector_id`` and presents ``id_tag``.

        Preparing -> Authorize (skipped when LocalPreAuthorize is true and the tag is valid in the local
        list or cache) -> StartTransaction -> Charging and periodic MeterValues. Returns the transaction id,
        or None when the connector is busy, the station is offline or the tag is not accepted.
        """
        c = self.connectors.get(connector_id)
        if c is None or self.station_inoperative or not c.is_free_for(id_tag) or not self.is_online:
            return None
        c.claimed = True
        return await self._start_session(c, id_tag, remote=False)

    async def _start_session(self, c: Connector[int], id_tag: str, *, remote: bool) -> int | None:
        """Start a session on a connector already claimed by the caller."""
        try:
            reservation = c.reservation
            if c.status != "Preparing":
                await self._set_status(c, "Preparing")
            authorize = self.config_bool("AuthorizeRemoteTxRequests") if remote else True
            if authorize and self.config_bool("LocalPreAuthorize") and self._local_authorization(id_tag):
                authorize = False
            if authorize:
                info = await self._authorize(id_tag)
                if info.get("status") != "Accepted":
                    logger.info(
                        "%s: id tag %s not accepted (%s)", self.station_id, id_tag, info.get("status")
                    )
                    await self._set_status(c, "Reserved" if reservation else "Available")
                    return None
                if reservation is not None and reservation.id_tag != id_tag:
                    parent = info.get("parent_id_tag")
                    if not (parent and reservation.parent_id_tag == parent):
                        await self._set_status(c, "Reserved")
                        return None
            c.ev = SimulatedEV.random(self.rng)
            self._advance(c)
            meter_start = c.energy_register
            started_at = utc_now()
            resp = await self._request(
                call.StartTransaction(
                    connector_id=c.connector_id,
                    id_tag=id_tag,
                    meter_start=meter_start,
                    timestamp=iso(started_at),
                    reservation_id=reservation.reservation_id if reservation is not None else None,
                )
            )
            if reservation is not None:
                self.reservations.drop(c)
            c.transaction_id = int(resp.transaction_id)
            c.id_tag, c.meter_start, c.tx_started_at = id_tag, meter_start, started_at
            c.last_update = time.monotonic()
            status = info_status(resp.id_tag_info)
            self._remember(id_tag, resp.id_tag_info)
            logger.info(
                "%s: transaction %s started on connector %s for %s (meterStart %s Wh, %s)",
                self.station_id,
                c.transaction_id,
                c.connector_id,
                id_tag,
                meter_start,
                status,
            )
            if status != "Accepted":
                if self.config_bool("StopTransactionOnInvalidId"):
                    c.claimed = False
                    await self.stop_session(c.connector_id, reason="DeAuthorized")
                    return None
                # Keep the transaction open but deliver no energy until it is stopped.
                c.id_tag = None
                await self._set_status(c, "SuspendedEVSE")
                tx_id = c.transaction_id
                c.claimed = False
                return tx_id
            await self._set_status(c, self._next_status(c))
            self._update_power(c)
            c.meter_task = asyncio.create_task(
                self._meter_loop(c), name=f"{self.station_id}:meter{c.connector_id}"
            )
            return c.transaction_id
        except (StationOffline, OCPPError, TimeoutError) as exc:
            logger.warning(
                "%s: could not start a session on connector %s: %r", self.station_id, c.connector_id, exc
            )
            if c.transaction_id is None:
                c.ev = None
                with contextlib.suppress(Exception):
                    await self._set_status(c, "Available")
            return c.transaction_id
        finally:
            c.claimed = False

    async def stop_session(self, connector_id: int, reason: str = "Local") -> None:
        """End the transaction on ``connector_id``: StopTransaction (with a Transaction.End register reading
        in transactionData) -> Finishing -> (after the driver unplugs) Available. When the station is offline
        the StopTransaction is queued and sent after the next successful boot."""
        c = self.connectors.get(connector_id)
        if c is None or c.transaction_id is None or c.stopping:
            return
        c.stopping = True
        try:
            if c.meter_task is not None and c.meter_task is not asyncio.current_task():
                c.meter_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await c.meter_task
            c.meter_task = None
            self._advance(c)
            c.power_w = 0.0
            now = utc_now()
            stop_measurands = [m for m in self.config_list("StopTxnSampledData") if m in SUPPORTED_MEASURANDS]
            stop_measurands = stop_measurands or ["Energy.Active.Import.Register"]
            begin = {
                "timestamp": iso(c.tx_started_at or now),
                "sampled_value": [
                    {
                        "value": str(c.meter_start),
                        "context": "Transaction.Begin",
                        "format": "Raw",
                        "measurand": "Energy.Active.Import.Register",
                        "location": "Outlet",
                        "unit": "Wh",
                    }
                ],
            }
            end = self._meter_value(c, "Transaction.End", stop_measurands)
            payload = call.StopTransaction(
                meter_stop=c.energy_register,
                timestamp=iso(now),
                transaction_id=c.transaction_id,
                reason=reason,
                id_tag=c.id_tag,
                transaction_data=[begin, end],
            )
            logger.info(
                "%s: stopping transaction %s on connector %s (%s, %.0f Wh)",
                self.station_id,
                c.transaction_id,
                connector_id,
                reason,
                c.energy_register - c.meter_start,
            )
            c.transaction_id, c.id_tag, c.tx_started_at = None, None, None
            c.profiles = {
                k: p for k, p in c.profiles.items() if p.get("charging_profile_purpose") != "TxProfile"
            }
            try:
                resp = await self._request(payload)
                if resp is not None and resp.id_tag_info is not None and payload.id_tag:
                    self._remember(payload.id_tag, resp.id_tag_info)
            except (StationOffline, TimeoutError):
                logger.info(
                    "%s: offline, queueing StopTransaction %s", self.station_id, payload.transaction_id
                )
                self._offline_queue.append(payload)
            except OCPPError as exc:
                logger.warning("%s: StopTransaction rejected: %r", self.station_id, exc)
            await self._set_status(c, "Finishing")
        finally:
            c.stopping = False
        self._spawn(self._unplug(c), f"unplug{connector_id}")

    async def _unplug(self, c: Connector[int]) -> None:
        """The driver takes the cable out after a short while; the connector becomes Available again (or
        Unavailable when a ChangeAvailability was scheduled)."""
        c.claimed = True  # nobody can start here until the cable is out
        try:
            await asyncio.sleep(self.unplug_delay)
        finally:
            c.claimed = False
            c.ev = None
        if c.transaction_id is not None or c.status != "Finishing":
            return
        if c.scheduled_availability is not None:
            c.inoperative = c.scheduled_availability == "Inoperative"
            c.scheduled_availability = None
        await self._set_status(c, "Unavailable" if c.inoperative or self.station_inoperative else "Available")

    async def _flush_offline_queue(self) -> None:
        while self._offline_queue:
            payload = self._offline_queue[0]
            try:
                await self._request(payload)
            except OCPPError as exc:
                logger.warning("%s: queued %s rejected: %r", self.station_id, type(payload).__name__, exc)
            self._offline_queue.pop(0)

    # ------------------------------------------------------------------------------------------------
    # Reservations
    # ------------------------------------------------------------------------------------------------

    async def _reservation_expired(self, c: Connector[Any], reservation: Reservation) -> None:
        logger.info("%s: reservation %s expired", self.station_id, reservation.reservation_id)
        if c.status == "Reserved":
            await self._set_status(c, "Available")

    # ------------------------------------------------------------------------------------------------
    # Handlers: Core profile
    # ------------------------------------------------------------------------------------------------

    @_on(Action.remote_start_transaction)
    def on_remote_start_transaction(
        self,
        id_tag: str,
        call_unique_id: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> call_result.RemoteStartTransaction:
        if connector_id is None:
            chosen = self.free_connector(id_tag)
        elif connector_id in self.connectors and not self.station_inoperative:
            chosen = connector_id if self.connectors[connector_id].is_free_for(id_tag) else None
        else:
            chosen = None
        if chosen is None or not self.is_online:
            return call_result.RemoteStartTransaction(status="Rejected")
        c = self.connectors[chosen]
        c.claimed = True
        if charging_profile and charging_profile.get("charging_profile_purpose") == "TxProfile":
            c.profiles[int(charging_profile["charging_profile_id"])] = charging_profile
        self._defer(call_unique_id, lambda: self._remote_start(c, id_tag))
        return call_result.RemoteStartTransaction(status="Accepted")

    async def _remote_start(self, c: Connector[int], id_tag: str) -> None:
        await self._start_session(c, id_tag, remote=True)

    @_on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(
        self, transaction_id: int, call_unique_id: str, **kwargs: Any
    ) -> call_result.RemoteStopTransaction:
        for c in self.connectors.values():
            if c.transaction_id == transaction_id and not c.stopping:
                self._defer(call_unique_id, functools.partial(self.stop_session, c.connector_id, "Remote"))
                return call_result.RemoteStopTransaction(status="Accepted")
        return call_result.RemoteStopTransaction(status="Rejected")

    @_on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **kwargs: Any) -> call_result.ChangeConfiguration:
        entry = self.configuration.get(key)
        if entry is None:
            return call_result.ChangeConfiguration(status="NotSupported")
        if entry.readonly or not valid_config_value(key, entry, value):
            return call_result.ChangeConfiguration(status="Rejected")
        if entry.kind == "bool":
            value = value.strip().lower()
        entry.value = value
        logger.info(
            "%s: configuration %s = %s", self.station_id, key, "***" if entry.kind == "secret" else value
        )
        if key == "HeartbeatInterval":
            self._heartbeat_changed.set()
        elif key == "AuthorizationKey":
            self.password = value  # used from the next connection on
        elif key == "AuthorizationCacheEnabled" and value == "false":
            self.auth_cache.clear()
        return call_result.ChangeConfiguration(status="Accepted")

    @_on(Action.get_configuration)
    def on_get_configuration(
        self, key: list[str] | None = None, **kwargs: Any
    ) -> call_result.GetConfiguration:
        wanted = list(self.configuration) if not key else key
        known, unknown = [], []
        for k in wanted:
            entry = self.configuration.get(k)
            if entry is None:
                unknown.append(k)
            elif entry.kind == "secret":
                if key:  # asked for explicitly: it exists, but its value is never reported
                    known.append({"key": k, "readonly": entry.readonly})
            else:
                known.append({"key": k, "readonly": entry.readonly, "value": entry.value})
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @_on(Action.clear_cache)
    def on_clear_cache(self, **kwargs: Any) -> call_result.ClearCache:
        self.auth_cache.clear()
        return call_result.ClearCache(status="Accepted")

    @_on(Action.reset)
    def on_reset(self, type: str, call_unique_id: str, **kwargs: Any) -> call_result.Reset:
        self._defer(call_unique_id, lambda: self._do_reset(type))
        return call_result.Reset(status="Accepted")

    async def _do_reset(self, kind: str) -> None:
        reason = "HardReset" if kind == "Hard" else "SoftReset"
        logger.info("%s: %s reset requested", self.station_id, kind)
        for connector_id in list(self.active_transactions()):
            await self.stop_session(connector_id, reason)
        await asyncio.sleep(0.2)
        await self._reboot()

    @_on(Action.unlock_connector)
    def on_unlock_connector(
        self, connector_id: int, call_unique_id: str, **kwargs: Any
    ) -> call_result.UnlockConnector:
        c = self.connectors.get(connector_id)
        if c is None:
            return call_result.UnlockConnector(status="NotSupported")
        if c.transaction_id is not None:
            self._defer(call_unique_id, lambda: self.stop_session(connector_id, "UnlockCommand"))
        return call_result.UnlockConnector(status="Unlocked")

    @_on(Action.change_availability)
    def on_change_availability(
        self, connector_id: int, type: str, call_unique_id: str, **kwargs: Any
    ) -> call_result.ChangeAvailability:
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.ChangeAvailability(status="Rejected")
        targets = list(self.connectors.values()) if connector_id == 0 else [self.connectors[connector_id]]
        scheduled = [c.change_availability(type == "Operative") for c in targets]
        if connector_id == 0:
            self.station_inoperative = type == "Inoperative"

        async def notify() -> None:
            if connector_id == 0:
                await self._send_status(0)
            for c in targets:
                status = c.status_after_availability_change()
                if status is not None:
                    await self._set_status(c, status)

        self._defer(call_unique_id, notify)
        return call_result.ChangeAvailability(status="Scheduled" if any(scheduled) else "Accepted")

    @_on(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **kwargs: Any
    ) -> call_result.DataTransfer:
        if vendor_id == self.vendor and message_id == "echo":  # our own vendor: echoes data back
            return call_result.DataTransfer(status="Accepted", data=data)
        return call_result.DataTransfer(status="UnknownVendorId")

    # ------------------------------------------------------------------------------------------------
    # Handlers: RemoteTrigger
    # ------------------------------------------------------------------------------------------------

    @_on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, call_unique_id: str, connector_id: int | None = None, **kwargs: Any
    ) -> call_result.TriggerMessage:
        if connector_id is not None and connector_id != 0 and connector_id not in self.connectors:
            return call_result.TriggerMessage(status="Rejected")
        senders: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "BootNotification": self._triggered_boot,
            "Heartbeat": self._triggered_heartbeat,
            "StatusNotification": lambda: self._triggered_status(connector_id),
            "MeterValues": lambda: self._triggered_meter_values(connector_id),
            "DiagnosticsStatusNotification": lambda: self._send_simple(
                call.DiagnosticsStatusNotification(status=self.diagnostics_status)
            ),
            "FirmwareStatusNotification": lambda: self._send_simple(
                call.FirmwareStatusNotification(status=self.firmware_status)
            ),
        }
        sender = senders.get(requested_message)
        if sender is None:
            return call_result.TriggerMessage(status="NotImplemented")
        self._defer(call_unique_id, sender)
        return call_result.TriggerMessage(status="Accepted")

    async def _send_simple(self, payload: Any) -> None:
        await self._try_send(payload)

    async def _triggered_boot(self) -> None:
        resp = await self._try_send(self._boot_payload())
        if resp is not None and resp.status == "Accepted" and int(resp.interval) > 0:
            self.configuration["HeartbeatInterval"].value = str(
                min(int(resp.interval), self.max_heartbeat_interval)
            )
            self._heartbeat_changed.set()

    async def _triggered_heartbeat(self) -> None:
        await self._try_send(call.Heartbeat())

    async def _triggered_status(self, connector_id: int | None) -> None:
        for cid in [0, *self.connectors] if connector_id is None else [connector_id]:
            await self._send_status(cid)

    async def _triggered_meter_values(self, connector_id: int | None) -> None:
        ids = list(self.connectors) if not connector_id else [connector_id]
        for cid in ids:
            await self.send_meter_values(cid, context="Trigger")

    # ------------------------------------------------------------------------------------------------
    # Handlers: FirmwareManagement
    # ------------------------------------------------------------------------------------------------

    @_on(Action.get_diagnostics)
    def on_get_diagnostics(
        self, location: str, call_unique_id: str, **kwargs: Any
    ) -> call_result.GetDiagnostics:
        file_name = f"diagnostics-{self.station_id}-{utc_now().strftime('%Y%m%dT%H%M%SZ')}.log"
        retries = int(kwargs.get("retries") or 0)
        self._defer(call_unique_id, lambda: self._upload_diagnostics(location, file_name, retries))
        return call_result.GetDiagnostics(file_name=file_name)

    async def _upload_diagnostics(self, location: str, file_name: str, retries: int = 0) -> None:
        """Really upload a small generated log (multipart POST to `location`, as 1.6 stations do over
        HTTP) and report Uploading, then Uploaded or UploadFailed after the last try."""
        content = uploads.generate_log(self.station_id, "diagnostics")
        self.diagnostics_status = "Uploading"
        await self._try_send(call.DiagnosticsStatusNotification(status="Uploading"))
        ok = False
        for attempt in range(min(retries, 5) + 1):
            if attempt:
                await asyncio.sleep(0.2)
            if ok := await uploads.upload(location, file_name, content, multipart=True):
                break
        self.diagnostics_status = "Uploaded" if ok else "UploadFailed"
        await self._try_send(call.DiagnosticsStatusNotification(status=self.diagnostics_status))
        self.diagnostics_status = "Idle"

    @_on(Action.update_firmware)
    def on_update_firmware(
        self, location: str, retrieve_date: str, call_unique_id: str, **kwargs: Any
    ) -> call_result.UpdateFirmware:
        self._defer(call_unique_id, lambda: self._update_firmware(location, retrieve_date))
        return call_result.UpdateFirmware()

    async def _update_firmware(self, location: str, retrieve_date: str) -> None:
        # Simulated: nothing is downloaded; the station walks through the status notifications and reboots
        # with a new firmware version when no transaction is running.
        start = parse_iso(retrieve_date)
        if start is not None:
            await asyncio.sleep(min(max(0.0, (start - utc_now()).total_seconds()), 3600.0))
        logger.info("%s: firmware update from %s", self.station_id, location)
        for status, delay in (
            ("Downloading", 0.5),
            ("Downloaded", 2.0),
            ("Installing", 0.5),
            ("Installed", 2.0),
        ):
            await asyncio.sleep(delay if self.firmware_step_delay is None else self.firmware_step_delay)
            self.firmware_status = status
            await self._try_send(call.FirmwareStatusNotification(status=status))
        parts = self.firmware_version.split(".")
        if parts and parts[-1].isdigit():
            parts[-1] = str(int(parts[-1]) + 1)
            self.firmware_version = ".".join(parts)
        self.firmware_status = "Idle"
        if not self.active_transactions():
            await self._reboot()

    # ------------------------------------------------------------------------------------------------
    # Handlers: LocalAuthListManagement
    # ------------------------------------------------------------------------------------------------

    @_on(Action.get_local_list_version)
    def on_get_local_list_version(self, **kwargs: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self.local_list_version)

    @_on(Action.send_local_list)
    def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> call_result.SendLocalList:
        status = self.authorization.apply_local_list(
            list_version,
            update_type,
            [(e["id_tag"], e.get("id_tag_info")) for e in local_authorization_list or []],
            max_entries_per_message=self.config_int("SendLocalListMaxLength", 250),
            max_list_length=self.config_int("LocalAuthListMaxLength", 1000),
        )
        if status != "Accepted":
            return call_result.SendLocalList(status=status)
        logger.info(
            "%s: local list v%s (%s, %d entries)",
            self.station_id,
            list_version,
            update_type,
            len(self.local_list),
        )
        return call_result.SendLocalList(status="Accepted")

    # ------------------------------------------------------------------------------------------------
    # Handlers: Reservation
    # ------------------------------------------------------------------------------------------------

    @_on(Action.reserve_now)
    def on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        call_unique_id: str,
        parent_id_tag: str | None = None,
        **kwargs: Any,
    ) -> call_result.ReserveNow:
        c = self.connectors.get(connector_id)
        if c is None:  # includes connector 0: ReserveConnectorZeroSupported is false
            return call_result.ReserveNow(status="Rejected")
        expiry = parse_iso(expiry_date)
        if expiry is None or expiry <= utc_now():
            return call_result.ReserveNow(status="Rejected")
        refusal = self.reservations.refusal(c, reservation_id, self.station_inoperative)
        if refusal is not None:
            return call_result.ReserveNow(status=refusal)
        reservation = Reservation(reservation_id, id_tag, expiry, parent_id_tag)
        moved = self.reservations.place(self.connectors.values(), c, reservation)

        async def apply() -> None:
            for other in moved:
                if other.status == "Reserved":
                    await self._set_status(other, "Available")
            await self._set_status(c, "Reserved")

        self._defer(call_unique_id, apply)
        return call_result.ReserveNow(status="Accepted")

    @_on(Action.cancel_reservation)
    def on_cancel_reservation(
        self, reservation_id: int, call_unique_id: str, **kwargs: Any
    ) -> call_result.CancelReservation:
        c = self.reservations.cancel(self.connectors.values(), reservation_id)
        if c is None:
            return call_result.CancelReservation(status="Rejected")
        if c.status == "Reserved":
            self._defer(call_unique_id, functools.partial(self._set_status, c, "Available"))
        return call_result.CancelReservation(status="Accepted")

    # ------------------------------------------------------------------------------------------------
    # Handlers: SmartCharging
    # ------------------------------------------------------------------------------------------------

    @_on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **kwargs: Any
    ) -> call_result.SetChargingProfile:
        profile = cs_charging_profiles
        purpose = profile.get("charging_profile_purpose")
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.SetChargingProfile(status="Rejected")
        if int(profile.get("stack_level", 0)) > self.config_int("ChargeProfileMaxStackLevel", 10):
            return call_result.SetChargingProfile(status="Rejected")
        periods = (profile.get("charging_schedule") or {}).get("charging_schedule_period") or []
        if len(periods) > self.config_int("ChargingScheduleMaxPeriods", 24):
            return call_result.SetChargingProfile(status="Rejected")
        if purpose == "ChargePointMaxProfile":
            if connector_id != 0:
                return call_result.SetChargingProfile(status="Rejected")
            target = self.station_profiles
        elif purpose == "TxProfile":
            c = self.connectors.get(connector_id)
            if c is None or c.transaction_id is None:
                return call_result.SetChargingProfile(status="Rejected")
            if profile.get("transaction_id") not in (None, c.transaction_id):
                return call_result.SetChargingProfile(status="Rejected")
            target = c.profiles
        elif purpose == "TxDefaultProfile":
            target = self.station_profiles if connector_id == 0 else self.connectors[connector_id].profiles
        else:
            return call_result.SetChargingProfile(status="Rejected")
        install_profile(target, profile)
        self.charging.follow_new_limits(self.connectors.values())
        return call_result.SetChargingProfile(status="Accepted")

    @_on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **kwargs: Any,
    ) -> call_result.ClearChargingProfile:
        stores: list[tuple[int, dict[int, dict[str, Any]]]] = [(0, self.station_profiles)]
        stores += [(c.connector_id, c.profiles) for c in self.connectors.values()]
        removed = clear_profiles(stores, id, connector_id, charging_profile_purpose, stack_level)
        self.charging.follow_new_limits(self.connectors.values())
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @_on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **kwargs: Any
    ) -> call_result.GetCompositeSchedule:
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.GetCompositeSchedule(status="Rejected")
        unit = charging_rate_unit or "W"
        phases = 3
        outlet = self.connectors[connector_id] if connector_id else None
        limit_w = self.charging.composite_limit_w(outlet, len(self.connectors), phases)
        value = limit_w if unit == "W" else limit_w / (NOMINAL_VOLTAGE * phases)
        now = utc_now()
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=iso(now),
            charging_schedule={
                "duration": duration,
                "start_schedule": iso(now),
                "charging_rate_unit": unit,
                "charging_schedule_period": [
                    {"start_period": 0, "limit": round(value, 1), "number_phases": phases}
                ],
            },
        )
