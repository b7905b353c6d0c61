"""A simulated OCPP 2.0.1 charging station (client side), built on :class:`ocpp.v201.ChargePoint`.

It speaks subprotocol ``ocpp2.0.1`` to ``{base_url}/{station_id}`` and behaves like an AC charger with
numbered EVSEs (one connector each unless told otherwise): it boots, reports connector statuses, heartbeats,
authorizes idTokens, runs transactions reported with TransactionEvent (Started / Updated / Ended, seqNo,
the lifetime energy register), keeps those events in order while offline and sends them after reconnecting
with ``offline`` set, and answers the CSMS: device model (GetVariables, SetVariables, GetBaseReport,
GetReport), remote start/stop, local list and cache, reset, availability, unlock, trigger message, smart
charging, reservations, log upload and firmware update.

What it shares with the OCPP 1.6 simulator lives in version-neutral modules: the connection lifecycle
(:mod:`stekker.sim.link`), the electrical model (:mod:`stekker.sim.metering`), local authorization, charging
profiles and reservations. Replies always leave before the messages they cause (see ``StationLink._defer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from ocpp.exceptions import OccurenceConstraintViolationError, OCPPError
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

from stekker.sim import uploads
from stekker.sim.authorization import LocalAuthorization
from stekker.sim.device_model import DeviceModel, Variable
from stekker.sim.evse201 import (
    DEAUTHORIZING_REASONS,
    STOP_TRIGGERS,
    TX_POINT_TRIGGERS,
    Evse,
    charging_state,
    normalized_points,
)
from stekker.sim.hardware import NOMINAL_VOLTAGE, Connector, Reservation, SimulatedEV
from stekker.sim.inventory201 import StationSpec, standard_variables
from stekker.sim.link import StationLink, StationOffline, logger
from stekker.sim.link import handles as _on
from stekker.sim.metering import ACTIVE_STATUSES, SUPPORTED_MEASURANDS, ChargingModel, Sample
from stekker.sim.outbox import Outbox, QueuedMessage
from stekker.sim.reservations import ReservationBook
from stekker.sim.smart_charging import (
    STATION_MAX_PROFILE,
    clear_profiles,
    install_profile,
    profile_from_v201,
    purpose_from_v201,
)
from stekker.sim.timeutil import iso, parse_iso, utc_now

__all__ = ["SimulatedStation201"]

ENERGY = "Energy.Active.Import.Register"
#: Seconds between simulation steps of a running transaction when no periodic events are configured.
IDLE_TICK = 5.0


async def _woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``event`` is set (then True, and the event is cleared)."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        return False
    event.clear()
    return True


class SimulatedStation201(StationLink, ChargePoint):  # type: ignore[misc]
    """An OCPP 2.0.1 AC charging station with ``evses`` EVSEs of ``connectors_per_evse`` connectors.

    Use :meth:`run` to connect and serve (it returns when :meth:`close` is called and raises when the
    connection drops), :meth:`start_session` and :meth:`stop_session` to act as a driver would. Sessions
    may start while offline when the device model allows it (AuthCtrlr.LocalAuthorizeOffline with a known
    token, or AuthCtrlr.OfflineTxForUnknownIdEnabled); their events are delivered after reconnecting.
    """

    subprotocol = "ocpp2.0.1"

    def __init__(
        self,
        station_id: str,
        base_url: str,
        *,
        evses: int = 2,
        connectors_per_evse: int = 1,
        password: str | None = None,
        vendor: str = "Stekker",
        model: str = "SimCharge AC22",
        serial_number: str | None = None,
        firmware_version: str = "2.4.0",
        max_current_a: float = 32.0,
        heartbeat_interval: int = 300,
        tx_updated_interval: int = 10,
        max_heartbeat_interval: int = 3600,
        unplug_delay: float = 2.0,
        reboot_delay: float = 3.0,
        progress_delay: float = 1.0,
        response_timeout: float = 30.0,
        report_items_per_message: int = 20,
        rng: random.Random | None = None,
    ) -> None:
        if evses < 1 or connectors_per_evse < 1:
            raise ValueError("a station needs at least one EVSE with at least one connector")
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
        self.unplug_delay = unplug_delay
        self.progress_delay = progress_delay
        self.report_items_per_message = max(1, report_items_per_message)
        self.iccid = f"8931{self.rng.randrange(10**15, 10**16)}"
        self.imsi = f"20404{self.rng.randrange(10**9, 10**10)}"
        self.evses: dict[int, Evse] = {
            n: Evse(n, self._new_outlet(n), connector_count=connectors_per_evse) for n in range(1, evses + 1)
        }
        self.station_inoperative = False
        self.station_profiles: dict[int, dict[str, Any]] = {}  # ChargingStationMaxProfile, defaults on EVSE 0
        self.charging = ChargingModel(max_current_a, self.station_profiles, self.rng)
        self.authorization = LocalAuthorization(expiry_field="cache_expiry_date_time")
        self.reservations = ReservationBook(self._spawn, self._reservation_expired)
        spec = StationSpec(
            station_id=station_id,
            vendor=vendor,
            model=model,
            serial_number=self.serial_number,
            firmware_version=firmware_version,
            evse_connectors={n: connectors_per_evse for n in self.evses},
            evse_max_power_w=self.charging.station_max_w(3),
            heartbeat_interval=heartbeat_interval,
            tx_updated_interval=tx_updated_interval,
            password=password,
            message_timeout=round(response_timeout),
        )
        self.device_model = DeviceModel(standard_variables(spec, self), self._variable_changed)
        self.firmware_status = "Idle"
        self.firmware_request_id: int | None = None
        self.log_status = "Idle"
        self.log_request_id: int | None = None
        self._boot_reason = "PowerUp"
        self._reset_when_idle = False
        self._transaction_ended = asyncio.Event()
        self._outbox = Outbox(
            self._request,
            self._heed_answer,
            self._retry_policy,
            StationOffline,
            f"{station_id} TransactionEvent",
        )
        self._delivery: asyncio.Task[None] | None = None
        self._upload: asyncio.Task[None] | None = None
        self._firmware_update: asyncio.Task[None] | None = None

    def _new_outlet(self, evse_id: int) -> Connector[str]:
        # The lifetime register of a station that has been in service for a while, never 0.
        return Connector(connector_id=evse_id, energy_wh=float(self.rng.randint(1_000_000, 9_000_000)))

    # ------------------------------------------------------------------------------------------------
    # Public helpers
    # ------------------------------------------------------------------------------------------------

    def active_transactions(self) -> dict[int, str]:
        """EVSE id -> transaction id of the running transactions."""
        return {
            n: e.outlet.transaction_id for n, e in self.evses.items() if e.outlet.transaction_id is not None
        }

    def free_evse(self, id_token: str | None = None) -> int | None:
        """The lowest numbered EVSE on which a session could start now, if any."""
        if self.station_inoperative:
            return None
        return next((n for n, e in self.evses.items() if e.outlet.is_free_for(id_token)), None)

    #: The name the fleet uses for every station version (an EVSE plays the part of a 1.6 connector).
    free_connector = free_evse

    def is_connector_free(self, evse_id: int) -> bool:
        """Whether a session could start on EVSE ``evse_id`` now (the fleet's name: an EVSE plays the
        part of a 1.6 connector)."""
        evse = self.evses.get(evse_id)
        return evse is not None and not self.station_inoperative and evse.outlet.is_free_for()

    @property
    def pending_transaction_events(self) -> int:
        """TransactionEvents not yet delivered to (and answered by) the CSMS."""
        return len(self._outbox)

    async def wait_transaction_events_delivered(self, timeout: float | None = None) -> None:
        """Wait until every TransactionEvent produced so far has been answered by the CSMS."""
        await self._outbox.wait_empty(timeout)

    # ---- LiveState, for the device model ------------------------------------------------------

    def availability_state(self, evse_id: int | None = None, connector_id: int | None = None) -> str:
        if evse_id is None:
            return "Unavailable" if self.station_inoperative else "Available"
        evse = self.evses[evse_id]
        if connector_id is None:
            return evse.availability_state(self.station_inoperative)
        return evse.connector_status(connector_id, self.station_inoperative)

    def evse_power_w(self, evse_id: int) -> float:
        return self.evses[evse_id].outlet.power_w

    def local_list_size(self) -> int:
        return len(self.authorization.local_list)

    def installed_profile_count(self) -> int:
        return len(self.station_profiles) + sum(len(e.outlet.profiles) for e in self.evses.values())

    # ------------------------------------------------------------------------------------------------
    # Connection hooks (see StationLink)
    # ------------------------------------------------------------------------------------------------

    def _connection_settings(self) -> tuple[int, int]:
        return self.device_model.integer("OCPPCommCtrlr", "WebSocketPingInterval", default=60), 60

    def _heartbeat_interval(self) -> int:
        return self.device_model.integer("OCPPCommCtrlr", "HeartbeatInterval", default=300)

    def _store_heartbeat_interval(self, seconds: int) -> None:
        self.device_model.assign("OCPPCommCtrlr", "HeartbeatInterval", str(seconds))

    def _boot_payload(self) -> call.BootNotification:
        return call.BootNotification(
            charging_station={
                "model": self.model,
                "vendor_name": self.vendor,
                "serial_number": self.serial_number,
                "firmware_version": self.firmware_version,
                "modem": {"iccid": self.iccid, "imsi": self.imsi},
            },
            reason=self._boot_reason,
        )

    async def _after_boot(self) -> None:
        self._boot_reason = "PowerUp"  # until something else makes it reboot
        for evse in self.evses.values():
            await self._report_statuses(evse, every=True)
        if self._delivery is not None:
            self._delivery.cancel()  # a retry wait of the previous connection must not send twice
        self._delivery = self._spawn(self._outbox.deliver(), "transaction-events")
        if self.firmware_status == "InstallRebooting":
            await self._try_send(
                call.FirmwareStatusNotification(status="Installed", request_id=self.firmware_request_id)
            )
            self.firmware_status, self.firmware_request_id = "Idle", None

    def _halt_for_reboot(self) -> None:
        for evse in self.evses.values():
            if evse.outlet.meter_task is not None:
                evse.outlet.meter_task.cancel()

    def _owned_tasks(self) -> list[asyncio.Task[Any]]:
        meters = [e.outlet.meter_task for e in self.evses.values() if e.outlet.meter_task is not None]
        return meters + self.reservations.timers()

    # ------------------------------------------------------------------------------------------------
    # Device model
    # ------------------------------------------------------------------------------------------------

    def _points(self, variable: str) -> set[str]:
        return normalized_points(self.device_model.members("TxCtrlr", variable))

    def _measurands(self, variable: str) -> list[str]:
        wanted = [
            m for m in self.device_model.members("SampledDataCtrlr", variable) if m in SUPPORTED_MEASURANDS
        ]
        return wanted or [ENERGY]

    def _variable_changed(self, v: Variable) -> None:
        """Act on a SetVariables at once where the change must show before the next natural moment."""
        logger.info(
            "%s: %s.%s = %s",
            self.station_id,
            v.component,
            v.name,
            "***" if v.mutability == "WriteOnly" else v.value,
        )
        key = (v.component, v.name)
        if key == ("OCPPCommCtrlr", "HeartbeatInterval"):
            self._heartbeat_changed.set()
        elif key == ("OCPPCommCtrlr", "MessageTimeout"):
            self._response_timeout = int(v.value)
        elif key == ("SampledDataCtrlr", "TxUpdatedInterval"):
            for evse in self.evses.values():
                evse.wake.set()
        elif key == ("AuthCacheCtrlr", "Enabled") and v.value == "false":
            self.authorization.cache.clear()
        elif key == ("SecurityCtrlr", "BasicAuthPassword"):
            self.password = v.value  # used from the next connection on

    # ------------------------------------------------------------------------------------------------
    # Statuses
    # ------------------------------------------------------------------------------------------------

    async def _report_statuses(self, evse: Evse, *, every: bool = False) -> None:
        """StatusNotification for each connector of ``evse`` whose connectorStatus changed (``every``: all).
        Offline nothing is sent: every status is reported again after the next boot."""
        for connector_id in range(1, evse.connector_count + 1):
            status = evse.connector_status(connector_id, self.station_inoperative)
            if not self.is_online or (not every and evse.sent_status.get(connector_id) == status):
                continue
            evse.sent_status[connector_id] = status
            await self._try_send(
                call.StatusNotification(
                    timestamp=iso(utc_now()),
                    connector_status=status,
                    evse_id=evse.evse_id,
                    connector_id=connector_id,
                )
            )

    async def _set_status(self, evse: Evse, status: str) -> None:
        evse.outlet.status = status
        await self._report_statuses(evse)

    async def report_fault(self, evse_id: int) -> None:
        """Simulate a hardware fault on an EVSE (its connectors become Faulted)."""
        await self._set_status(self.evses[evse_id], "Faulted")

    async def clear_fault(self, evse_id: int) -> None:
        evse = self.evses[evse_id]
        await self._set_status(evse, "Unavailable" if evse.outlet.inoperative else "Available")

    # ------------------------------------------------------------------------------------------------
    # Metering
    # ------------------------------------------------------------------------------------------------

    def _meter_value(self, c: Connector[str], context: str, measurands: list[str]) -> dict[str, Any]:
        self.charging.advance(c)
        samples = self.charging.samples(c, measurands)
        return {"timestamp": iso(utc_now()), "sampled_value": [_sampled_value(s, context) for s in samples]}

    def _begin_reading(self, c: Connector[str]) -> dict[str, Any]:
        """The register reading the transaction started at, for the Ended event."""
        sample = Sample(ENERGY, c.meter_start, "Wh", 0)
        return {
            "timestamp": iso(c.tx_started_at or utc_now()),
            "sampled_value": [_sampled_value(sample, "Transaction.Begin")],
        }

    async def _meter_loop(self, evse: Evse) -> None:
        """While a transaction runs: integrate energy, follow the EV and charging profiles (reporting
        ChargingStateChanged), and send MeterValuePeriodic events every SampledDataCtrlr.TxUpdatedInterval
        seconds (0: none). Offline the events are queued like any other."""
        c = evse.outlet
        while c.transaction_id is not None:
            interval = self.device_model.integer("SampledDataCtrlr", "TxUpdatedInterval")
            if await _woken(evse.wake, interval if interval > 0 else IDLE_TICK):
                continue  # the interval changed: wait again with the new one
            if c.transaction_id is None:
                return
            self.charging.advance(c)
            if c.id_tag is not None and c.status in ACTIVE_STATUSES:
                status = self.charging.next_status(c)
                if status != c.status:
                    c.status = status
                    self._emit(evse, "Updated", "ChargingStateChanged")
            self.charging.update_power(c)
            if interval > 0 and self.device_model.boolean("SampledDataCtrlr", "Enabled"):
                self._emit(
                    evse,
                    "Updated",
                    "MeterValuePeriodic",
                    meter_values=[
                        self._meter_value(c, "Sample.Periodic", self._measurands("TxUpdatedMeasurands"))
                    ],
                )

    async def _stop_metering(self, c: Connector[str]) -> None:
        task, c.meter_task = c.meter_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------------------------------------
    # TransactionEvents: building them and delivering them in order
    # ------------------------------------------------------------------------------------------------

    def _emit(
        self,
        evse: Evse,
        event_type: str,
        trigger_reason: str,
        *,
        meter_values: list[dict[str, Any]] | None = None,
        stopped_reason: str | None = None,
        id_token: dict[str, Any] | None = None,
    ) -> None:
        """Queue a TransactionEvent about the transaction on ``evse``. What the CSMS has not been told yet
        (the idToken, a remoteStartId, a reservation) rides along with it."""
        c = evse.outlet
        info: dict[str, Any] = {"transaction_id": c.transaction_id, "charging_state": charging_state(c)}
        if evse.remote_start_id is not None:
            info["remote_start_id"], evse.remote_start_id = evse.remote_start_id, None
        if stopped_reason is not None:
            info["stopped_reason"] = stopped_reason
        if evse.token_to_report:
            id_token, evse.token_to_report = evse.id_token, False
        reservation_id, evse.reservation_to_report = evse.reservation_to_report, None
        payload = call.TransactionEvent(
            event_type=event_type,
            timestamp=iso(utc_now()),
            trigger_reason=trigger_reason,
            seq_no=evse.next_seq_no(),
            transaction_info=info,
            meter_value=meter_values or None,
            offline=True if not self.is_online else None,
            number_of_phases_used=c.ev.phases if c.ev is not None and c.status == "Charging" else None,
            reservation_id=reservation_id,
            evse={"id": evse.evse_id, "connector_id": evse.plugged_connector},
            id_token=id_token,
        )
        self._outbox.add(payload, evse.evse_id)

    def _retry_policy(self) -> tuple[int, int]:
        """OCPPCommCtrlr.MessageAttempts / MessageAttemptInterval for TransactionEvents."""
        model = self.device_model
        attempts = model.integer("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent", default=3)
        interval = model.integer("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent", default=60)
        return max(1, attempts), max(0, interval)

    def _heed_answer(self, queued: QueuedMessage, answer: Any) -> None:
        """The CSMS's verdict on the idToken of a TransactionEvent: cache it, and when it is not Accepted
        end the transaction (TxCtrlr.StopTxOnInvalidId) or stop offering energy."""
        info = answer.id_token_info
        token = queued.payload.id_token
        if not isinstance(info, dict) or token is None:
            return
        self._remember(token["id_token"], info)
        evse = self.evses[queued.outlet_id]
        c = evse.outlet
        transaction_id = queued.payload.transaction_info["transaction_id"]
        if info.get("status") == "Accepted" or c.transaction_id != transaction_id or c.stopping:
            return
        logger.info(
            "%s: idToken %s not accepted (%s)", self.station_id, token["id_token"], info.get("status")
        )
        if self.device_model.boolean("TxCtrlr", "StopTxOnInvalidId"):
            self._spawn(self.stop_session(evse.evse_id, "DeAuthorized"), f"deauthorize{evse.evse_id}")
        else:
            c.id_tag = None
            c.status = "SuspendedEVSE"
            self.charging.update_power(c)

    # ------------------------------------------------------------------------------------------------
    # Authorization
    # ------------------------------------------------------------------------------------------------

    def _auth_sources(self) -> dict[str, bool]:
        return {
            "list_enabled": self.device_model.boolean("LocalAuthListCtrlr", "Enabled"),
            "cache_enabled": self.device_model.boolean("AuthCacheCtrlr", "Enabled"),
        }

    def _remember(self, id_token: str, info: dict[str, Any]) -> None:
        lifetime = self.device_model.integer("AuthCacheCtrlr", "LifeTime", default=86400)
        entry = dict(info)
        entry.setdefault("cache_expiry_date_time", iso(utc_now() + timedelta(seconds=lifetime)))
        self.authorization.remember(id_token, entry, cache_enabled=self._auth_sources()["cache_enabled"])

    async def _authorize(self, id_token: dict[str, Any]) -> dict[str, Any]:
        """The IdTokenInfo deciding whether ``id_token`` may charge now: from the CSMS when online (unless
        AuthCtrlr.LocalPreAuthorize finds it valid locally), else by the offline rules of AuthCtrlr."""
        model = self.device_model
        if not model.boolean("AuthCtrlr", "Enabled"):
            return {"status": "Accepted"}
        value = id_token["id_token"]
        local = self.authorization.lookup(value, **self._auth_sources())
        if self.is_online:
            if local is not None and model.boolean("AuthCtrlr", "LocalPreAuthorize"):
                return local
            try:
                answer = await self._request(call.Authorize(id_token=id_token))
            except (StationOffline, TimeoutError, OCPPError) as exc:
                logger.info("%s: Authorize failed (%r): deciding as offline", self.station_id, exc)
            else:
                info: dict[str, Any] = answer.id_token_info
                self._remember(value, info)
                return info
        if local is not None and model.boolean("AuthCtrlr", "LocalAuthorizeOffline"):
            return local
        unknown = not self.authorization.knows(value, **self._auth_sources())
        if unknown and model.boolean("AuthCtrlr", "OfflineTxForUnknownIdEnabled"):
            return {"status": "Accepted"}
        return {"status": "Unknown" if unknown else "Invalid"}

    # ------------------------------------------------------------------------------------------------
    # Sessions
    # ------------------------------------------------------------------------------------------------

    async def start_session(
        self, evse_id: int, id_token: str, *, plug_in_first: bool = False, token_type: str = "ISO14443"
    ) -> str | None:
        """A driver presents ``id_token`` at ``evse_id`` and plugs in (or plugs in first), and the EV
        charges. Transaction events follow TxCtrlr.TxStartPoint. Returns the transaction id, or None when
        the EVSE is busy or the token is not accepted. Works offline when the device model allows it."""
        evse = self.evses.get(evse_id)
        if evse is None or self.station_inoperative or not evse.outlet.is_free_for(id_token):
            return None
        evse.outlet.claimed = True
        token = {"id_token": id_token, "type": token_type}
        return await self._run_session(evse, token, authorize=True, plug_in_first=plug_in_first)

    async def plug_in(self, evse_id: int) -> bool:
        """A driver plugs a car in without presenting a token: the CSMS may start charging with
        RequestStartTransaction (with EVConnected in TxStartPoint the transaction starts now).
        False when the EVSE is not free."""
        evse = self.evses.get(evse_id)
        if evse is None or self.station_inoperative or not evse.outlet.is_free_for():
            return False
        await self._plug_in(evse)
        return True

    async def unplug(self, evse_id: int) -> None:
        """The driver takes the cable out, ending a running transaction (EVDisconnected)."""
        evse = self.evses.get(evse_id)
        if evse is None or evse.outlet.ev is None or evse.outlet.claimed:
            return
        if evse.outlet.transaction_id is not None and evse.outlet.id_tag is not None:
            await self.stop_session(evse_id, "EVDisconnected")
        else:
            await self._take_cable_out(evse)

    async def _run_session(
        self,
        evse: Evse,
        token: dict[str, Any],
        *,
        authorize: bool,
        plug_in_first: bool = False,
        remote_start_id: int | None = None,
    ) -> str | None:
        """Authorize, plug in, charge, on an EVSE the caller claimed."""
        c = evse.outlet
        try:
            if plug_in_first:
                await self._plug_in(evse)
            info = await self._authorize(token) if authorize else {"status": "Accepted"}
            if info.get("status") != "Accepted":
                logger.info(
                    "%s: idToken %s refused (%s)", self.station_id, token["id_token"], info.get("status")
                )
                if c.ev is not None:
                    c.claimed = False
                    await self._take_cable_out(evse)
                return None
            trigger = "Authorized" if remote_start_id is None else "RemoteStart"
            await self._authorized(evse, token, trigger, remote_start_id)
            if c.ev is None:
                await self._plug_in(evse)
            await self._close_power_path(evse)
            if self.is_online:
                with contextlib.suppress(TimeoutError):
                    await self.wait_transaction_events_delivered(self._response_timeout)
            return c.transaction_id
        finally:
            c.claimed = False

    async def _authorized(
        self, evse: Evse, token: dict[str, Any], trigger: str, remote_start_id: int | None
    ) -> None:
        c = evse.outlet
        c.id_tag, evse.id_token, evse.token_to_report = token["id_token"], token, True
        evse.remote_start_id = remote_start_id
        if c.reservation is not None and c.reservation.id_tag == token["id_token"]:
            evse.reservation_to_report = c.reservation.reservation_id
            self.reservations.drop(c)
        if c.status == "Reserved":
            c.status = "Available"
        await self._tx_point_reached(evse, "Authorized", trigger)

    async def _plug_in(self, evse: Evse) -> None:
        c = evse.outlet
        c.ev = SimulatedEV.random(self.rng)
        c.last_update = time.monotonic()
        await self._set_status(evse, "Preparing")
        await self._tx_point_reached(evse, "EVConnected")

    async def _close_power_path(self, evse: Evse) -> None:
        """The EV starts drawing power: the transaction starts now at the latest."""
        c = evse.outlet
        c.status = self.charging.next_status(c)
        await self._tx_point_reached(evse, "PowerPathClosed", start_anyway=True)
        await self._report_statuses(evse)
        self.charging.update_power(c)
        c.meter_task = asyncio.create_task(
            self._meter_loop(evse), name=f"{self.station_id}:meter{evse.evse_id}"
        )

    async def _tx_point_reached(
        self, evse: Evse, point: str, trigger: str | None = None, *, start_anyway: bool = False
    ) -> None:
        """A TxStartPoint condition became true: start the transaction when it is one of the configured
        start points, or report it in an Updated event when the transaction runs already. ``trigger``
        overrides the point's usual triggerReason (RemoteStart for an authorization by the CSMS)."""
        trigger = trigger or TX_POINT_TRIGGERS[point]
        c = evse.outlet
        if c.transaction_id is not None:
            self._emit(evse, "Updated", trigger)
        elif start_anyway or point in self._points("TxStartPoint"):
            self._start_transaction(evse, trigger)

    def _start_transaction(self, evse: Evse, trigger: str) -> None:
        c = evse.outlet
        self.charging.advance(c)
        c.transaction_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        c.meter_start, c.tx_started_at = c.energy_register, utc_now()
        evse.seq_no = 0
        logger.info(
            "%s: transaction %s started on EVSE %s (%s, register %s Wh)",
            self.station_id,
            c.transaction_id,
            evse.evse_id,
            trigger,
            c.meter_start,
        )
        begin = self._meter_value(c, "Transaction.Begin", self._measurands("TxStartedMeasurands"))
        self._emit(evse, "Started", trigger, meter_values=[begin])

    async def stop_session(self, evse_id: int, reason: str = "Local") -> None:
        """End the session on ``evse_id`` for ``reason`` (a 2.0.1 stoppedReason: Local, Remote,
        EVDisconnected, DeAuthorized, ImmediateReset, Other, ...). Local, Remote and DeAuthorized end the
        authorization: the transaction ends then if TxCtrlr.TxStopPoint has Authorized (or
        PowerPathClosed), else when the driver takes the cable out a little later."""
        evse = self.evses.get(evse_id)
        if evse is None or evse.outlet.transaction_id is None or evse.outlet.stopping:
            return
        c = evse.outlet
        c.stopping = True
        try:
            await self._stop_metering(c)
            self.charging.advance(c)
            c.power_w = 0.0
            trigger = STOP_TRIGGERS.get(reason, "AbnormalCondition")
            if reason == "EVDisconnected":
                c.ev = None
            ends_with_authorization = bool(self._points("TxStopPoint") & {"Authorized", "PowerPathClosed"})
            if reason in DEAUTHORIZING_REASONS and c.ev is not None and not ends_with_authorization:
                c.id_tag, c.status = None, "Preparing"
                evse.stop_reason_at_unplug = reason
                self._emit(evse, "Updated", trigger, id_token=evse.id_token if reason == "Local" else None)
            else:
                self._end_transaction(evse, trigger, reason)
            await self._report_statuses(evse)
        finally:
            c.stopping = False
        if c.ev is None:
            await self._settle_idle(evse)
        else:
            self._spawn(self._unplug_later(evse), f"unplug{evse_id}")
        if self.is_online:
            with contextlib.suppress(TimeoutError):
                await self.wait_transaction_events_delivered(self._response_timeout)

    def _end_transaction(self, evse: Evse, trigger: str, reason: str) -> None:
        c = evse.outlet
        end = self._meter_value(c, "Transaction.End", self._measurands("TxEndedMeasurands"))
        c.status = "Finishing" if c.ev is not None else "Available"
        logger.info(
            "%s: transaction %s ended on EVSE %s (%s, %s Wh)",
            self.station_id,
            c.transaction_id,
            evse.evse_id,
            reason,
            c.energy_register - c.meter_start,
        )
        token = evse.id_token if reason == "Local" else None
        self._emit(
            evse,
            "Ended",
            trigger,
            meter_values=[self._begin_reading(c), end],
            stopped_reason=reason,
            id_token=token,
        )
        c.transaction_id, c.id_tag, c.tx_started_at = None, None, None
        evse.id_token, evse.token_to_report, evse.stop_reason_at_unplug = None, False, None
        c.profiles = {k: p for k, p in c.profiles.items() if p.get("charging_profile_purpose") != "TxProfile"}
        self._transaction_ended.set()
        if self._reset_when_idle and not self.active_transactions():
            self._spawn(self._reboot_for("RemoteReset"), "reset-on-idle")

    async def _unplug_later(self, evse: Evse) -> None:
        """The driver takes the cable out after a short while."""
        c = evse.outlet
        c.claimed = True  # nobody can start here until the cable is out
        try:
            await asyncio.sleep(self.unplug_delay)
        finally:
            c.claimed = False
        await self._take_cable_out(evse)

    async def _take_cable_out(self, evse: Evse) -> None:
        c = evse.outlet
        if c.transaction_id is not None and not c.stopping:  # it ends when the cable is out
            await self._stop_metering(c)
            self.charging.advance(c)
            c.power_w, c.ev = 0.0, None
            self._end_transaction(evse, "EVCommunicationLost", evse.stop_reason_at_unplug or "EVDisconnected")
        c.ev = None
        await self._settle_idle(evse)

    async def _settle_idle(self, evse: Evse) -> None:
        """An EVSE without a car shows Available, Reserved, or Unavailable (also when a ChangeAvailability
        waited for its session to end)."""
        c = evse.outlet
        if c.scheduled_availability is not None:
            c.inoperative = c.scheduled_availability == "Inoperative"
            c.scheduled_availability = None
        if c.status != "Faulted":
            c.status = "Unavailable" if c.inoperative else "Reserved" if c.reservation else "Available"
        await self._report_statuses(evse)

    async def _reboot_for(self, reason: str) -> None:
        self._reset_when_idle = False
        self._boot_reason = reason
        if self.is_online:  # let the last events leave; what does not is sent after the reboot
            with contextlib.suppress(TimeoutError):
                await self.wait_transaction_events_delivered(self._response_timeout)
        await self._reboot()

    # ------------------------------------------------------------------------------------------------
    # Handlers: provisioning and the device model
    # ------------------------------------------------------------------------------------------------

    def _check_items(self, instance: str, items: list[Any]) -> None:
        limit = self.device_model.integer("DeviceDataCtrlr", "ItemsPerMessage", instance, default=16)
        if len(items) > limit:
            raise OccurenceConstraintViolationError(description=f"at most {limit} items per {instance}")

    @_on(Action.get_variables)
    def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.GetVariables:
        self._check_items("GetVariables", get_variable_data)
        return call_result.GetVariables(
            get_variable_result=[self.device_model.get(i) for i in get_variable_data]
        )

    @_on(Action.set_variables)
    def on_set_variables(
        self, set_variable_data: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.SetVariables:
        self._check_items("SetVariables", set_variable_data)
        return call_result.SetVariables(
            set_variable_result=[self.device_model.set(i) for i in set_variable_data]
        )

    @_on(Action.get_base_report)
    def on_get_base_report(
        self, request_id: int, report_base: str, call_unique_id: str, **kwargs: Any
    ) -> call_result.GetBaseReport:
        return self._report(request_id, self.device_model.base_report(report_base), call_unique_id)

    @_on(Action.get_report)
    def on_get_report(
        self,
        request_id: int,
        call_unique_id: str,
        component_variable: list[dict[str, Any]] | None = None,
        component_criteria: list[str] | None = None,
        **kwargs: Any,
    ) -> call_result.GetReport:
        self._check_items("GetReport", component_variable or [])
        variables = self.device_model.custom_report(component_variable, component_criteria)
        return self._report(request_id, variables, call_unique_id, result=call_result.GetReport)

    def _report(
        self,
        request_id: int,
        variables: list[Variable],
        unique_id: str,
        result: Any = call_result.GetBaseReport,
    ) -> Any:
        if not variables:
            return result(status="EmptyResultSet")
        self._defer(unique_id, lambda: self._send_report(request_id, variables))
        return result(status="Accepted")

    async def _send_report(self, request_id: int, variables: list[Variable]) -> None:
        """NotifyReport in parts of ``report_items_per_message`` items: seqNo 0.., tbc on all but the last.
        Allowed while the registration is Pending, as the CSMS may ask for a report before accepting."""
        size = self.report_items_per_message
        parts = [variables[i : i + size] for i in range(0, len(variables), size)]
        generated_at = iso(utc_now())
        for seq_no, part in enumerate(parts):
            payload = call.NotifyReport(
                request_id=request_id,
                generated_at=generated_at,
                seq_no=seq_no,
                report_data=[v.report_json() for v in part],
                tbc=seq_no < len(parts) - 1,
            )
            try:
                await self._request(payload, need_online=False)
            except (OCPPError, TimeoutError) as exc:
                logger.warning(
                    "%s: NotifyReport %s part %s failed: %r", self.station_id, request_id, seq_no, exc
                )

    @_on(Action.reset)
    def on_reset(
        self, type: str, call_unique_id: str, evse_id: int | None = None, **kwargs: Any
    ) -> call_result.Reset:
        if evse_id is not None:
            return call_result.Reset(status="Rejected")  # resetting one EVSE is not supported
        if type == "OnIdle" and self.active_transactions():
            self._reset_when_idle = True
            return call_result.Reset(status="Scheduled")
        self._defer(call_unique_id, lambda: self._reset_now(type))
        return call_result.Reset(status="Accepted")

    async def _reset_now(self, kind: str) -> None:
        logger.info("%s: %s reset", self.station_id, kind)
        for evse_id in list(self.active_transactions()):
            await self.stop_session(evse_id, "ImmediateReset")
        await self._reboot_for("RemoteReset")

    @_on(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None, **kwargs: Any
    ) -> call_result.DataTransfer:
        if vendor_id == self.vendor and message_id == "echo":  # our own vendor: echoes data back
            return call_result.DataTransfer(status="Accepted", data=data)
        return call_result.DataTransfer(status="UnknownVendorId")

    # ------------------------------------------------------------------------------------------------
    # Handlers: transactions
    # ------------------------------------------------------------------------------------------------

    @_on(Action.request_start_transaction)
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        call_unique_id: str,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> call_result.RequestStartTransaction:
        value = id_token["id_token"]
        chosen = self.free_evse(value) if evse_id is None else evse_id
        evse = self.evses.get(chosen) if chosen is not None else None
        if evse is None or self.station_inoperative:
            return call_result.RequestStartTransaction(status="Rejected")
        c = evse.outlet
        # F02: a car plugged in without a token waits for the CSMS to start it remotely.
        waiting = c.ev is not None and c.id_tag is None and not (c.claimed or c.stopping)
        if not (waiting or c.is_free_for(value)):
            return call_result.RequestStartTransaction(status="Rejected")
        if charging_profile and charging_profile.get("charging_profile_purpose") == "TxProfile":
            install_profile(c.profiles, profile_from_v201(charging_profile))
        c.claimed = True
        authorize = self.device_model.boolean("AuthCtrlr", "AuthorizeRemoteStart")

        async def start() -> None:
            await self._run_session(evse, id_token, authorize=authorize, remote_start_id=remote_start_id)

        self._defer(call_unique_id, start)
        return call_result.RequestStartTransaction(status="Accepted", transaction_id=c.transaction_id)

    @_on(Action.request_stop_transaction)
    def on_request_stop_transaction(
        self, transaction_id: str, call_unique_id: str, **kwargs: Any
    ) -> call_result.RequestStopTransaction:
        for evse_id, running in self.active_transactions().items():
            if running == transaction_id and not self.evses[evse_id].outlet.stopping:
                self._defer(call_unique_id, functools.partial(self.stop_session, evse_id, "Remote"))
                return call_result.RequestStopTransaction(status="Accepted")
        return call_result.RequestStopTransaction(status="Rejected")

    @_on(Action.get_transaction_status)
    def on_get_transaction_status(
        self, transaction_id: str | None = None, **kwargs: Any
    ) -> call_result.GetTransactionStatus:
        queued = [
            q
            for q in self._outbox
            if transaction_id is None or q.payload.transaction_info["transaction_id"] == transaction_id
        ]
        ongoing = None if transaction_id is None else transaction_id in self.active_transactions().values()
        return call_result.GetTransactionStatus(messages_in_queue=bool(queued), ongoing_indicator=ongoing)

    # ------------------------------------------------------------------------------------------------
    # Handlers: authorization lists
    # ------------------------------------------------------------------------------------------------

    @_on(Action.get_local_list_version)
    def on_get_local_list_version(self, **kwargs: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(version_number=self.authorization.local_list_version)

    @_on(Action.send_local_list)
    def on_send_local_list(
        self,
        version_number: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> call_result.SendLocalList:
        entries = [
            (e["id_token"]["id_token"], e.get("id_token_info")) for e in local_authorization_list or []
        ]
        status = self.authorization.apply_local_list(
            version_number,
            update_type,
            entries,
            max_entries_per_message=self.device_model.integer("LocalAuthListCtrlr", "ItemsPerMessage"),
            max_list_length=int(self.device_model.find("LocalAuthListCtrlr", "Entries").max_limit or 0),
        )
        logger.info("%s: local list v%s (%s): %s", self.station_id, version_number, update_type, status)
        return call_result.SendLocalList(status=status)

    @_on(Action.clear_cache)
    def on_clear_cache(self, **kwargs: Any) -> call_result.ClearCache:
        self.authorization.cache.clear()
        return call_result.ClearCache(status="Accepted")

    # ------------------------------------------------------------------------------------------------
    # Handlers: availability and connectors
    # ------------------------------------------------------------------------------------------------

    @_on(Action.change_availability)
    def on_change_availability(
        self, operational_status: str, call_unique_id: str, evse: dict[str, Any] | None = None, **kwargs: Any
    ) -> call_result.ChangeAvailability:
        # A connector of an EVSE is addressed like its EVSE: the simulated EVSE has one outlet.
        evse_id = int((evse or {}).get("id", 0))
        if evse_id != 0 and evse_id not in self.evses:
            return call_result.ChangeAvailability(status="Rejected")
        whole_station = evse_id == 0
        targets = list(self.evses.values()) if whole_station else [self.evses[evse_id]]
        scheduled = [t.outlet.change_availability(operational_status == "Operative") for t in targets]
        if whole_station:
            self.station_inoperative = operational_status == "Inoperative"

        async def notify() -> None:
            for target in targets:
                status = target.outlet.status_after_availability_change()
                if status is not None:
                    target.outlet.status = status
                await self._report_statuses(target)

        self._defer(call_unique_id, notify)
        return call_result.ChangeAvailability(status="Scheduled" if any(scheduled) else "Accepted")

    @_on(Action.unlock_connector)
    def on_unlock_connector(
        self, evse_id: int, connector_id: int, call_unique_id: str, **kwargs: Any
    ) -> call_result.UnlockConnector:
        evse = self.evses.get(evse_id)
        if evse is None or not 1 <= connector_id <= evse.connector_count:
            return call_result.UnlockConnector(status="UnknownConnector")
        c = evse.outlet
        if c.transaction_id is not None and c.id_tag is not None:
            return call_result.UnlockConnector(status="OngoingAuthorizedTransaction")
        if c.ev is not None and connector_id == evse.plugged_connector and not c.claimed:
            self._defer(call_unique_id, lambda: self._take_cable_out(evse))
        return call_result.UnlockConnector(status="Unlocked")

    # ------------------------------------------------------------------------------------------------
    # Handlers: remote trigger
    # ------------------------------------------------------------------------------------------------

    @_on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, call_unique_id: str, evse: dict[str, Any] | None = None, **kwargs: Any
    ) -> call_result.TriggerMessage:
        evse_id = (evse or {}).get("id")
        if evse_id is not None and evse_id not in self.evses:
            return call_result.TriggerMessage(status="Rejected")
        targets = [self.evses[evse_id]] if evse_id is not None else list(self.evses.values())
        if requested_message == "BootNotification":
            if self.registration_status == "Accepted":
                return call_result.TriggerMessage(status="Rejected")  # F06.FR.17: already accepted
            self._boot_reason = "Triggered"
            self._retry_boot_now()
            return call_result.TriggerMessage(status="Accepted")
        if requested_message == "TransactionEvent" and not any(t.outlet.transaction_id for t in targets):
            return call_result.TriggerMessage(status="Rejected")
        senders: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "Heartbeat": lambda: self._try_send(call.Heartbeat()),
            "StatusNotification": lambda: self._triggered_statuses(targets),
            "MeterValues": lambda: self._triggered_meter_values(targets),
            "TransactionEvent": lambda: self._triggered_transaction_events(targets),
            "LogStatusNotification": lambda: self._try_send(
                call.LogStatusNotification(status=self.log_status, request_id=self.log_request_id)
            ),
            "FirmwareStatusNotification": lambda: self._try_send(
                call.FirmwareStatusNotification(
                    status=self.firmware_status, request_id=self.firmware_request_id
                )
            ),
        }
        sender = senders.get(requested_message)
        if sender is None:
            return call_result.TriggerMessage(status="NotImplemented")
        self._defer(call_unique_id, sender)
        return call_result.TriggerMessage(status="Accepted")

    async def _triggered_statuses(self, targets: list[Evse]) -> None:
        for target in targets:
            await self._report_statuses(target, every=True)

    async def _triggered_meter_values(self, targets: list[Evse]) -> None:
        for target in targets:
            reading = self._meter_value(target.outlet, "Trigger", self._measurands("TxUpdatedMeasurands"))
            await self._try_send(call.MeterValues(evse_id=target.evse_id, meter_value=[reading]))

    async def _triggered_transaction_events(self, targets: list[Evse]) -> None:
        for target in targets:
            if target.outlet.transaction_id is not None:
                reading = self._meter_value(target.outlet, "Trigger", self._measurands("TxUpdatedMeasurands"))
                self._emit(target, "Updated", "Trigger", meter_values=[reading])

    # ------------------------------------------------------------------------------------------------
    # Handlers: diagnostics and firmware
    # ------------------------------------------------------------------------------------------------

    @_on(Action.get_log)
    def on_get_log(
        self, log: dict[str, Any], log_type: str, request_id: int, call_unique_id: str, **kwargs: Any
    ) -> call_result.GetLog:
        status = "Accepted"
        if self._upload is not None and not self._upload.done():
            self._upload.cancel()  # a new request replaces the running upload
            status = "AcceptedCanceled"
        filename = f"{log_type}-{self.station_id}-{utc_now().strftime('%Y%m%dT%H%M%SZ')}.log"

        async def upload() -> None:
            self._upload = asyncio.current_task()
            # A small generated log really goes to log["remote_location"] (HTTP PUT of the raw file
            # to remoteLocation/filename); the notifications say how that went.
            await self._walk_statuses("log", request_id, ["Uploading"])
            content = uploads.generate_log(self.station_id, log_type)
            ok = await uploads.upload(log["remote_location"], filename, content, multipart=False)
            await self._walk_statuses("log", request_id, ["Uploaded" if ok else "UploadFailure"])
            self.log_status, self.log_request_id = "Idle", None

        self._defer(call_unique_id, upload)
        return call_result.GetLog(status=status, filename=filename)

    @_on(Action.update_firmware)
    def on_update_firmware(
        self, firmware: dict[str, Any], request_id: int, call_unique_id: str, **kwargs: Any
    ) -> call_result.UpdateFirmware:
        if self._firmware_update is not None and not self._firmware_update.done():
            return call_result.UpdateFirmware(status="Rejected")
        self._defer(call_unique_id, lambda: self._update_firmware(firmware, request_id))
        return call_result.UpdateFirmware(status="Accepted")

    async def _update_firmware(self, firmware: dict[str, Any], request_id: int) -> None:
        """Simulated: nothing is downloaded. The station reports each step, waits until no transaction runs,
        reboots, and reports Installed (with a new firmware version) after booting again."""
        self._firmware_update = asyncio.current_task()
        start = parse_iso(firmware.get("retrieve_date_time"))
        if start is not None and start > utc_now():
            await self._walk_statuses("firmware", request_id, ["DownloadScheduled"])
            await asyncio.sleep(min((start - utc_now()).total_seconds(), 3600.0))
        steps = ["Downloading", "Downloaded", *(["SignatureVerified"] if firmware.get("signature") else [])]
        await self._walk_statuses("firmware", request_id, steps)
        while self.active_transactions():  # installing waits until nobody is charging
            self._transaction_ended.clear()
            await self._transaction_ended.wait()
        await self._walk_statuses("firmware", request_id, ["Installing", "InstallRebooting"])
        major, _, minor = self.firmware_version.rpartition(".")
        if minor.isdigit():
            self.firmware_version = f"{major}.{int(minor) + 1}" if major else str(int(minor) + 1)
        await self._reboot_for("FirmwareUpdate")

    async def _walk_statuses(self, kind: str, request_id: int, statuses: list[str]) -> None:
        """Report progress of a log upload or firmware update, one status every ``progress_delay`` s."""
        for status in statuses:
            await asyncio.sleep(self.progress_delay)
            if kind == "log":
                self.log_status, self.log_request_id = status, request_id
                await self._try_send(call.LogStatusNotification(status=status, request_id=request_id))
            else:
                self.firmware_status, self.firmware_request_id = status, request_id
                await self._try_send(call.FirmwareStatusNotification(status=status, request_id=request_id))

    # ------------------------------------------------------------------------------------------------
    # Handlers: reservations
    # ------------------------------------------------------------------------------------------------

    @_on(Action.reserve_now)
    def on_reserve_now(
        self,
        id: int,
        expiry_date_time: str,
        id_token: dict[str, Any],
        call_unique_id: str,
        evse_id: int | None = None,
        **kwargs: Any,
    ) -> call_result.ReserveNow:
        expiry = parse_iso(expiry_date_time)
        if expiry is None or expiry <= utc_now() or (evse_id is not None and evse_id not in self.evses):
            return call_result.ReserveNow(status="Rejected")
        # Without an EVSE the reservation is for any EVSE: the simulator holds the first free one.
        chosen = evse_id if evse_id is not None else self.free_evse()
        if chosen is None:
            return call_result.ReserveNow(status="Occupied")
        evse = self.evses[chosen]
        refusal = self.reservations.refusal(evse.outlet, id, self.station_inoperative)
        if refusal is not None:
            return call_result.ReserveNow(status=refusal)
        reservation = Reservation(id, id_token["id_token"], expiry)
        moved = self.reservations.place((e.outlet for e in self.evses.values()), evse.outlet, reservation)

        async def show() -> None:
            for outlet in [*moved, evse.outlet]:
                if outlet.ev is None:
                    await self._settle_idle(self.evses[outlet.connector_id])

        self._defer(call_unique_id, show)
        return call_result.ReserveNow(status="Accepted")

    @_on(Action.cancel_reservation)
    def on_cancel_reservation(
        self, reservation_id: int, call_unique_id: str, **kwargs: Any
    ) -> call_result.CancelReservation:
        outlet = self.reservations.cancel((e.outlet for e in self.evses.values()), reservation_id)
        if outlet is None:
            return call_result.CancelReservation(status="Rejected")
        if outlet.ev is None and outlet.status == "Reserved":
            self._defer(call_unique_id, lambda: self._settle_idle(self.evses[outlet.connector_id]))
        return call_result.CancelReservation(status="Accepted")

    async def _reservation_expired(self, c: Connector[Any], reservation: Reservation) -> None:
        await self._try_send(
            call.ReservationStatusUpdate(
                reservation_id=reservation.reservation_id, reservation_update_status="Expired"
            )
        )
        if c.ev is None and c.status == "Reserved":
            await self._settle_idle(self.evses[c.connector_id])

    # ------------------------------------------------------------------------------------------------
    # Handlers: smart charging
    # ------------------------------------------------------------------------------------------------

    @_on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **kwargs: Any
    ) -> call_result.SetChargingProfile:
        profile = profile_from_v201(charging_profile)
        target = self._profile_store(evse_id, profile)
        if target is None:
            return call_result.SetChargingProfile(status="Rejected")
        install_profile(target, profile)
        self.charging.follow_new_limits(e.outlet for e in self.evses.values())
        return call_result.SetChargingProfile(status="Accepted")

    def _profile_store(self, evse_id: int, profile: dict[str, Any]) -> dict[int, dict[str, Any]] | None:
        """Where a SetChargingProfile installs ``profile`` (1.6 shape), None when it must be rejected."""
        model = self.device_model
        periods = profile["charging_schedule"].get("charging_schedule_period") or []
        too_big = int(profile.get("stack_level", 0)) > model.integer(
            "SmartChargingCtrlr", "ProfileStackLevel"
        )
        if too_big or len(periods) > model.integer("SmartChargingCtrlr", "PeriodsPerSchedule"):
            return None
        if evse_id != 0 and evse_id not in self.evses:
            return None
        purpose = profile["charging_profile_purpose"]
        if purpose == STATION_MAX_PROFILE:
            return self.station_profiles if evse_id == 0 else None
        if purpose == "TxDefaultProfile":
            return self.station_profiles if evse_id == 0 else self.evses[evse_id].outlet.profiles
        if purpose == "TxProfile" and evse_id != 0:
            c = self.evses[evse_id].outlet
            running = c.transaction_id is not None and profile.get("transaction_id") in (
                None,
                c.transaction_id,
            )
            return c.profiles if running else None
        return None  # ChargingStationExternalConstraints are set by external systems, not by the CSMS

    @_on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> call_result.ClearChargingProfile:
        criteria = charging_profile_criteria or {}
        purpose = criteria.get("charging_profile_purpose")
        stores = [(0, self.station_profiles), *((n, e.outlet.profiles) for n, e in self.evses.items())]
        removed = clear_profiles(
            stores,
            charging_profile_id,
            criteria.get("evse_id"),
            purpose_from_v201(purpose) if purpose else None,
            criteria.get("stack_level"),
        )
        self.charging.follow_new_limits(e.outlet for e in self.evses.values())
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @_on(Action.get_charging_profiles)
    def on_get_charging_profiles(
        self,
        request_id: int,
        charging_profile: dict[str, Any],
        call_unique_id: str,
        evse_id: int | None = None,
        **kwargs: Any,
    ) -> call_result.GetChargingProfiles:
        purpose = charging_profile.get("charging_profile_purpose")
        stack_level = charging_profile.get("stack_level")
        ids = charging_profile.get("charging_profile_id") or []
        stores = [(0, self.station_profiles), *((n, e.outlet.profiles) for n, e in self.evses.items())]
        found = []
        for number, store in stores:
            chosen = [
                p
                for p in store.values()
                if (evse_id is None or number == evse_id)
                and (purpose is None or p["charging_profile_purpose"] == purpose_from_v201(purpose))
                and (stack_level is None or p.get("stack_level") == stack_level)
                and (not ids or p["charging_profile_id"] in ids)
            ]
            if chosen:
                found.append((number, chosen))
        if not found:
            return call_result.GetChargingProfiles(status="NoProfiles")

        async def report() -> None:
            for index, (number, chosen) in enumerate(found):
                await self._try_send(
                    call.ReportChargingProfiles(
                        request_id=request_id,
                        charging_limit_source="CSO",
                        evse_id=number,
                        charging_profile=[_profile_as_v201(p) for p in chosen],
                        tbc=index < len(found) - 1,
                    )
                )

        self._defer(call_unique_id, report)
        return call_result.GetChargingProfiles(status="Accepted")

    @_on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **kwargs: Any
    ) -> call_result.GetCompositeSchedule:
        if evse_id != 0 and evse_id not in self.evses:
            return call_result.GetCompositeSchedule(status="Rejected")
        unit, phases = charging_rate_unit or "W", 3
        outlet = self.evses[evse_id].outlet if evse_id else None
        limit_w = self.charging.composite_limit_w(outlet, len(self.evses), phases)
        limit = limit_w if unit == "W" else limit_w / (NOMINAL_VOLTAGE * phases)
        schedule = {
            "evse_id": evse_id,
            "duration": duration,
            "schedule_start": iso(utc_now()),
            "charging_rate_unit": unit,
            "charging_schedule_period": [
                {"start_period": 0, "limit": round(limit, 1), "number_phases": phases}
            ],
        }
        return call_result.GetCompositeSchedule(status="Accepted", schedule=schedule)


_V201_PROFILE_FIELDS = (
    "id",
    "stack_level",
    "charging_profile_kind",
    "recurrency_kind",
    "valid_from",
    "valid_to",
    "transaction_id",
)


def _profile_as_v201(profile: dict[str, Any]) -> dict[str, Any]:
    """An installed profile (kept in the 1.6 shape, see ``profile_from_v201``) as 2.0.1 reports it."""
    out = {k: profile[k] for k in _V201_PROFILE_FIELDS if profile.get(k) is not None}
    purpose = profile["charging_profile_purpose"]
    out["charging_profile_purpose"] = (
        "ChargingStationMaxProfile" if purpose == STATION_MAX_PROFILE else purpose
    )
    out["charging_schedule"] = [profile["charging_schedule"]]
    return out


def _sampled_value(sample: Sample, context: str) -> dict[str, Any]:
    """A reading as an OCPP 2.0.1 SampledValue: a number, with its unit in unitOfMeasure."""
    return {
        "value": sample.rounded,
        "context": context,
        "measurand": sample.measurand,
        "phase": sample.phase,
        "location": sample.location,
        "unit_of_measure": {"unit": sample.unit},
    }
