"""The OCPP 2.0.1 simulator against a CSMS built in the test on the `ocpp` package (the reference peer, which
validates every message against the official 2.0.1 schemas), over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import websockets
from ocpp.exceptions import NotImplementedError as OCPPNotImplemented
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from stekker.sim.fleet import run_fleet, version_of
from stekker.sim.station201 import SimulatedStation201
from tests.observe import eventually
from tests.peers import Received, now_iso, typed_on

TOKEN = "04AABBCCDDEEFF"


@dataclass
class Csms:
    """Records every message stations send. Tokens starting with BLOCKED are refused by Authorize, those
    starting with UNKNOWN are answered Invalid in TransactionEvent; everything else is accepted."""

    messages: list[Received] = field(default_factory=list)
    connections: dict[str, CsmsChargePoint] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    refuse_connections: bool = False

    def of(self, station_id: str, action: str) -> list[dict[str, Any]]:
        return [m.payload for m in self.messages if m.station_id == station_id and m.action == action]

    def events(self, station_id: str, transaction_id: str) -> list[dict[str, Any]]:
        """The TransactionEvents of one transaction, in the order they arrived."""
        return [
            p
            for p in self.of(station_id, "TransactionEvent")
            if p["transaction_info"]["transaction_id"] == transaction_id
        ]

    async def disconnect(self, station_id: str) -> None:
        """Drop the station's connection and refuse new ones until ``refuse_connections`` is cleared."""
        self.refuse_connections = True
        await self.connections[station_id]._connection.close()


def _token_status(id_token: dict[str, Any] | None) -> str:
    value = (id_token or {}).get("id_token", "")
    return (
        "Blocked" if value.startswith("BLOCKED") else "Invalid" if value.startswith("UNKNOWN") else "Accepted"
    )


class CsmsChargePoint(ChargePoint):  # type: ignore[misc]
    def __init__(self, station_id: str, ws: ServerConnection, csms: Csms) -> None:
        super().__init__(station_id, ws)
        self.csms = csms

    def _record(self, action: str, payload: dict[str, Any]) -> None:
        self.csms.messages.append(Received(self.id, action, payload))

    @typed_on(Action.boot_notification)
    def on_boot(self, **kw: Any) -> call_result.BootNotification:
        self._record("BootNotification", kw)
        return call_result.BootNotification(current_time=now_iso(), interval=300, status="Accepted")

    @typed_on(Action.status_notification)
    def on_status(self, **kw: Any) -> call_result.StatusNotification:
        self._record("StatusNotification", kw)
        return call_result.StatusNotification()

    @typed_on(Action.heartbeat)
    def on_heartbeat(self, **kw: Any) -> call_result.Heartbeat:
        self._record("Heartbeat", kw)
        return call_result.Heartbeat(current_time=now_iso())

    @typed_on(Action.authorize)
    def on_authorize(self, **kw: Any) -> call_result.Authorize:
        self._record("Authorize", kw)
        status = "Blocked" if kw["id_token"]["id_token"].startswith("BLOCKED") else "Accepted"
        return call_result.Authorize(id_token_info={"status": status})

    @typed_on(Action.transaction_event)
    def on_transaction_event(self, **kw: Any) -> call_result.TransactionEvent:
        self._record("TransactionEvent", kw)
        if kw.get("id_token") is None:
            return call_result.TransactionEvent()
        return call_result.TransactionEvent(id_token_info={"status": _token_status(kw["id_token"])})

    @typed_on(Action.notify_report)
    def on_notify_report(self, **kw: Any) -> call_result.NotifyReport:
        self._record("NotifyReport", kw)
        return call_result.NotifyReport()

    @typed_on(Action.meter_values)
    def on_meter_values(self, **kw: Any) -> call_result.MeterValues:
        self._record("MeterValues", kw)
        return call_result.MeterValues()

    @typed_on(Action.log_status_notification)
    def on_log_status(self, **kw: Any) -> call_result.LogStatusNotification:
        self._record("LogStatusNotification", kw)
        return call_result.LogStatusNotification()

    @typed_on(Action.firmware_status_notification)
    def on_firmware_status(self, **kw: Any) -> call_result.FirmwareStatusNotification:
        self._record("FirmwareStatusNotification", kw)
        return call_result.FirmwareStatusNotification()


