"""OCPP 2.0.1 transactions end in the same sessions as 1.6: TransactionEvents through the
gateway, checked through the operator API a user reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.observe import add_token, eventually, sessions_of
from tests.peers import raw_station
from tests.peers201 import ocpp201_station, tx_event

P201 = "ocpp2.0.1"


def iso(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


async def test_a_transaction_from_started_to_ended(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARD201")
    async with raw_station(ocpp_url, "TX201", protocol=P201) as station:
        answer = await station.ok("Authorize", {"idToken": {"idToken": "CARD201", "type": "ISO14443"}})
        assert answer["idTokenInfo"]["status"] == "Accepted"
        started = await station.ok(
            "TransactionEvent",
            tx_event("Started", "tx-a1", 0, token="CARD201", meter_wh=1_234_000, chargingState="Charging"),
        )
        assert started["idTokenInfo"]["status"] == "Accepted"
        await station.ok(
            "TransactionEvent",
            tx_event("Updated", "tx-a1", 1, trigger="MeterValuePeriodic", meter_wh=1_238_500),
        )
        [running] = await sessions_of(api, "TX201")
        assert running["status"] == "active"
        assert running["transaction_id"] == "tx-a1"
        assert running["meter_start_wh"] == 1_234_000  # the station's register, never 0
        assert running["energy_wh"] == 4_500
        ended = await station.ok(
            "TransactionEvent",
            tx_event(
                "Ended",
                "tx-a1",
                2,
                trigger="EVCommunicationLost",
                meter_wh=1_244_000,
                stoppedReason="EVDisconnected",
            ),
        )
        assert ended == {}
    [done] = await sessions_of(api, "TX201")
    assert done["status"] == "completed"
    assert done["energy_wh"] == 10_000
    assert done["stop_reason"] == "EVDisconnected"
    assert done["evse_number"] == 1
    assert done["token_uid"] == "CARD201"
    assert done["auth_status"] == "Accepted"


async def test_kwh_and_multiplier_are_converted(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARDKWH")
    sample = {
        "timestamp": iso(0),
        "sampledValue": [
            {"value": 1500.25, "context": "Transaction.Begin", "unitOfMeasure": {"unit": "kWh"}},
        ],
    }
    end = {
        "timestamp": iso(0),
        "sampledValue": [
            {"value": 15.1, "context": "Transaction.End", "unitOfMeasure": {"unit": "Wh", "multiplier": 5}}
        ],
    }
    async with raw_station(ocpp_url, "KWH201", protocol=P201) as station:
        await station.ok(
            "TransactionEvent", tx_event("Started", "k1", 0, token="CARDKWH", meterValue=[sample])
        )
        await station.ok("TransactionEvent", tx_event("Ended", "k1", 1, meterValue=[end]))
    [done] = await sessions_of(api, "KWH201")
    assert (done["meter_start_wh"], done["meter_stop_wh"], done["energy_wh"]) == (1_500_250, 1_510_000, 9_750)


async def test_retransmitted_events_change_nothing(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARDDUP")
    started = tx_event("Started", "dup-1", 0, token="CARDDUP", meter_wh=500_000)
    ended = tx_event("Ended", "dup-1", 1, meter_wh=507_000, stoppedReason="Local")
    async with raw_station(ocpp_url, "DUP201", protocol=P201) as station:
        first = await station.ok("TransactionEvent", started)
        again = await station.ok("TransactionEvent", started)
        assert first == again
        await station.ok("TransactionEvent", ended)
        await station.ok("TransactionEvent", ended)
    sessions = await sessions_of(api, "DUP201")
    assert len(sessions) == 1
    assert sessions[0]["energy_wh"] == 7_000


async def test_events_out_of_order_are_merged(api: httpx.AsyncClient, ocpp_url: str) -> None:
    """Ended overtakes Updated, and Updated (without an EVSE) overtakes Started: the session
    still gets the station's begin register, start time, EVSE and token."""
    await add_token(api, "CARDORD")
    t0, t1, t2 = iso(30), iso(20), iso(10)
    async with raw_station(ocpp_url, "ORD201", protocol=P201) as station:
        await station.ok(
            "TransactionEvent",
            tx_event(
                "Updated", "ord-1", 1, trigger="MeterValuePeriodic", evse=None, meter_wh=2_003_000, at=t1
            ),
        )
        [provisional] = await sessions_of(api, "ORD201")
        assert provisional["status"] == "active"
        await station.ok(
            "TransactionEvent",
            tx_event("Ended", "ord-1", 3, meter_wh=2_009_000, at=t2, stoppedReason="Local"),
        )
        await station.ok(
            "TransactionEvent",
            tx_event("Updated", "ord-1", 2, trigger="MeterValuePeriodic", meter_wh=2_006_000, at=t2),
        )
        answer = await station.ok(
            "TransactionEvent", tx_event("Started", "ord-1", 0, token="CARDORD", meter_wh=2_000_000, at=t0)
        )
        assert answer["idTokenInfo"]["status"] == "Accepted"
    [done] = await sessions_of(api, "ORD201")
    assert done["status"] == "completed"
    assert done["meter_start_wh"] == 2_000_000
    assert done["meter_stop_wh"] == 2_009_000
    assert done["energy_wh"] == 9_000
    assert done["evse_number"] == 1
    assert done["token_uid"] == "CARDORD"
    assert datetime.fromisoformat(done["start_time"]) == datetime.fromisoformat(t0)


