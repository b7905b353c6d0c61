"""The OCPP 1.6J simulator against a minimal central system built with the `ocpp` package, over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import Server, ServerConnection

from stekker.sim import SimulatedStation
from tests.observe import eventually
from tests.peers import Received, now_iso, typed_on


@dataclass
class CentralSystem:
    """Records every message stations send; accepts everything except the id tag "BLOCKED"."""

    messages: list[Received] = field(default_factory=list)
    connections: dict[str, CsChargePoint] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    tx_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    def of(self, station_id: str, action: str) -> list[dict[str, Any]]:
        return [m.payload for m in self.messages if m.station_id == station_id and m.action == action]


class CsChargePoint(ChargePoint):  # type: ignore[misc]
    def __init__(self, station_id: str, ws: ServerConnection, cs: CentralSystem) -> None:
        super().__init__(station_id, ws)
        self.cs = cs

    def _record(self, action: str, **payload: Any) -> None:
        self.cs.messages.append(Received(self.id, action, payload))

    @typed_on(Action.boot_notification)
    def on_boot(self, **kw: Any) -> call_result.BootNotification:
        self._record("BootNotification", **kw)
        return call_result.BootNotification(current_time=now_iso(), interval=300, status="Accepted")

    @typed_on(Action.status_notification)
    def on_status(self, **kw: Any) -> call_result.StatusNotification:
        self._record("StatusNotification", **kw)
        return call_result.StatusNotification()

    @typed_on(Action.heartbeat)
    def on_heartbeat(self, **kw: Any) -> call_result.Heartbeat:
        self._record("Heartbeat", **kw)
        return call_result.Heartbeat(current_time=now_iso())

    @typed_on(Action.authorize)
    def on_authorize(self, id_tag: str, **kw: Any) -> call_result.Authorize:
        self._record("Authorize", id_tag=id_tag, **kw)
        status = "Blocked" if id_tag == "BLOCKED" else "Accepted"
        return call_result.Authorize(id_tag_info={"status": status})

    @typed_on(Action.start_transaction)
    def on_start(self, **kw: Any) -> call_result.StartTransaction:
        self._record("StartTransaction", **kw)
        return call_result.StartTransaction(
            transaction_id=next(self.cs.tx_ids), id_tag_info={"status": "Accepted"}
        )

    @typed_on(Action.stop_transaction)
    def on_stop(self, **kw: Any) -> call_result.StopTransaction:
        self._record("StopTransaction", **kw)
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    @typed_on(Action.meter_values)
    def on_meter_values(self, **kw: Any) -> call_result.MeterValues:
        self._record("MeterValues", **kw)
        return call_result.MeterValues()


@pytest.fixture
async def central_system() -> AsyncIterator[tuple[CentralSystem, str]]:
    cs = CentralSystem()

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        station_id = ws.request.path.rstrip("/").split("/")[-1]
        cs.headers[station_id] = dict(ws.request.headers)
        cp = CsChargePoint(station_id, ws, cs)
        cs.connections[station_id] = cp
        try:
            await cp.start()
        except websockets.ConnectionClosed:
            pass

    server: Server = await websockets.serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        yield cs, f"ws://127.0.0.1:{port}/ocpp"
    finally:
        server.close()
        await server.wait_closed()


async def test_simulated_stations_against_central_system(central_system: tuple[CentralSystem, str]) -> None:
    cs, base_url = central_system
    stations = [
        SimulatedStation(f"SIMTEST{i}", base_url, meter_interval=1, unplug_delay=0.1, reboot_delay=0.1)
        for i in (1, 2)
    ]
    stations[1].password = "s3cret-password"
    runs = [asyncio.create_task(s.run()) for s in stations]
    a, b = stations
    try:
        for s in stations:
            await s.wait_online(timeout=10)

        # Boot and initial statuses (connector 0 and both connectors)
        boot = cs.of("SIMTEST1", "BootNotification")[0]
        assert boot["charge_point_vendor"] == "Stekker"
        assert boot["charge_point_model"]
        await eventually(
            lambda: {0, 1, 2} <= {p["connector_id"] for p in cs.of("SIMTEST2", "StatusNotification")}
        )
        assert all(p["status"] == "Available" for p in cs.of("SIMTEST1", "StatusNotification"))
        assert "authorization" not in cs.headers["SIMTEST1"]
        assert cs.headers["SIMTEST2"]["authorization"].startswith("Basic ")

        # Local session on SIMTEST1 connector 1
        tx = await a.start_session(1, "04AABBCCDDEEFF")
        assert tx is not None
        assert cs.of("SIMTEST1", "Authorize") == [{"id_tag": "04AABBCCDDEEFF"}]
        start = cs.of("SIMTEST1", "StartTransaction")[0]
        assert start["connector_id"] == 1 and start["id_tag"] == "04AABBCCDDEEFF"
        assert start["meter_start"] > 0
        assert start["timestamp"].endswith("Z")
        statuses = [p["status"] for p in cs.of("SIMTEST1", "StatusNotification") if p["connector_id"] == 1]
        assert statuses[-2:] == ["Preparing", "Charging"]

        meter_values = await eventually(lambda: cs.of("SIMTEST1", "MeterValues"), timeout=5)
        mv = meter_values[0]
        assert mv["transaction_id"] == tx and mv["connector_id"] == 1
        sampled = mv["meter_value"][0]["sampled_value"]
        measurands = {sv["measurand"] for sv in sampled}
        assert {"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import"} <= measurands
        register = next(sv for sv in sampled if sv["measurand"] == "Energy.Active.Import.Register")
        assert register["unit"] == "Wh" and register["context"] == "Sample.Periodic"
        assert int(register["value"]) >= start["meter_start"]
        await asyncio.sleep(1.2)

        await a.stop_session(1)
        stop = cs.of("SIMTEST1", "StopTransaction")[0]
        assert stop["transaction_id"] == tx
        assert stop["meter_stop"] > start["meter_start"]
        assert stop["reason"] == "Local" and stop["id_tag"] == "04AABBCCDDEEFF"
        end = stop["transaction_data"][-1]["sampled_value"][0]
        assert end["context"] == "Transaction.End" and int(end["value"]) == stop["meter_stop"]
        await eventually(
            lambda: (
                [p["status"] for p in cs.of("SIMTEST1", "StatusNotification") if p["connector_id"] == 1][-2:]
                == ["Finishing", "Available"]
            )
        )

        # The register keeps counting across sessions: the next session starts where the last one stopped.
        assert a.connectors[1].energy_register == stop["meter_stop"]

        # Blocked tag: no transaction
        assert await a.start_session(2, "BLOCKED") is None
        assert len(cs.of("SIMTEST1", "StartTransaction")) == 1

        # Remote start / stop on SIMTEST2
        cp_b = cs.connections["SIMTEST2"]
        result = await cp_b.call(call.RemoteStartTransaction(id_tag="04REMOTE000001", connector_id=2))
        assert result.status == "Accepted"
        remote_start = (await eventually(lambda: cs.of("SIMTEST2", "StartTransaction")))[0]
        assert remote_start["connector_id"] == 2 and remote_start["meter_start"] > 0
        await eventually(lambda: b.connectors[2].status == "Charging")
        remote_tx = b.connectors[2].transaction_id
        assert remote_tx is not None

        busy = await cp_b.call(call.RemoteStartTransaction(id_tag="04REMOTE000002", connector_id=2))
        assert busy.status == "Rejected"
        assert (await cp_b.call(call.RemoteStopTransaction(transaction_id=999_999))).status == "Rejected"

        await eventually(lambda: cs.of("SIMTEST2", "MeterValues"), timeout=5)
        result = await cp_b.call(call.RemoteStopTransaction(transaction_id=remote_tx))
        assert result.status == "Accepted"
        remote_stop = (await eventually(lambda: cs.of("SIMTEST2", "StopTransaction")))[0]
        assert remote_stop["transaction_id"] == remote_tx
        assert remote_stop["reason"] == "Remote"
        assert remote_stop["meter_stop"] > remote_start["meter_start"]

        # Configuration
        cp_a = cs.connections["SIMTEST1"]
        changed = await cp_a.call(call.ChangeConfiguration(key="HeartbeatInterval", value="42"))
        assert changed.status == "Accepted"
        readonly = await cp_a.call(call.ChangeConfiguration(key="NumberOfConnectors", value="5"))
        assert readonly.status == "Rejected"
        unknown = await cp_a.call(call.ChangeConfiguration(key="NoSuchKey", value="1"))
        assert unknown.status == "NotSupported"
        bad = await cp_a.call(call.ChangeConfiguration(key="MeterValueSampleInterval", value="abc"))
        assert bad.status == "Rejected"
        conf = await cp_a.call(call.GetConfiguration(key=["HeartbeatInterval", "NumberOfConnectors", "Foo"]))
        values = {k["key"]: k for k in conf.configuration_key}
        assert values["HeartbeatInterval"]["value"] == "42"
        assert values["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True, "value": "2"}
        assert conf.unknown_key == ["Foo"]
        everything = await cp_a.call(call.GetConfiguration())
        assert {"LocalAuthListEnabled", "StopTransactionOnInvalidId"} <= {
            k["key"] for k in everything.configuration_key
        }

        # Local authorization list
        assert (await cp_a.call(call.GetLocalListVersion())).list_version == 0
        full = call.SendLocalList(
            list_version=3,
            update_type="Full",
            local_authorization_list=[
                {"idTag": "04AAAAAAAAAAAA", "idTagInfo": {"status": "Accepted"}},
                {"idTag": "04BBBBBBBBBBBB", "idTagInfo": {"status": "Blocked"}},
            ],
        )
        assert (await cp_a.call(full)).status == "Accepted"
        assert (await cp_a.call(call.GetLocalListVersion())).list_version == 3
        assert set(a.local_list) == {"04AAAAAAAAAAAA", "04BBBBBBBBBBBB"}
        stale = call.SendLocalList(list_version=2, update_type="Differential", local_authorization_list=[])
        assert (await cp_a.call(stale)).status == "VersionMismatch"
        diff = call.SendLocalList(
            list_version=4,
            update_type="Differential",
            local_authorization_list=[
                {"idTag": "04BBBBBBBBBBBB"},
                {"idTag": "04CCCCCCCCCCCC", "idTagInfo": {"status": "Accepted"}},
            ],
        )
        assert (await cp_a.call(diff)).status == "Accepted"
        assert (await cp_a.call(call.GetLocalListVersion())).list_version == 4
        assert set(a.local_list) == {"04AAAAAAAAAAAA", "04CCCCCCCCCCCC"}
    finally:
        for s in stations:
            await s.close()
        done, pending = await asyncio.wait(runs, timeout=5)
        assert not pending
        for task in done:
            assert task.exception() is None


async def test_a_lost_connection_is_reconnected_without_a_boot_and_the_session_goes_on(
    central_system: tuple[CentralSystem, str],
) -> None:
    """A station boots when it powers up or is reset, not when its network comes back (a gateway
    that died): it reconnects, reports its statuses and keeps charging."""
    cs, base_url = central_system
    station = SimulatedStation("SIMNET1", base_url, meter_interval=1, unplug_delay=0.1, reboot_delay=0.1)
    run = asyncio.create_task(station.run())
    try:
        await station.wait_online(timeout=10)
        tx = await station.start_session(1, "04AABBCCDDEE01")
        assert tx is not None
        statuses_before = len(cs.of("SIMNET1", "StatusNotification"))
        cs.connections["SIMNET1"]._connection.transport.abort()  # the central system is gone: no close frame
        lost = await asyncio.wait_for(asyncio.gather(run, return_exceptions=True), 10)
        assert isinstance(lost[0], Exception)  # run() says the connection was lost

        run = asyncio.create_task(station.run())  # what the fleet's reconnect loop does
        await station.wait_online(timeout=10)
        # it says how its connectors are, as after every reconnect
        await eventually(lambda: len(cs.of("SIMNET1", "StatusNotification")) > statuses_before, timeout=5)
        assert len(cs.of("SIMNET1", "BootNotification")) == 1  # the first power-up only
        assert station.active_transactions() == {1: tx}
        seen = len(cs.of("SIMNET1", "MeterValues"))
        await eventually(lambda: len(cs.of("SIMNET1", "MeterValues")) > seen, timeout=5)
        assert cs.of("SIMNET1", "MeterValues")[-1]["transaction_id"] == tx
        assert cs.of("SIMNET1", "StopTransaction") == []
        await station.stop_session(1, "Local")  # the session of before the cut ends on the new link
        assert [p["transaction_id"] for p in cs.of("SIMNET1", "StopTransaction")] == [tx]

        # switched off and on again: that one boots
        await station.close()
        run.cancel()
        run = asyncio.create_task(station.run())
        await station.wait_online(timeout=10)
        assert len(cs.of("SIMNET1", "BootNotification")) == 2
    finally:
        await station.close()
        run.cancel()
        with contextlib.suppress(BaseException):
            await run