@pytest.fixture
async def csms() -> AsyncIterator[tuple[Csms, str]]:
    state = Csms()

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        station_id = ws.request.path.rstrip("/").split("/")[-1]
        state.headers[station_id] = dict(ws.request.headers)
        cp = CsmsChargePoint(station_id, ws, state)
        state.connections[station_id] = cp
        with contextlib.suppress(websockets.ConnectionClosed):
            await cp.start()

    def admission(connection: ServerConnection, request: Request) -> Response | None:
        if state.refuse_connections:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "down for the test\n")
        return None

    server: Server = await serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        process_request=admission,
    )
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        yield state, f"ws://127.0.0.1:{port}/ocpp"
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def running(station: SimulatedStation201) -> AsyncIterator[SimulatedStation201]:
    """Run the station, reconnecting quickly after the CSMS drops it, and wait until it is online."""

    async def keep_running() -> None:
        while True:
            try:
                await station.run()
                return
            except Exception:
                await asyncio.sleep(0.05)

    task = asyncio.create_task(keep_running())
    try:
        await station.wait_online(timeout=10)
        yield station
    finally:
        await station.close()
        await asyncio.wait_for(task, 5)


def make_station(base_url: str, station_id: str = "SIM201", **options: Any) -> SimulatedStation201:
    defaults: dict[str, Any] = {"tx_updated_interval": 1, "unplug_delay": 0.05, "progress_delay": 0.01}
    return SimulatedStation201(station_id, base_url, **{**defaults, **options})


def register_value(event: dict[str, Any], context: str) -> float:
    for meter_value in event["meter_value"]:
        for sv in meter_value["sampled_value"]:
            if sv["measurand"] == "Energy.Active.Import.Register" and sv["context"] == context:
                assert sv["unit_of_measure"]["unit"] == "Wh"
                return float(sv["value"])
    raise AssertionError(f"no {context} register reading in {event}")


async def test_boot_status_and_a_local_transaction(csms: tuple[Csms, str]) -> None:
    cs, url = csms
    async with running(make_station(url, password="a-password-of-20-chars")) as station:
        boot = cs.of("SIM201", "BootNotification")[0]
        assert boot["reason"] == "PowerUp"
        assert boot["charging_station"]["vendor_name"] == "Stekker"
        assert {"model", "serial_number", "firmware_version"} <= set(boot["charging_station"])
        assert cs.headers["SIM201"]["authorization"].startswith("Basic ")
        statuses = await eventually(
            lambda: len(cs.of("SIM201", "StatusNotification")) >= 2 and cs.of("SIM201", "StatusNotification")
        )
        assert {(s["evse_id"], s["connector_id"], s["connector_status"]) for s in statuses} == {
            (1, 1, "Available"),
            (2, 1, "Available"),
        }
        assert all(s["timestamp"].endswith("Z") for s in statuses)

        tx = await station.start_session(1, TOKEN)
        assert tx is not None and len(tx) == 36
        assert cs.of("SIM201", "Authorize") == [{"id_token": {"id_token": TOKEN, "type": "ISO14443"}}]
        started, plugged, charging = cs.events("SIM201", tx)[:3]
        assert started["event_type"] == "Started" and started["trigger_reason"] == "Authorized"
        assert started["seq_no"] == 0 and started["id_token"] == {"id_token": TOKEN, "type": "ISO14443"}
        assert started["evse"] == {"id": 1, "connector_id": 1}
        begin = register_value(started, "Transaction.Begin")
        assert begin > 0  # the station's lifetime register, never a meter starting at 0
        assert (plugged["trigger_reason"], plugged["transaction_info"]["charging_state"]) == (
            "CablePluggedIn",
            "EVConnected",
        )
        assert (charging["trigger_reason"], charging["transaction_info"]["charging_state"]) == (
            "ChargingStateChanged",
            "Charging",
        )
        assert "offline" not in started
        occupied = [s for s in cs.of("SIM201", "StatusNotification") if s["evse_id"] == 1]
        assert occupied[-1]["connector_status"] == "Occupied"

        periodic = await eventually(
            lambda: [e for e in cs.events("SIM201", tx) if e["trigger_reason"] == "MeterValuePeriodic"]
        )
        sampled = periodic[0]["meter_value"][0]["sampled_value"]
        assert {"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage"} <= {
            sv["measurand"] for sv in sampled
        }
        assert {sv["context"] for sv in sampled} == {"Sample.Periodic"}
        assert {sv["phase"] for sv in sampled if sv["measurand"] == "Voltage"} == {"L1-N", "L2-N", "L3-N"}

        await station.stop_session(1)
        events = cs.events("SIM201", tx)
        ended = events[-1]
        assert ended["event_type"] == "Ended" and ended["trigger_reason"] == "StopAuthorized"
        assert ended["transaction_info"]["stopped_reason"] == "Local"
        assert register_value(ended, "Transaction.Begin") == begin
        assert register_value(ended, "Transaction.End") >= begin
        assert [e["seq_no"] for e in events] == list(range(len(events)))
        assert [e["event_type"] for e in events].count("Started") == 1
        await eventually(
            lambda: (
                [s["connector_status"] for s in cs.of("SIM201", "StatusNotification") if s["evse_id"] == 1][
                    -1
                ]
                == "Available"
            )
        )
        assert station.evses[1].outlet.energy_register == register_value(ended, "Transaction.End")

        # A blocked token starts nothing; the register keeps counting across sessions on EVSE 1.
        assert await station.start_session(2, "BLOCKED-1") is None
        assert len(cs.of("SIM201", "TransactionEvent")) == len(events)
        second = await station.start_session(1, TOKEN, plug_in_first=True)
        assert second is not None and second != tx
        first_event = cs.events("SIM201", second)[0]
        assert (first_event["trigger_reason"], first_event["seq_no"]) == ("CablePluggedIn", 0)
        assert register_value(first_event, "Transaction.Begin") >= register_value(ended, "Transaction.End")


