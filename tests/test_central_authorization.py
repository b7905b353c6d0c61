"""Requirement 76: the backoffice's decision wins; the local list is only an offline fallback."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from tests.observe import eventually
from tests.peers import now_iso, ocpp_station, raw_station


async def test_token_decisions_are_central_and_recorded(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "GOOD", "group_id": "FLEET-7"})
    await api.put("/api/tokens", json={"uid": "BLOCKED", "status": "blocked"})
    await api.put("/api/tokens", json={"uid": "OLD", "expires_at": "2020-01-01T00:00:00Z"})
    async with raw_station(ocpp_url, "CP-A") as st:
        answers = {
            tag: (await st.ok("Authorize", {"idTag": tag}))["idTagInfo"]
            for tag in ("GOOD", "BLOCKED", "OLD", "NOBODY")
        }
        assert {t: a["status"] for t, a in answers.items()} == {
            "GOOD": "Accepted",
            "BLOCKED": "Blocked",
            "OLD": "Expired",
            "NOBODY": "Invalid",
        }
        assert answers["GOOD"]["parentIdTag"] == "FLEET-7"
        first = await st.ok(
            "StartTransaction", {"connectorId": 1, "idTag": "GOOD", "meterStart": 10, "timestamp": now_iso()}
        )
        assert first["idTagInfo"] == {"status": "Accepted", "parentIdTag": "FLEET-7"}
        # the same card on the second connector while the first session runs
        second = await st.ok(
            "StartTransaction", {"connectorId": 2, "idTag": "GOOD", "meterStart": 20, "timestamp": now_iso()}
        )
        assert second["idTagInfo"]["status"] == "ConcurrentTx"
        # presenting the card again (to stop) is not refused
        assert (await st.ok("Authorize", {"idTag": "GOOD"}))["idTagInfo"]["status"] == "Accepted"


async def _token_id(api: httpx.AsyncClient, uid: str) -> int:
    [token] = (await api.get("/api/tokens", params={"uid": uid})).json()
    return int(token["id"])


@pytest.mark.parametrize("settings_overrides", [{"configure_stations_on_boot": True}])
async def test_boot_configures_station_and_syncs_local_list(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    await api.put("/api/tokens", json={"uid": "CARD-2", "status": "blocked"})
    await api.put("/api/tokens", json={"uid": "EMAID-NL-STK-0123456789"})  # 2.0.1 only: over 20 chars
    async with ocpp_station(ocpp_url, "CP-CFG") as cp:
        await eventually(lambda: bool(cp.calls("SendLocalList")))
        assert cp.configuration["LocalPreAuthorize"] == "false"
        assert cp.configuration["StopTransactionOnInvalidId"] == "true"
        assert cp.configuration["LocalAuthorizeOffline"] == "true"
        assert cp.configuration["AuthorizationCacheEnabled"] == "false"
        [full] = cp.calls("SendLocalList")
        # blocked cards are not listed, nor tokens too long for a 1.6 idTag
        assert full["type"] == "Full" and set(cp.local_list) == {"CARD-1"}
        version = full["version"]

        # a token changes while the station is online: a differential update follows
        await api.post(f"/api/tokens/{await _token_id(api, 'CARD-1')}/block")
        await eventually(lambda: len(cp.calls("SendLocalList")) == 2)
        diff = cp.calls("SendLocalList")[1]
        assert diff["type"] == "Differential" and diff["version"] == version + 1
        assert cp.local_list["CARD-1"]["status"] == "Blocked"
        await eventually(
            lambda: _station_version(api, "CP-CFG", version + 1)  # the version the station now holds
        )


async def _station_version(api: httpx.AsyncClient, station_id: str, expected: int) -> bool:
    station = (await api.get(f"/api/stations/{station_id}")).json()
    return bool(station["local_list_version"] == expected)


@pytest.mark.parametrize("settings_overrides", [{"configure_stations_on_boot": True}])
async def test_station_with_current_list_gets_no_resend(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    async with ocpp_station(ocpp_url, "CP-CUR") as cp:
        await eventually(lambda: bool(cp.calls("SendLocalList")))
        held = cp.local_list_version
    async with ocpp_station(ocpp_url, "CP-CUR") as cp2:
        cp2.local_list_version = held
        await eventually(lambda: bool(cp2.calls("GetLocalListVersion")))
        await asyncio.sleep(0.3)
        assert cp2.calls("SendLocalList") == []


async def test_offline_start_on_rejected_token_is_stopped(api: httpx.AsyncClient, ocpp_url: str) -> None:
    """The station was offline and let a card through from its cache; we say Invalid, and
    when it keeps charging past the grace period we send RemoteStopTransaction."""
    await api.put("/api/tokens", json={"uid": "STOLEN", "status": "blocked"})
    async with ocpp_station(ocpp_url, "CP-OFFL") as cp:
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="STOLEN", meter_start=100, timestamp=now_iso())
        )
        assert started.id_tag_info["status"] == "Blocked"
        await eventually(lambda: bool(cp.calls("RemoteStopTransaction")))
        assert cp.calls("RemoteStopTransaction") == [{"transaction_id": started.transaction_id}]
        await cp.call(
            call.StopTransaction(
                meter_stop=150, timestamp=now_iso(), transaction_id=started.transaction_id, reason="Remote"
            )
        )
    [session] = (await api.get("/api/sessions")).json()
    assert session["auth_status"] == "Blocked" and session["status"] == "completed"


async def test_station_that_stops_by_itself_is_not_remote_stopped(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with ocpp_station(ocpp_url, "CP-GOODBOY") as cp:
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="UNKNOWN", meter_start=100, timestamp=now_iso())
        )
        assert started.id_tag_info["status"] == "Invalid"
        await cp.call(
            call.StopTransaction(
                meter_stop=100,
                timestamp=now_iso(),
                transaction_id=started.transaction_id,
                reason="DeAuthorized",
            )
        )
        await asyncio.sleep(1.0)  # past the 0.5 s grace period of the test settings
        assert cp.calls("RemoteStopTransaction") == []


async def test_authorization_history_is_kept(api: httpx.AsyncClient, ocpp_url: str, server: Any) -> None:
    from sqlalchemy import select

    from stekker.db.models import AuthorizationRequest

    async with raw_station(ocpp_url, "CP-HIST") as st:
        await st.ok("Authorize", {"idTag": "NOBODY"})
    async with server.ctx.db() as db:
        rows = (await db.execute(select(AuthorizationRequest))).scalars().all()
    assert [(r.station_id, r.token_uid, r.kind, r.result) for r in rows] == [
        ("CP-HIST", "NOBODY", "Authorize", "Invalid")
    ]
    assert rows[0].reason == "unknown token"
