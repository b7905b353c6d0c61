"""OCPP 2.1 stations: a charge point from the `ocpp` package's v21 classes over "ocpp2.1",
checked through what it is answered and what a user reads in the operator API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.routing import on
from ocpp.v21 import ChargePoint, call, call_result
from websockets.asyncio.client import ClientConnection, connect

from stekker.ocpp.schemas import validate
from tests.observe import add_token, sessions_of
from tests.peers import REPLY_TIMEOUT, raw_station

P21 = "ocpp2.1"


def iso(minutes_ago: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


class Station21(ChargePoint):  # type: ignore[misc]
    """A 2.1 charging station from the `ocpp` package that records what it is asked."""

    def __init__(self, station_id: str, ws: ClientConnection) -> None:
        super().__init__(station_id, ws, response_timeout=REPLY_TIMEOUT)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.start_answer = "Accepted"

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.received if name == action]

    @on("RequestStartTransaction")
    async def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, **kw: Any) -> Any:
        self.received.append(
            ("RequestStartTransaction", {"id_token": id_token, "remote_start_id": remote_start_id, **kw})
        )
        return call_result.RequestStartTransaction(status=self.start_answer)

    async def boot(self) -> Any:
        return await self.call(
            call.BootNotification(charging_station={"model": "T21", "vendor_name": "Test"}, reason="PowerUp")
        )


@contextlib.asynccontextmanager
async def ocpp21_station(base_url: str, station_id: str, boot: bool = True) -> AsyncIterator[Station21]:
    async with connect(f"{base_url}/{station_id}", subprotocols=[P21]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == P21
        cp = Station21(station_id, ws)
        task = asyncio.create_task(cp.start())
        try:
            if boot:
                assert (await cp.boot()).status == "Accepted"
            yield cp
        finally:
            task.cancel()


def sample(wh: float, context: str, at: str | None = None) -> dict[str, Any]:
    return {
        "timestamp": at or iso(),
        "sampled_value": [{"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"}],
    }


def tx_event(event_type: str, tx_id: str, seq_no: int, trigger: str, **kw: Any) -> Any:
    return call.TransactionEvent(
        event_type=event_type,
        timestamp=kw.pop("timestamp", iso()),
        trigger_reason=trigger,
        seq_no=seq_no,
        transaction_info={"transaction_id": tx_id, **kw.pop("info", {})},
        evse=kw.pop("evse", {"id": 1, "connector_id": 1}),
        **kw,
    )


# ---- station basics -----------------------------------------------------------------------


async def test_boot_status_and_heartbeat(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with ocpp21_station(ocpp_url, "S21-BOOT", boot=False) as station:
        boot = await station.boot()
        assert boot.status == "Accepted"
        assert boot.interval > 0
        datetime.fromisoformat(boot.current_time)
        status = await station.call(
            call.StatusNotification(timestamp=iso(), connector_status="Occupied", evse_id=1, connector_id=1),
            suppress=False,
        )
        assert isinstance(status, call_result.StatusNotification)
        beat = await station.call(call.Heartbeat(), suppress=False)
        sent_at = datetime.fromisoformat(beat.current_time)
        assert abs((sent_at - datetime.now(UTC)).total_seconds()) < 60
        body = (await api.get("/api/stations/S21-BOOT")).json()
        assert body["online"] is True
        assert body["ocpp_version"] == "ocpp2.1"
        assert (body["vendor"], body["model"]) == ("Test", "T21")
        assert [
            (e["evse_number"], c["connector_number"], c["status"])
            for e in body["evses"]
            for c in e["connectors"]
        ] == [(1, 1, "Occupied")]


async def test_authorize_known_unknown_and_blocked_tokens(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARD21")
    await add_token(api, "CARD21-BLK", status="blocked")
    async with ocpp21_station(ocpp_url, "S21-AUTH") as station:

        async def authorize(uid: str) -> str:
            reply = await station.call(
                call.Authorize(id_token={"id_token": uid, "type": "ISO14443"}), suppress=False
            )
            status: str = reply.id_token_info["status"]
            return status

        assert await authorize("CARD21") == "Accepted"
        assert await authorize("NOBODY21") == "Unknown"  # never issued
        assert await authorize("CARD21-BLK") == "Blocked"
        # 2.1's idToken type is free text: a type 2.0.1 does not know is judged, not refused
        reply = await station.call(
            call.Authorize(id_token={"id_token": "CARD21", "type": "DirectPayment"}), suppress=False
        )
        assert reply.id_token_info["status"] == "Accepted"


async def test_a_transaction_from_started_to_ended(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARD21TX")
    async with ocpp21_station(ocpp_url, "S21-TX") as station:
        started = await station.call(
            tx_event(
                "Started",
                "tx21-1",
                0,
                "Authorized",
                info={"charging_state": "Charging"},
                id_token={"id_token": "CARD21TX", "type": "ISO14443"},
                meter_value=[sample(2_000_000, "Transaction.Begin")],
            ),
            suppress=False,
        )
        assert started.id_token_info["status"] == "Accepted"
        await station.call(
            tx_event(
                "Updated",
                "tx21-1",
                1,
                "MeterValuePeriodic",
                meter_value=[sample(2_003_500, "Sample.Periodic")],
            ),
            suppress=False,
        )
        [running] = await sessions_of(api, "S21-TX")
        assert (running["status"], running["transaction_id"], running["charging_state"]) == (
            "active",
            "tx21-1",
            "Charging",
        )
        assert (running["meter_start_wh"], running["energy_wh"]) == (2_000_000, 3_500)
        ended = await station.call(
            tx_event(
                "Ended",
                "tx21-1",
                2,
                "EVCommunicationLost",
                info={"stopped_reason": "EVDisconnected"},
                meter_value=[sample(2_012_250, "Transaction.End")],
            ),
            suppress=False,
        )
        assert isinstance(ended, call_result.TransactionEvent)
    [done] = await sessions_of(api, "S21-TX")
    assert done["status"] == "completed"
    assert (done["meter_start_wh"], done["meter_stop_wh"], done["energy_wh"]) == (
        2_000_000,
        2_012_250,
        12_250,
    )
    assert (done["stop_reason"], done["token_uid"], done["auth_status"]) == (
        "EVDisconnected",
        "CARD21TX",
        "Accepted",
    )
    assert (done["evse_number"], done["connector_number"]) == (1, 1)


async def test_meter_values_reach_the_running_session(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARD21MV")
    async with ocpp21_station(ocpp_url, "S21-MV") as station:
        await station.call(
            tx_event(
                "Started",
                "mv21-1",
                0,
                "Authorized",
                timestamp=iso(2),
                id_token={"id_token": "CARD21MV", "type": "ISO14443"},
                meter_value=[sample(40_000, "Transaction.Begin", at=iso(2))],
            ),
            suppress=False,
        )
        reply = await station.call(
            call.MeterValues(
                evse_id=1, meter_value=[{"timestamp": iso(1), "sampled_value": [{"value": 41_500}]}]
            ),
            suppress=False,
        )
        assert isinstance(reply, call_result.MeterValues)
    [session] = await sessions_of(api, "S21-MV")
    assert session["energy_wh"] == 1_500
    values = (await api.get(f"/api/sessions/{session['id']}/meter-values")).json()
    assert {v["value"] for v in values} >= {"40000", "41500"}


async def test_idtoken_longer_than_36_characters(
    api: httpx.AsyncClient, ocpp_url: str, database_url: str, request: pytest.FixtureRequest
) -> None:
    """2.1 raised idToken's maxLength from 36 to 255. Such a token is schema-valid: Authorize
    must get an idTokenInfo and the TransactionEvent must be stored (else the energy of a
    real transaction is lost: PropertyConstraintViolation tells the station not to retry)."""
    uid = "NL-STK-" + "E" * 40  # e.g. a long contract id; 47 characters
    started = {
        "eventType": "Started",
        "timestamp": iso(),
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "long-tok-1"},
        "evse": {"id": 1, "connectorId": 1},
        "idToken": {"idToken": uid, "type": "eMAID"},
    }
    validate(P21, "TransactionEvent", dict(started))
    async with raw_station(ocpp_url, "S21-LONG", protocol=P21) as station:
        authorized = await station.call("Authorize", {"idToken": {"idToken": uid, "type": "eMAID"}})
        assert authorized[0] == 3 and authorized[2]["idTokenInfo"]["status"] == "Unknown", authorized
        answer = await station.call("TransactionEvent", started)
        assert answer[0] == 3, answer
    [session] = await sessions_of(api, "S21-LONG")
    assert (session["transaction_id"], session["token_uid"]) == ("long-tok-1", uid)


# ---- 2.1-only messages --------------------------------------------------------------------

UNHANDLED: list[tuple[str, Any]] = [
    (
        "NotifySettlement",
        call.NotifySettlement(
            psp_ref="psp-1", status="Settled", settlement_amount=12.5, settlement_time=iso()
        ),
    ),
    ("NotifyPriorityCharging", call.NotifyPriorityCharging(transaction_id="tx-prio", activated=True)),
    (
        "BatterySwap",
        call.BatterySwap(
            event_type="BatteryIn",
            request_id=1,
            id_token={"id_token": "CARD21", "type": "ISO14443"},
            battery_data=[{"evse_id": 1, "serial_number": "B-1", "so_c": 80.0, "so_h": 95.0}],
        ),
    ),
]


@pytest.mark.parametrize(("action", "message"), UNHANDLED, ids=[u[0] for u in UNHANDLED])
async def test_unhandled_2_1_message_is_not_supported(
    api: httpx.AsyncClient, ocpp_url: str, action: str, message: Any
) -> None:
    async with ocpp21_station(ocpp_url, "S21-NS") as station:
        with pytest.raises(NotSupportedError) as info:
            await station.call(message, suppress=False)
        assert info.value.description == f"{action} is known but not supported from a station here"
        # and the connection keeps working
        assert (await station.call(call.Heartbeat(), suppress=False)).current_time
        assert (await api.get("/api/stations/S21-NS")).json()["online"] is True


async def test_unhandled_2_1_message_exact_frame(ocpp_url: str) -> None:
    payload = {"pspRef": "psp-2", "status": "Settled", "settlementAmount": 1.0, "settlementTime": iso()}
    validate(P21, "NotifySettlement", dict(payload))
    async with raw_station(ocpp_url, "S21-NSR", protocol=P21) as station:
        frame = await station.call("NotifySettlement", payload, msg_id="settle-1")
        assert frame == [
            4,
            "settle-1",
            "NotSupported",
            "NotifySettlement is known but not supported from a station here",
            {},
        ]
        assert "currentTime" in await station.ok("Heartbeat", {})


# ---- remote start -------------------------------------------------------------------------


async def test_remote_start_reaches_the_station_and_links_the_session(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await add_token(api, "CARD21RS")
    async with ocpp21_station(ocpp_url, "S21-RS") as station:
        response = await api.post(
            "/api/stations/S21-RS/remote-start", json={"token_uid": "CARD21RS", "evse_number": 1}
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        # the station has not begun the session within the call: a link to follow it
        assert (answer["status"], answer["station_id"], answer["session_id"]) == ("Accepted", "S21-RS", None)
        assert answer["follow_url"] == f"/api/sessions/remote-starts/{answer['remote_start_id']}"
        [request] = station.calls("RequestStartTransaction")
        assert request["id_token"] == {"id_token": "CARD21RS", "type": "ISO14443"}
        assert request["evse_id"] == 1
        remote_start_id = request["remote_start_id"]
        assert isinstance(remote_start_id, int)
        started = await station.call(
            tx_event(
                "Started",
                "rs21-1",
                0,
                "RemoteStart",
                info={"remote_start_id": remote_start_id, "charging_state": "EVConnected"},
                id_token={"id_token": "CARD21RS", "type": "ISO14443"},
                meter_value=[sample(500, "Transaction.Begin")],
            ),
            suppress=False,
        )
        assert started.id_token_info["status"] == "Accepted"
    [session] = await sessions_of(api, "S21-RS")
    assert session["remote_start_id"] == remote_start_id == answer["remote_start_id"]
    assert (await api.get(answer["follow_url"])).json()["session_id"] == session["id"]
    assert session["started_remotely_by"] == "operator"
    assert (session["transaction_id"], session["token_uid"], session["status"]) == (
        "rs21-1",
        "CARD21RS",
        "active",
    )


async def test_rejected_remote_start_is_reported(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARD21RJ")
    async with ocpp21_station(ocpp_url, "S21-RJ") as station:
        station.start_answer = "Rejected"
        response = await api.post("/api/stations/S21-RJ/remote-start", json={"token_uid": "CARD21RJ"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Rejected"
        [request] = station.calls("RequestStartTransaction")
        assert "evse_id" not in request  # the station chooses
    assert await sessions_of(api, "S21-RJ") == []


# ---- SEND (message type 6) ----------------------------------------------------------------


async def test_send_frame_gets_no_reply_and_the_connection_stays(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """2.1's SEND ([6, id, action, payload], e.g. NotifyPeriodicEventStream) and CALLRESULTERROR
    ([5, ...]) must never be answered; the connection carries on."""
    stream = {"id": 1, "pending": 0, "basetime": iso(), "data": [{"t": 0.0, "v": "230.1"}]}
    async with raw_station(ocpp_url, "S21-SEND", protocol=P21) as station:
        await station.ws.send(json.dumps([6, "send-1", "NotifyPeriodicEventStream", stream]))
        await station.ws.send(json.dumps([5, "res-err-1", "GenericError", "bad result", {}]))
        # the next frame back must be the Heartbeat's answer, not a reply to either of them
        frame = await station.send_text(json.dumps([2, "hb-1", "Heartbeat", {}]))
        assert frame[:2] == [3, "hb-1"], frame
        assert station.replies.empty()  # frames are answered in order: nothing came before it
        assert station.ws.close_code is None
        assert (await api.get("/api/stations/S21-SEND")).json()["online"] is True
        assert "currentTime" in await station.ok("Heartbeat", {})
