"""Requirement 75: remote start and stop from the REST API and the CLI, with the station's answer."""

from __future__ import annotations

import json
from typing import Any

import httpx
from ocpp.v16 import call
from ocpp.v201 import call as call201

from stekker.app import Stekker
from tests.observe import eventually
from tests.peers import now_iso, ocpp_station, raw_station
from tests.peers201 import ocpp201_station


async def test_remote_start_and_stop_through_the_api(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    async with ocpp_station(ocpp_url, "CP-R") as cp:
        response = await api.post(
            "/api/stations/CP-R/remote-start", json={"token_uid": "CARD-1", "evse_number": 2}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Accepted"
        assert cp.calls("RemoteStartTransaction") == [{"id_tag": "CARD-1", "connector_id": 2}]

        # the session record follows the station's own messages
        started = await cp.call(
            call.StartTransaction(connector_id=2, id_tag="CARD-1", meter_start=42_000, timestamp=now_iso())
        )
        session_id = started.transaction_id
        response = await api.post(f"/api/sessions/{session_id}/remote-stop")
        assert response.json() == {"status": "Accepted", "station_id": "CP-R", "session_id": session_id}
        assert cp.calls("RemoteStopTransaction") == [{"transaction_id": session_id}]
        await cp.call(
            call.StopTransaction(
                meter_stop=43_000, timestamp=now_iso(), transaction_id=session_id, reason="Remote"
            )
        )
        response = await api.post(f"/api/sessions/{session_id}/remote-stop")
        assert response.status_code == 409 and "not running" in response.json()["detail"]

        cp.remote_start_answer = "Rejected"
        response = await api.post("/api/stations/CP-R/remote-start", json={"token_uid": "CARD-1"})
        assert response.json()["status"] == "Rejected"
        assert cp.calls("RemoteStartTransaction")[-1] == {"id_tag": "CARD-1"}  # no connector: station chooses

    session = (await api.get(f"/api/sessions/{session_id}")).json()
    assert session["stop_reason"] == "Remote" and session["energy_wh"] == 1_000
    assert session["started_remotely_by"] == "operator" and session["remote_start_id"] is not None


async def test_remote_start_is_linked_only_to_the_start_it_caused(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """1.6 echoes no id: the next start for that token on that EVSE is the result; a card
    swiped on another EVSE, or a start after a Rejected answer, is not."""
    for uid in ("CARD-1", "CARD-2"):
        await api.put("/api/tokens", json={"uid": uid})
    async with ocpp_station(ocpp_url, "CP-LINK") as cp:
        await api.post("/api/stations/CP-LINK/remote-start", json={"token_uid": "CARD-1", "evse_number": 2})
        other_evse = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-1", meter_start=1, timestamp=now_iso())
        )
        ours = await cp.call(
            call.StartTransaction(connector_id=2, id_tag="CARD-1", meter_start=1, timestamp=now_iso())
        )
        cp.remote_start_answer = "Rejected"
        await api.post("/api/stations/CP-LINK/remote-start", json={"token_uid": "CARD-2"})
        after_rejection = await cp.call(
            call.StartTransaction(connector_id=3, id_tag="CARD-2", meter_start=1, timestamp=now_iso())
        )
    by_id = {s["id"]: s for s in (await api.get("/api/sessions")).json()}
    assert by_id[other_evse.transaction_id]["started_remotely_by"] is None
    assert by_id[ours.transaction_id]["started_remotely_by"] == "operator"
    assert by_id[after_rejection.transaction_id]["remote_start_id"] is None


async def test_remote_start_refusals_say_why(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    await api.put("/api/tokens", json={"uid": "LOST", "status": "blocked"})
    response = await api.post("/api/stations/NOPE/remote-start", json={"token_uid": "CARD-1"})
    assert response.status_code == 404
    await api.post("/api/stations", json={"authentication": "none", "id": "CP-OFF", "evse_count": 1})
    response = await api.post("/api/stations/CP-OFF/remote-start", json={"token_uid": "CARD-1"})
    assert response.status_code == 409 and response.json()["error"] == "station_offline"
    async with ocpp_station(ocpp_url, "CP-ON") as cp:
        response = await api.post("/api/stations/CP-ON/remote-start", json={"token_uid": "LOST"})
        assert response.status_code == 409 and "blocked" in response.json()["detail"]
        assert cp.calls("RemoteStartTransaction") == []
    for bad in ({}, {"token_uid": ""}, {"token_uid": "X", "evse_number": 0}, {"token_uid": "X" * 37}):
        response = await api.post("/api/stations/CP-ON/remote-start", json=bad)
        assert response.status_code == 422, bad
    assert (await api.post("/api/sessions/999/remote-stop")).status_code == 404
    assert (await api.post("/api/sessions/abc/remote-stop")).status_code == 422


async def test_remote_start_times_out_within_bounds(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    server.settings.call_timeout = 0.5
    async with raw_station(ocpp_url, "CP-MUTE") as st:
        st.silent = True
        response = await api.post("/api/stations/CP-MUTE/remote-start", json={"token_uid": "CARD-1"})
        # our 0.5 s call timeout answered, not the client's own 30 s one
        assert response.status_code == 504 and "did not answer" in response.json()["detail"]


async def test_audit_log_records_who_did_what(api: httpx.AsyncClient, ocpp_url: str, server: Stekker) -> None:
    from sqlalchemy import select

    from stekker.db.models import AuditEntry

    await api.put("/api/tokens", json={"uid": "CARD-1"})
    async with ocpp_station(ocpp_url, "CP-AUD"):
        await api.post("/api/stations/CP-AUD/remote-start", json={"token_uid": "CARD-1"})
    async with server.ctx.db() as db:
        actions = [(a.action, a.result) for a in (await db.execute(select(AuditEntry))).scalars()]
    assert actions == [
        ("token.created", "ok"),
        ("session.remote_start.requested", "sent"),
        ("session.remote_start.accepted", "Accepted"),
    ]


async def test_cli_remote_start_stop_and_lists(cli: Any, api: httpx.AsyncClient, ocpp_url: str) -> None:
    result = await cli("token", "add", "CARD-9")
    assert result.exit_code == 0, result.output
    async with ocpp_station(ocpp_url, "CP-CLI") as cp:
        result = await cli("session", "start", "CP-CLI", "--token", "CARD-9", "--evse", "1")
        assert result.exit_code == 0 and "answered Accepted" in result.output
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-9", meter_start=7, timestamp=now_iso())
        )
        result = await cli("session", "list")
        assert "CP-CLI" in result.output and "CARD-9" in result.output
        cp.remote_stop_answer = "Rejected"
        result = await cli("session", "stop", str(started.transaction_id))
        assert result.exit_code == 1 and "answered Rejected" in result.output
    result = await cli("session", "start", "CP-CLI", "--token", "CARD-9")  # its session never stopped
    assert result.exit_code == 1 and "already in a running session" in result.output
    await cli("token", "add", "CARD-8")
    result = await cli("session", "start", "CP-CLI", "--token", "CARD-8")
    assert result.exit_code == 1 and "offline" in result.output
    result = await cli("station", "list")
    assert result.exit_code == 0 and "CP-CLI" in result.output


async def test_a_201_remote_start_without_an_id_token_keeps_its_driver(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """OCPP 2.0.1 F02: after RequestStartTransaction the station may send its Started event
    with our remoteStartId and no idToken; the remote start names the driver."""
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    await api.put("/api/tokens", json={"uid": "CARD-2"})
    async with ocpp201_station(ocpp_url, "CP-F02") as cp:
        response = await api.post("/api/stations/CP-F02/remote-start", json={"token_uid": "CARD-1"})
        assert response.json()["status"] == "Accepted"
        [request] = cp.calls("RequestStartTransaction")
        await cp.call(
            call201.TransactionEvent(
                event_type="Started", timestamp=now_iso(), trigger_reason="RemoteStart", seq_no=0,
                transaction_info={"transaction_id": "tx-f02", "remote_start_id": request["remote_start_id"]},
                evse={"id": 1, "connector_id": 1},
            )
        )  # fmt: skip
        [session] = (await api.get("/api/sessions", params={"station_id": "CP-F02"})).json()
        assert (session["token_uid"], session["auth_status"]) == ("CARD-1", "Accepted")
        assert session["remote_start_id"] == request["remote_start_id"]
        assert session["started_remotely_by"] == "operator"

        # a different card presented later stops it; the remote start and its driver stay
        await cp.call(
            call201.TransactionEvent(
                event_type="Ended", timestamp=now_iso(), trigger_reason="StopAuthorized", seq_no=1,
                transaction_info={"transaction_id": "tx-f02", "stopped_reason": "Local"},
                id_token={"id_token": "CARD-2", "type": "ISO14443"},
            )
        )  # fmt: skip
    session = (await api.get(f"/api/sessions/{session['id']}")).json()
    assert (session["token_uid"], session["auth_status"]) == ("CARD-1", "Accepted")
    assert session["status"] == "completed"
    assert session["started_remotely_by"] == "operator"

    async def cdr() -> dict[str, Any] | None:
        found = (await api.get("/api/cdrs", params={"session_id": session["id"]})).json()
        return found[0] if found else None

    billed = await eventually(cdr, 5)  # the bill goes to the driver's party
    assert (billed["token_uid"], billed["party"]) == ("CARD-1", "NL-STK")


TX_PROFILE: dict[str, Any] = {
    "id": 7,
    "stack_level": 1,
    "purpose": "TxProfile",
    "kind": "Relative",
    "schedule": {"unit": "A", "periods": [{"start": 0, "limit": "16.0"}, {"start": 600, "limit": 6}]},
}


async def test_a_remote_start_carries_a_charging_profile_in_each_versions_shape(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    body = {"token_uid": "CARD-1", "evse_number": 1, "profile": TX_PROFILE}
    async with ocpp_station(ocpp_url, "CP-P16") as cp16, ocpp201_station(ocpp_url, "CP-P201") as cp201:
        response = await api.post("/api/stations/CP-P16/remote-start", json=body)
        assert response.json()["status"] == "Accepted", response.text
        response = await api.post("/api/stations/CP-P201/remote-start", json=body)
        assert response.json()["status"] == "Accepted", response.text
        [v16] = cp16.calls("RemoteStartTransaction")
        [v201] = cp201.calls("RequestStartTransaction")
    periods = [{"start_period": 0, "limit": 16}, {"start_period": 600, "limit": 6}]
    assert v16["charging_profile"] == {
        "charging_profile_id": 7,
        "stack_level": 1,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": {"charging_rate_unit": "A", "charging_schedule_period": periods},
    }
    assert v201["charging_profile"] == {
        "id": 7,
        "stack_level": 1,
        "charging_profile_purpose": "TxProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": [{"id": 7, "charging_rate_unit": "A", "charging_schedule_period": periods}],
    }


async def test_hostile_remote_start_profiles_are_refused_before_the_station_sees_them(
    api: httpx.AsyncClient, ocpp_url: str, cli: Any, tmp_path: Any
) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    schedule = TX_PROFILE["schedule"]
    hostile: list[Any] = [
        {**TX_PROFILE, "purpose": "TxDefaultProfile"},
        {**TX_PROFILE, "purpose": "ChargePointMaxProfile"},
        {**TX_PROFILE, "transaction_id": "42"},
        {**TX_PROFILE, "id": 0},
        {**TX_PROFILE, "id": 2**40},
        {**TX_PROFILE, "kind": "Recurring"},
        {**TX_PROFILE, "surprise": 1},
        {**TX_PROFILE, "schedule": {**schedule, "periods": []}},
        {**TX_PROFILE, "schedule": {**schedule, "periods": [{"start": 5, "limit": 6}]}},
        {**TX_PROFILE, "schedule": {**schedule, "periods": [{"start": 0, "limit": 6}] * 101}},
        {**TX_PROFILE, "schedule": {**schedule, "periods": [{"start": 0, "limit": -1}]}},
        {**TX_PROFILE, "schedule": {**schedule, "unit": "kW"}},
        "TxProfile",
        [TX_PROFILE],
    ]
    async with ocpp_station(ocpp_url, "CP-PX") as cp:
        for profile in hostile:
            response = await api.post(
                "/api/stations/CP-PX/remote-start", json={"token_uid": "CARD-1", "profile": profile}
            )
            assert response.status_code == 422, (profile, response.text)
        wrong_purpose = {"token_uid": "CARD-1", "profile": hostile[0]}
        response = await api.post("/api/stations/CP-PX/remote-start", json=wrong_purpose)
        assert "a remote start carries a TxProfile only" in response.text
        bad = tmp_path / "bad.json"
        bad.write_text('{"purpose": "TxDefaultProfile"')
        result = await cli("session", "start", "CP-PX", "--token", "CARD-1", "--profile", str(bad))
        assert result.exit_code == 2 and "not valid JSON" in result.output
        bad.write_text(json.dumps({**TX_PROFILE, "purpose": "TxDefaultProfile"}))
        result = await cli("session", "start", "CP-PX", "--token", "CARD-1", "--profile", str(bad))
        assert result.exit_code == 1 and "TxProfile" in result.output
        assert cp.calls("RemoteStartTransaction") == []
        good = tmp_path / "good.json"
        good.write_text(json.dumps(TX_PROFILE))
        result = await cli("session", "start", "CP-PX", "--token", "CARD-1", "--profile", str(good))
        assert result.exit_code == 0 and "answered Accepted" in result.output
        [sent] = cp.calls("RemoteStartTransaction")
        assert sent["charging_profile"]["charging_profile_id"] == 7