async def test_remote_start_and_stop(csms: tuple[Csms, str]) -> None:
    cs, url = csms
    async with running(make_station(url)) as station:
        cp = cs.connections["SIM201"]
        token = {"id_token": "04REMOTE000001", "type": "ISO14443"}
        answer = await cp.call(call.RequestStartTransaction(id_token=token, remote_start_id=42, evse_id=2))
        assert answer.status == "Accepted"
        started = (await eventually(lambda: cs.of("SIM201", "TransactionEvent")))[0]
        assert started["event_type"] == "Started" and started["trigger_reason"] == "RemoteStart"
        assert started["transaction_info"]["remote_start_id"] == 42
        assert started["evse"]["id"] == 2 and started["id_token"] == token
        assert cs.of("SIM201", "Authorize") == []  # AuthCtrlr.AuthorizeRemoteStart is false by default
        tx = started["transaction_info"]["transaction_id"]
        await eventually(lambda: station.evses[2].outlet.status == "Charging")

        busy = await cp.call(call.RequestStartTransaction(id_token=token, remote_start_id=43, evse_id=2))
        assert busy.status == "Rejected"
        unknown = await cp.call(call.RequestStopTransaction(transaction_id="no-such-transaction"))
        assert unknown.status == "Rejected"

        stop = await cp.call(call.RequestStopTransaction(transaction_id=tx))
        assert stop.status == "Accepted"
        ended = await eventually(lambda: [e for e in cs.events("SIM201", tx) if e["event_type"] == "Ended"])
        assert ended[0]["trigger_reason"] == "RemoteStop"
        assert ended[0]["transaction_info"]["stopped_reason"] == "Remote"

        # With AuthorizeRemoteStart true the station asks the CSMS first.
        authorize_first = call.SetVariables(
            set_variable_data=[
                {
                    "attributeValue": "true",
                    "component": {"name": "AuthCtrlr"},
                    "variable": {"name": "AuthorizeRemoteStart"},
                }
            ]
        )
        assert (await cp.call(authorize_first)).set_variable_result[0]["attribute_status"] == "Accepted"
        again = await cp.call(call.RequestStartTransaction(id_token=token, remote_start_id=44))
        assert again.status == "Accepted"
        await eventually(lambda: cs.of("SIM201", "Authorize"))
        second = await eventually(
            lambda: [
                e
                for e in cs.of("SIM201", "TransactionEvent")
                if e.get("transaction_info", {}).get("remote_start_id") == 44
            ]
        )
        assert second[0]["event_type"] == "Started" and second[0]["evse"]["id"] == 1
        assert cs.messages.index(next(m for m in cs.messages if m.action == "Authorize")) < cs.messages.index(
            next(m for m in cs.messages if m.payload is second[0])
        )