async def test_seqno_gap_does_not_block_the_session(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARDGAP")
    async with raw_station(ocpp_url, "GAP201", protocol=P201) as station:
        await station.ok(
            "TransactionEvent", tx_event("Started", "gap-1", 0, token="CARDGAP", meter_wh=10_000)
        )
        # seqNo 1 and 2 never arrive
        await station.ok("TransactionEvent", tx_event("Ended", "gap-1", 3, meter_wh=12_500))
    [done] = await sessions_of(api, "GAP201")
    assert (done["status"], done["energy_wh"]) == ("completed", 2_500)


async def test_offline_transaction_keeps_station_times(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARDOFF")
    start, stop = iso(120), iso(60)
    async with raw_station(ocpp_url, "OFF201", protocol=P201) as station:
        started = tx_event("Started", "off-1", 0, token="CARDOFF", meter_wh=7_000, at=start, offline=True)
        answer = await station.ok("TransactionEvent", started)
        assert answer["idTokenInfo"]["status"] == "Accepted"
        ended = tx_event(
            "Ended",
            "off-1",
            1,
            token="CARDOFF",
            meter_wh=19_000,
            at=stop,
            offline=True,
            stoppedReason="Local",
        )
        answer = await station.ok("TransactionEvent", ended)
        assert answer["idTokenInfo"]["status"] == "Accepted"  # the stop token is judged too
    [done] = await sessions_of(api, "OFF201")
    assert datetime.fromisoformat(done["start_time"]) == datetime.fromisoformat(start)
    assert datetime.fromisoformat(done["stop_time"]) == datetime.fromisoformat(stop)
    assert done["energy_wh"] == 12_000
    assert done["offline"] is True


async def test_started_without_token_is_authorized_later(api: httpx.AsyncClient, ocpp_url: str) -> None:
    """TxStartPoint EVConnected: the cable first, the card afterwards."""
    await add_token(api, "CARDLATE")
    async with raw_station(ocpp_url, "LATE201", protocol=P201) as station:
        await station.ok(
            "TransactionEvent", tx_event("Started", "late-1", 0, trigger="CablePluggedIn", meter_wh=100)
        )
        [pending] = await sessions_of(api, "LATE201")
        assert pending["auth_status"] == "Pending" and pending["token_uid"] is None
        answer = await station.ok("TransactionEvent", tx_event("Updated", "late-1", 1, token="CARDLATE"))
        assert answer["idTokenInfo"]["status"] == "Accepted"
    [authorized] = await sessions_of(api, "LATE201")
    assert (authorized["auth_status"], authorized["token_uid"]) == ("Accepted", "CARDLATE")


async def test_new_started_on_busy_evse_closes_the_lost_transaction(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await add_token(api, "CARDLOST")
    async with raw_station(ocpp_url, "LOST201", protocol=P201) as station:
        await station.ok(
            "TransactionEvent", tx_event("Started", "lost-1", 0, token="CARDLOST", meter_wh=1_000, at=iso(60))
        )
        await station.ok(
            "TransactionEvent", tx_event("Started", "lost-2", 0, token="CARDLOST", meter_wh=5_000)
        )
    sessions = {s["transaction_id"]: s for s in await sessions_of(api, "LOST201")}
    assert sessions["lost-1"]["status"] == "completed"
    assert sessions["lost-1"]["stop_reason"] == "Superseded"
    assert sessions["lost-2"]["status"] == "active"


@pytest.mark.parametrize("settings_overrides", [{"remote_stop_rejected_after": 0.2}])
async def test_blocked_token_started_offline_is_stopped(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARDBLK", status="blocked")
    async with ocpp201_station(ocpp_url, "BLK201") as station:
        from ocpp.v201 import call

        reply = await station.call(
            call.TransactionEvent(
                event_type="Started",
                timestamp=iso(5),
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info={"transaction_id": "blk-1"},
                evse={"id": 1, "connector_id": 1},
                id_token={"id_token": "CARDBLK", "type": "ISO14443"},
                offline=True,
                meter_value=[
                    {"timestamp": iso(5), "sampled_value": [{"value": 300.0, "context": "Transaction.Begin"}]}
                ],
            )
        )
        assert reply.id_token_info["status"] == "Blocked"

        async def stop_requested() -> bool:
            return bool(station.calls("RequestStopTransaction"))

        await eventually(stop_requested)
        assert station.calls("RequestStopTransaction") == [{"transaction_id": "blk-1"}]
    [session] = await sessions_of(api, "BLK201")
    assert session["auth_status"] == "Blocked"


async def test_meter_values_without_transaction_are_linked(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARDMV")
    async with raw_station(ocpp_url, "MV201", protocol=P201) as station:
        await station.ok(
            "TransactionEvent", tx_event("Started", "mv-1", 0, token="CARDMV", meter_wh=40_000, at=iso(1))
        )
        await station.ok(
            "MeterValues",
            {"evseId": 1, "meterValue": [{"timestamp": iso(0), "sampledValue": [{"value": 41_000}]}]},
        )
    [session] = await sessions_of(api, "MV201")
    assert session["energy_wh"] == 1_000
    values = (await api.get(f"/api/sessions/{session['id']}/meter-values")).json()
    assert {v["value"] for v in values} >= {"40000", "41000"}


async def test_register_running_backwards_gives_no_energy(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await add_token(api, "CARDBACK")
    async with raw_station(ocpp_url, "BACK201", protocol=P201) as station:
        await station.ok("TransactionEvent", tx_event("Started", "b-1", 0, token="CARDBACK", meter_wh=90_000))
        await station.ok("TransactionEvent", tx_event("Ended", "b-1", 1, meter_wh=100))  # meter swapped
    [done] = await sessions_of(api, "BACK201")
    assert done["status"] == "completed" and done["energy_wh"] is None
    events = (await api.get("/api/stations/BACK201/events")).json()
    assert any(e["kind"] == "meter_anomaly" for e in events)


async def test_updates_retransmitted_or_late_keep_the_newest_state(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await add_token(api, "CARDUPD")
    newer = tx_event(
        "Updated", "upd-1", 2, trigger="ChargingStateChanged", meter_wh=503_000, chargingState="SuspendedEV"
    )
    older = tx_event(
        "Updated", "upd-1", 1, trigger="MeterValuePeriodic", meter_wh=502_000, chargingState="Charging"
    )
    async with raw_station(ocpp_url, "UPD201", protocol=P201) as station:
        await station.ok(
            "TransactionEvent",
            tx_event("Started", "upd-1", 0, token="CARDUPD", meter_wh=500_000, chargingState="Charging"),
        )
        assert await station.ok("TransactionEvent", newer) == {}
        assert await station.ok("TransactionEvent", newer) == {}  # retransmitted
        assert await station.ok("TransactionEvent", older) == {}  # overtaken
        [running] = await sessions_of(api, "UPD201")
        assert running["charging_state"] == "SuspendedEV"
        assert running["energy_wh"] == 3_000
        values = (await api.get(f"/api/sessions/{running['id']}/meter-values")).json()
        assert sorted(v["value"] for v in values) == ["500000", "502000", "503000"]  # each stored once
