"""`stekker session stop` by where the session runs (--station, --evse), as the README's quick
start uses it, against a real server and a real `ocpp` station; and what it says to a session
named twice, not at all, or nowhere to be found."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from tests.observe import add_token, eventually
from tests.peers import now_iso, ocpp_station


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_stop_the_session_running_on_an_evse(api: httpx.AsyncClient, ocpp_url: str, cli: Any) -> None:
    for card in ("CARD-STOP-1", "CARD-STOP-2"):
        await add_token(api, card)
    async with ocpp_station(ocpp_url, "STOPCLI") as cp:
        for connector, card in ((1, "CARD-STOP-1"), (2, "CARD-STOP-2")):
            await cp.call(
                call.StartTransaction(
                    connector_id=connector, id_tag=card, meter_start=10, timestamp=now_iso()
                )
            )

        both = await cli("session", "stop", "--station", "STOPCLI")
        assert both.exit_code == 2 and "2 sessions run on STOPCLI" in both.output, both.output
        assert cp.calls("RemoteStopTransaction") == []

        result = await cli("session", "stop", "--station", "STOPCLI", "--evse", "2")
        assert result.exit_code == 0, result.output
        assert "station STOPCLI answered Accepted" in result.output
        [asked] = await eventually(lambda: cp.calls("RemoteStopTransaction"))
        sessions = (await api.get("/api/sessions", params={"station_id": "STOPCLI"})).json()
        assert asked["transaction_id"] == next(s["id"] for s in sessions if s["evse_number"] == 2)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_stop_that_names_no_session_or_two_ways_is_refused(
    api: httpx.AsyncClient, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("stekker.cli._SESSION_APPEARS_WITHIN", 0.0)
    nothing = await cli("session", "stop")
    assert nothing.exit_code == 2 and "its id, or --station" in nothing.output
    twice = await cli("session", "stop", "7", "--station", "SIM002")
    assert twice.exit_code == 2 and "its id, or --station" in twice.output
    nowhere = await cli("session", "stop", "--station", "NO-SUCH-STATION", "--evse", "1")
    assert nowhere.exit_code == 1 and "no session is running on NO-SUCH-STATION EVSE 1" in nowhere.output
    hostile = await cli("session", "stop", "--station", "../../api/users?x=<script>", "--evse", "1")
    assert hostile.exit_code == 1 and "no session is running" in hostile.output
    not_a_number = await cli("session", "stop", "--station", "SIM002", "--evse", "one")
    assert not_a_number.exit_code == 2