def _variable(component: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": name}, **extra}


async def test_device_model_and_reports(csms: tuple[Csms, str]) -> None:
    cs, url = csms
    async with running(make_station(url, report_items_per_message=10)) as station:
        cp = cs.connections["SIM201"]
        got = await cp.call(
            call.GetVariables(
                get_variable_data=[
                    _variable("OCPPCommCtrlr", "HeartbeatInterval"),
                    _variable("SecurityCtrlr", "BasicAuthPassword"),
                    _variable("NoSuchCtrlr", "Enabled"),
                    _variable("TxCtrlr", "NoSuchVariable"),
                    _variable("TxCtrlr", "StopTxOnInvalidId", attributeType="Target"),
                    {
                        "component": {"name": "EVSE", "evse": {"id": 2}},
                        "variable": {"name": "AvailabilityState"},
                    },
                ]
            )
        )
        results = [(r["attribute_status"], r.get("attribute_value")) for r in got.get_variable_result]
        assert results == [
            ("Accepted", "300"),
            ("Rejected", None),  # write-only
            ("UnknownComponent", None),
            ("UnknownVariable", None),
            ("NotSupportedAttributeType", None),
            ("Accepted", "Available"),
        ]

        changed = await cp.call(
            call.SetVariables(
                set_variable_data=[
                    _variable("ChargingStation", "Model", attributeValue="Hacked"),
                    _variable("NoSuchCtrlr", "Enabled", attributeValue="true"),
                    _variable("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="1"),
                    _variable("OCPPCommCtrlr", "NetworkConfigurationPriority", attributeValue="1,0"),
                    _variable("SampledDataCtrlr", "TxUpdatedInterval", attributeValue="abc"),
                ]
            )
        )
        statuses = [r["attribute_status"] for r in changed.set_variable_result]
        assert statuses == ["Rejected", "UnknownComponent", "Accepted", "RebootRequired", "Rejected"]
        assert station.model == "SimCharge AC22"
        # The new heartbeat interval applies at once.
        await eventually(lambda: len(cs.of("SIM201", "Heartbeat")) >= 2, timeout=5)

        report = await cp.call(call.GetBaseReport(request_id=7, report_base="FullInventory"))
        assert report.status == "Accepted"
        parts = await eventually(
            lambda: (r := cs.of("SIM201", "NotifyReport")) and not r[-1].get("tbc") and r
        )
        assert len(parts) >= 3
        assert {p["request_id"] for p in parts} == {7}
        assert [p["seq_no"] for p in parts] == list(range(len(parts)))
        assert all(p["tbc"] for p in parts[:-1])
        data = [item for p in parts for item in p["report_data"]]
        assert all(len(p["report_data"]) <= 10 for p in parts)
        assert len(data) == len(list(station.device_model))
        password = next(d for d in data if d["variable"]["name"] == "BasicAuthPassword")
        assert "value" not in password["variable_attribute"][0]
        heartbeat = next(d for d in data if d["variable"]["name"] == "HeartbeatInterval")
        assert heartbeat["variable_attribute"][0] == {
            "type": "Actual",
            "value": "1",
            "mutability": "ReadWrite",
            "persistent": True,
            "constant": False,
        }
        assert heartbeat["variable_characteristics"]["unit"] == "s"

        cs.messages.clear()
        evse2 = await cp.call(
            call.GetReport(
                request_id=8, component_variable=[{"component": {"name": "EVSE", "evse": {"id": 2}}}]
            )
        )
        assert evse2.status == "Accepted"
        [part] = await eventually(lambda: cs.of("SIM201", "NotifyReport"))
        assert {d["component"]["evse"]["id"] for d in part["report_data"]} == {2}
        empty = await cp.call(
            call.GetReport(request_id=9, component_variable=[{"component": {"name": "Nothing"}}])
        )
        assert empty.status == "EmptyResultSet"


async def test_offline_events_are_sent_in_order_after_reconnect(csms: tuple[Csms, str]) -> None:
    cs, url = csms
    async with running(make_station(url)) as station:
        cp = cs.connections["SIM201"]
        local_list = call.SendLocalList(
            version_number=3,
            update_type="Full",
            local_authorization_list=[
                {"idToken": {"idToken": TOKEN, "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted"}}
            ],
        )
        assert (await cp.call(local_list)).status == "Accepted"
        assert (await cp.call(call.GetLocalListVersion())).version_number == 3

        await cs.disconnect("SIM201")
        await eventually(lambda: not station.is_online)
        tx = await station.start_session(1, TOKEN)
        assert tx is not None  # authorized from the local list (AuthCtrlr.LocalAuthorizeOffline)
        await eventually(lambda: station.pending_transaction_events >= 4)  # incl. a periodic meter value
        await station.stop_session(1)
        queued = station.pending_transaction_events
        assert cs.events("SIM201", tx) == []

        cs.refuse_connections = False
        await station.wait_online(timeout=10)
        await station.wait_transaction_events_delivered(timeout=10)
        events = cs.events("SIM201", tx)
        assert len(events) == queued
        assert [e["seq_no"] for e in events] == list(range(queued))
        assert events[0]["event_type"] == "Started" and events[-1]["event_type"] == "Ended"
        assert "MeterValuePeriodic" in {e["trigger_reason"] for e in events}
        assert all(e["offline"] is True for e in events)
        timestamps = [e["timestamp"] for e in events]
        assert timestamps == sorted(timestamps)
        assert cs.of("SIM201", "Authorize") == []


async def test_stop_tx_on_invalid_id_after_reconnect(csms: tuple[Csms, str]) -> None:
    cs, url = csms
    async with running(make_station(url)) as station:
        cp = cs.connections["SIM201"]
        allow_unknown = call.SetVariables(
            set_variable_data=[_variable("AuthCtrlr", "OfflineTxForUnknownIdEnabled", attributeValue="true")]
        )
        assert (await cp.call(allow_unknown)).set_variable_result[0]["attribute_status"] == "Accepted"

        await cs.disconnect("SIM201")
        await eventually(lambda: not station.is_online)
        tx = await station.start_session(1, "UNKNOWN-2")
        assert tx is not None  # an unknown token may charge offline (AuthCtrlr.OfflineTxForUnknownIdEnabled)

        cs.refuse_connections = False
        ended = await eventually(
            lambda: [e for e in cs.events("SIM201", tx) if e["event_type"] == "Ended"], timeout=15
        )
        assert ended[0]["trigger_reason"] == "Deauthorized"
        assert ended[0]["transaction_info"]["stopped_reason"] == "DeAuthorized"
        assert ended[0].get("offline") is None  # it happened online, after the CSMS's verdict
        assert station.active_transactions() == {}


async def test_fleet_runs_201_stations(csms: tuple[Csms, str]) -> None:
    cs, url = csms
    assert [version_of(i, "mixed") for i in (1, 2, 3)] == ["1.6", "2.0.1", "1.6"]
    stop = asyncio.Event()
    fleet = asyncio.create_task(
        run_fleet(
            url,
            2,
            prefix="FLT",
            session_every=100_000,
            meter_interval=1,
            stop_event=stop,
            ocpp_version="2.0.1",
        )
    )
    try:
        # Station 1 of a fleet starts a long session on its first EVSE right after booting.
        started = await eventually(lambda: cs.of("FLT001", "TransactionEvent"))
        assert started[0]["event_type"] == "Started" and started[0]["evse"]["id"] == 1
        await eventually(lambda: cs.of("FLT002", "StatusNotification"))
        assert cs.of("FLT002", "TransactionEvent") == []
    finally:
        stop.set()
        await asyncio.wait_for(fleet, 20)
    tx = started[0]["transaction_info"]["transaction_id"]
    ended = [e for e in cs.events("FLT001", tx) if e["event_type"] == "Ended"]
    assert ended[0]["transaction_info"]["stopped_reason"] == "Other"  # stopped cleanly on the way out


async def test_other_csms_requests(csms: tuple[Csms, str]) -> None:
    cs, url = csms
    async with running(make_station(url, reboot_delay=0.05)) as station:
        cp = cs.connections["SIM201"]
        trigger = await cp.call(call.TriggerMessage(requested_message="MeterValues", evse={"id": 2}))
        assert trigger.status == "Accepted"
        readings = await eventually(lambda: cs.of("SIM201", "MeterValues"))
        assert readings[0]["evse_id"] == 2
        assert readings[0]["meter_value"][0]["sampled_value"][0]["context"] == "Trigger"
        for message, expected in (("BootNotification", "Rejected"), ("TransactionEvent", "Rejected")):
            assert (await cp.call(call.TriggerMessage(requested_message=message))).status == expected
        unknown_vendor = await cp.call(call.DataTransfer(vendor_id="com.example"))
        assert unknown_vendor.status == "UnknownVendorId"
        assert (await cp.call(call.ClearCache())).status == "Accepted"
        status = await cp.call(call.GetTransactionStatus(transaction_id="nope"))
        assert (status.messages_in_queue, status.ongoing_indicator) == (False, False)
        with pytest.raises(OCPPNotImplemented):
            await cp.call(call.GetDisplayMessages(request_id=1), suppress=False)

        unavailable = await cp.call(call.ChangeAvailability(operational_status="Inoperative", evse={"id": 2}))
        assert unavailable.status == "Accepted"
        await eventually(
            lambda: (
                [s["connector_status"] for s in cs.of("SIM201", "StatusNotification") if s["evse_id"] == 2][
                    -1
                ]
                == "Unavailable"
            )
        )
        assert await station.start_session(2, TOKEN) is None

        expiry = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        reserve = call.ReserveNow(
            id=5, expiry_date_time=expiry, id_token={"idToken": TOKEN, "type": "ISO14443"}, evse_id=1
        )
        assert (await cp.call(reserve)).status == "Accepted"
        await eventually(lambda: station.availability_state(1) == "Reserved")
        assert (await cp.call(call.CancelReservation(reservation_id=5))).status == "Accepted"
        assert (await cp.call(call.CancelReservation(reservation_id=5))).status == "Rejected"

        limit = call.SetChargingProfile(
            evse_id=0,
            charging_profile={
                "id": 9,
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargingStationMaxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [
                    {
                        "id": 1,
                        "startSchedule": datetime.now(UTC).isoformat(),
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}],
                    }
                ],
            },
        )
        assert (await cp.call(limit)).status == "Accepted"
        schedule = await cp.call(call.GetCompositeSchedule(duration=600, evse_id=0, charging_rate_unit="W"))
        assert schedule.schedule["charging_schedule_period"][0]["limit"] == 11000.0
        cleared = call.ClearChargingProfile(charging_profile_id=9)
        assert (await cp.call(cleared)).status == "Accepted"
        assert (await cp.call(cleared)).status == "Unknown"

        log = await cp.call(
            call.GetLog(
                # nothing listens there (tests are offline): the station says its upload failed
                log={"remoteLocation": "http://127.0.0.1:9/logs"},
                log_type="DiagnosticsLog",
                request_id=3,
            )
        )
        assert log.status == "Accepted" and log.filename
        await eventually(
            lambda: (
                [m["status"] for m in cs.of("SIM201", "LogStatusNotification")]
                == ["Uploading", "UploadFailure"]
            )
        )

        firmware = {
            "location": "https://example.com/fw.bin",
            "retrieveDateTime": datetime.now(UTC).isoformat(),
        }
        assert (await cp.call(call.UpdateFirmware(request_id=4, firmware=firmware))).status == "Accepted"
        statuses = await eventually(
            lambda: (
                (s := [m["status"] for m in cs.of("SIM201", "FirmwareStatusNotification")])
                and s[-1] == "Installed"
                and s
            )
        )
        assert statuses == ["Downloading", "Downloaded", "Installing", "InstallRebooting", "Installed"]
        assert [b["reason"] for b in cs.of("SIM201", "BootNotification")] == ["PowerUp", "FirmwareUpdate"]
        assert station.firmware_version == "2.4.1"

        cp = cs.connections["SIM201"]  # the station reconnected after installing
        assert (await cp.call(call.Reset(type="Immediate"))).status == "Accepted"
        await eventually(lambda: len(cs.of("SIM201", "BootNotification")) == 3)
        assert cs.of("SIM201", "BootNotification")[-1]["reason"] == "RemoteReset"
