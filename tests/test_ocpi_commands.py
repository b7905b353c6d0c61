"""OCPI 2.2.1 Commands (CPO, receiver): an eMSP POSTs commands to /ocpi/2.2.1/commands and
gets its CommandResult at its own response_url, over loopback.

The eMSP is a registered partner calling us with `Authorization: Token base64(token)`; its
results endpoint is a small HTTP server in the test, which records what arrives. Stations are
`ocpp`-package peers (1.6 and 2.0.1) or raw OCPP-J sockets whose answers the test chooses.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from ocpp.v16 import call
from ocpp.v201 import call as call201
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stekker.app import Stekker
from stekker.ocpi import commands as ocpi_commands
from stekker.services import ocpi_outbox
from stekker.services.ocpi_partners import add_registered_partner
from tests.observe import eventually
from tests.peers import now_iso, ocpp_station, raw_station
from tests.peers201 import ocpp201_station
from tests.test_ocpi_credentials import serving

BASE = "/ocpi/2.2.1/commands"


# --- the eMSP's side ----------------------------------------------------------------------------


class Emsp:
    """The eMSP's commands endpoint: records every CommandResult POSTed to it."""

    def __init__(self) -> None:
        self.port = 0
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.headers: list[dict[str, str]] = []

    def app(self) -> Starlette:
        async def result(request: Request) -> JSONResponse:
            self.results.setdefault(request.url.path, []).append(await request.json())
            self.headers.append(dict(request.headers))
            return JSONResponse({"status_code": 1000, "timestamp": "2026-11-24T00:00:00Z"})

        return Starlette(routes=[Route("/results/{rest:path}", result, methods=["POST"])])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/results/{name}"

    async def result(self, name: str) -> dict[str, Any]:
        """The one CommandResult for `name`, once it arrives."""
        path = f"/results/{name}"
        got: list[dict[str, Any]] = await eventually(lambda: self.results.get(path))
        assert len(got) == 1, got
        return got[0]


@asynccontextmanager
async def emsp_endpoint() -> AsyncIterator[Emsp]:
    emsp = Emsp()
    async with serving(emsp):  # type: ignore[arg-type]
        yield emsp


def auth(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


async def partner(server: Stekker, party: str = "ABC") -> dict[str, str]:
    token = f"emsp-{party.lower()}-token"
    await add_registered_partner(
        server.ctx, name=f"eMSP {party}", country_code="NL", party_id=party, token=token,
        outgoing_token=f"our-token-at-{party}",
    )  # fmt: skip
    return auth(token)


def ocpi_token(uid: str, party: str = "ABC", **extra: Any) -> dict[str, Any]:
    return {
        "country_code": "NL", "party_id": party, "uid": uid, "type": "RFID", "contract_id": f"NL-{party}-C1",
        "issuer": f"{party} Mobility", "valid": True, "whitelist": "ALLOWED",
        "last_updated": "2026-01-01T00:00:00Z", **extra,
    }  # fmt: skip


async def add_site(api: httpx.AsyncClient, station_id: str, evses: int = 1) -> str:
    """A location with one station (EVSEs NL*STK*E{station_id}*1, *2...); returns its id."""
    body = {"name": f"Site {station_id}", "address": "Stationsplein 1", "city": "Utrecht",
            "latitude": "52.089444", "longitude": "5.110278"}  # fmt: skip
    response = await api.post("/api/locations", json=body)
    assert response.status_code == 201, response.text
    location_id = str(response.json()["id"])
    await add_station(api, station_id, location_id, evses)
    return location_id


async def add_station(api: httpx.AsyncClient, station_id: str, location_id: str, evses: int = 1) -> None:
    response = await api.post(
        "/api/stations", json={"authentication": "none", "id": station_id, "location_id": int(location_id)}
    )
    assert response.status_code == 201, response.text
    for n in range(1, evses + 1):
        evse = {
            "evse_number": n,
            "evse_id": f"NL*STK*E{station_id}*{n}",
            "connectors": [{"connector_number": 1}],
        }
        response = await api.post(f"/api/stations/{station_id}/evses", json=evse)
        assert response.status_code == 201, response.text


def start_body(emsp: Emsp, name: str, location_id: str, evse_uid: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "response_url": emsp.url(name),
        "token": ocpi_token("ABC-CARD-1"),
        "location_id": location_id,
        **extra,
    }
    if evse_uid is not None:
        body["evse_uid"] = evse_uid
    return body


async def command(
    api: httpx.AsyncClient, headers: dict[str, str], name: str, body: Any
) -> tuple[int, dict[str, Any]]:
    response = await api.post(f"{BASE}/{name}", json=body, headers=headers)
    return response.status_code, response.json()


def accepted(status: int, answer: dict[str, Any], server: Stekker) -> bool:
    assert status == 200 and answer["status_code"] == 1000, answer
    assert answer["data"]["timeout"] == int(server.settings.call_timeout) + ocpi_commands.RESULT_MARGIN
    return bool(answer["data"]["result"] == "ACCEPTED")


# --- tests --------------------------------------------------------------------------------------


async def test_start_and_stop_a_session_on_a_16_station(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    headers = await partner(server)
    location_id = await add_site(api, "C1")
    async with emsp_endpoint() as emsp, ocpp_station(ocpp_url, "C1") as cp:
        status, answer = await command(
            api,
            headers,
            "START_SESSION",
            start_body(emsp, "start/1", location_id, "NL*STK*EC1*1", connector_id="1"),
        )
        assert accepted(status, answer, server)
        result = await emsp.result("start/1")
        assert result["result"] == "ACCEPTED" and "Accepted" in result["message"][0]["text"]
        assert cp.calls("RemoteStartTransaction") == [{"id_tag": "ABC-CARD-1", "connector_id": 1}]
        # delivered as the eMSP expects: its own token, our party
        sent = emsp.headers[0]
        assert sent["authorization"] == "Token " + base64.b64encode(b"our-token-at-ABC").decode()
        assert (sent["ocpi-to-country-code"], sent["ocpi-to-party-id"]) == ("NL", "ABC")

        # the token was stored as the partner's, so the station's start is authorized
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="ABC-CARD-1", meter_start=1000, timestamp=now_iso())
        )
        assert started.id_tag_info["status"] == "Accepted"
        session = (await api.get(f"/api/sessions/{started.transaction_id}")).json()
        assert session["started_remotely_by"] == "ocpi:eMSP ABC"

        body = {"response_url": emsp.url("stop/1"), "session_id": str(started.transaction_id)}
        status, answer = await command(api, headers, "STOP_SESSION", body)
        assert accepted(status, answer, server)
        assert (await emsp.result("stop/1"))["result"] == "ACCEPTED"
        assert cp.calls("RemoteStopTransaction") == [{"transaction_id": started.transaction_id}]

    rows = await ocpi_outbox.list_items(server.ctx, status=None, partner_id=None, limit=10)
    assert (
        sorted((r["kind"], r["method"], r["status"]) for r in rows)
        == [("commands.result", "POST", "delivered")] * 2
    )
    assert {r["url"] for r in rows} == {emsp.url("start/1"), emsp.url("stop/1")}


async def test_station_refusals_and_offline_become_results(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    headers = await partner(server)
    location_id = await add_site(api, "C2")
    async with emsp_endpoint() as emsp:
        async with ocpp_station(ocpp_url, "C2") as cp:
            cp.remote_start_answer = "Rejected"
            status, answer = await command(
                api, headers, "START_SESSION", start_body(emsp, "start/rejected", location_id, "NL*STK*EC2*1")
            )
            assert accepted(status, answer, server)
            assert (await emsp.result("start/rejected"))["result"] == "REJECTED"

            # stop: the station refuses
            cp.remote_stop_answer = "Rejected"
            started = await cp.call(
                call.StartTransaction(connector_id=1, id_tag="ABC-CARD-1", meter_start=0, timestamp=now_iso())
            )
            body = {"response_url": emsp.url("stop/rejected"), "session_id": str(started.transaction_id)}
            assert accepted(*await command(api, headers, "STOP_SESSION", body), server)
            assert (await emsp.result("stop/rejected"))["result"] == "REJECTED"

        # the station is gone: the result says so at once, not after the call timeout
        loop_started = datetime.now(UTC)
        status, answer = await command(
            api, headers, "START_SESSION", start_body(emsp, "start/offline", location_id, "NL*STK*EC2*1")
        )
        assert accepted(status, answer, server)
        result = await emsp.result("start/offline")
        assert result["result"] == "FAILED" and "offline" in result["message"][0]["text"]
        assert datetime.now(UTC) - loop_started < timedelta(seconds=server.settings.call_timeout)


async def test_station_timeout_is_a_timeout_result(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    server.settings.call_timeout = 0.5
    headers = await partner(server)
    location_id = await add_site(api, "C3")
    async with emsp_endpoint() as emsp, raw_station(ocpp_url, "C3") as st:
        st.silent = True
        status, answer = await command(
            api, headers, "START_SESSION", start_body(emsp, "start/mute", location_id, "NL*STK*EC3*1")
        )
        assert status == 200 and answer["data"]["result"] == "ACCEPTED"
        assert (await emsp.result("start/mute"))["result"] == "TIMEOUT"


async def test_sessions_that_are_not_yours_or_not_known(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    ours = await partner(server, "ABC")
    theirs = await partner(server, "XYZ")
    location_id = await add_site(api, "C4")
    async with emsp_endpoint() as emsp, ocpp_station(ocpp_url, "C4") as cp:
        assert accepted(
            *await command(api, ours, "START_SESSION", start_body(emsp, "s", location_id, "NL*STK*EC4*1")),
            server,
        )
        await emsp.result("s")
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="ABC-CARD-1", meter_start=0, timestamp=now_iso())
        )
        session_id = str(started.transaction_id)

        for unknown in ("999999", "abc", "0", "99999999999"):
            body = {"response_url": emsp.url("u"), "session_id": unknown}
            status, answer = await command(api, ours, "STOP_SESSION", body)
            assert status == 200 and answer["data"]["result"] == "UNKNOWN_SESSION", unknown

        # another eMSP may not stop our driver's session, nor learn more than "not yours"
        body = {"response_url": emsp.url("x"), "session_id": session_id}
        status, answer = await command(api, theirs, "STOP_SESSION", body)
        assert status == 200 and answer["data"]["result"] == "REJECTED"
        assert "not one of your drivers" in answer["data"]["message"][0]["text"]
        # nor unlock the connector it charges on
        body = {"response_url": emsp.url("x"), "location_id": location_id, "evse_uid": "NL*STK*EC4*1",
                "connector_id": "1"}  # fmt: skip
        status, answer = await command(api, theirs, "UNLOCK_CONNECTOR", body)
        assert answer["data"]["result"] == "REJECTED"
        # nor start with our party's token
        status, answer = await command(api, theirs, "START_SESSION", start_body(emsp, "x", location_id, None))
        assert (
            answer["data"]["result"] == "REJECTED"
            and "not one of yours" in answer["data"]["message"][0]["text"]
        )
        assert cp.calls("RemoteStopTransaction") == [] and len(cp.calls("RemoteStartTransaction")) == 1

        await cp.call(
            call.StopTransaction(meter_stop=10, timestamp=now_iso(), transaction_id=started.transaction_id)
        )
        body = {"response_url": emsp.url("late"), "session_id": session_id}
        status, answer = await command(api, ours, "STOP_SESSION", body)
        assert (
            answer["data"]["result"] == "REJECTED" and "not running" in answer["data"]["message"][0]["text"]
        )
    assert emsp.results.keys() == {"/results/s"}  # nothing queued for refused commands


async def test_unlock_reserve_and_cancel(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> None:
    headers = await partner(server)
    location_id = await add_site(api, "C5", evses=2)
    expiry = (datetime.now(UTC) + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
    async with emsp_endpoint() as emsp, raw_station(ocpp_url, "C5") as st:
        st.answers["UnlockConnector"] = {"status": "Unlocked"}
        body = {"response_url": emsp.url("unlock"), "location_id": location_id, "evse_uid": "nl*stk*ec5*2",
                "connector_id": "1"}  # fmt: skip
        assert accepted(*await command(api, headers, "UNLOCK_CONNECTOR", body), server)
        assert (await emsp.result("unlock"))["result"] == "ACCEPTED"
        assert [f[3] for f in st.server_calls if f[2] == "UnlockConnector"] == [{"connectorId": 2}]

        reserve = {"response_url": emsp.url("reserve/1"), "token": ocpi_token("ABC-CARD-9"),
                   "expiry_date": expiry, "reservation_id": "R-1", "location_id": location_id,
                   "evse_uid": "NL*STK*EC5*1"}  # fmt: skip
        st.answers["ReserveNow"] = {"status": "Occupied"}
        assert accepted(*await command(api, headers, "RESERVE_NOW", reserve), server)
        assert (await emsp.result("reserve/1"))["result"] == "EVSE_OCCUPIED"
        st.answers["ReserveNow"] = {"status": "Accepted"}
        assert accepted(
            *await command(api, headers, "RESERVE_NOW", {**reserve, "response_url": emsp.url("reserve/2")}),
            server,
        )
        assert (await emsp.result("reserve/2"))["result"] == "ACCEPTED"
        sent = [f[3] for f in st.server_calls if f[2] == "ReserveNow"]
        # the eMSP's id never reaches the station; the same id again replaces the reservation
        assert sent[0]["reservationId"] == sent[1]["reservationId"] and sent[0]["idTag"] == "ABC-CARD-9"
        assert sent[0]["connectorId"] == 1

        # another eMSP cannot cancel it
        other = await partner(server, "XYZ")
        cancel = {"response_url": emsp.url("cancel/x"), "reservation_id": "R-1"}
        status, answer = await command(api, other, "CANCEL_RESERVATION", cancel)
        assert status == 200 and answer["data"]["result"] == "REJECTED"

        st.answers["CancelReservation"] = {"status": "Rejected"}  # the station no longer holds it
        cancel = {"response_url": emsp.url("cancel/1"), "reservation_id": "r-1"}
        assert accepted(*await command(api, headers, "CANCEL_RESERVATION", cancel), server)
        assert (await emsp.result("cancel/1"))["result"] == "UNKNOWN_RESERVATION"
        st.answers["CancelReservation"] = {"status": "Accepted"}
        cancel = {"response_url": emsp.url("cancel/2"), "reservation_id": "R-1"}
        assert accepted(*await command(api, headers, "CANCEL_RESERVATION", cancel), server)
        assert (await emsp.result("cancel/2"))["result"] == "ACCEPTED"
        assert [f[3] for f in st.server_calls if f[2] == "CancelReservation"][-1] == {
            "reservationId": sent[0]["reservationId"]
        }

        # a 1.6 station's answers outside its schema are a failure, not a crash
        st.answers["UnlockConnector"] = {"status": "Bogus"}
        body["response_url"] = emsp.url("unlock/bogus")
        assert accepted(*await command(api, headers, "UNLOCK_CONNECTOR", body), server)
        assert (await emsp.result("unlock/bogus"))["result"] == "FAILED"


async def test_start_session_on_a_201_station(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> None:
    headers = await partner(server)
    location_id = await add_site(api, "C6")
    async with emsp_endpoint() as emsp, ocpp201_station(ocpp_url, "C6") as cp:
        # one station at the location: no EVSE named, the station chooses
        assert accepted(
            *await command(api, headers, "START_SESSION", start_body(emsp, "s", location_id, None)), server
        )
        assert (await emsp.result("s"))["result"] == "ACCEPTED"
        [request] = cp.calls("RequestStartTransaction")
        assert (
            request["id_token"] == {"id_token": "ABC-CARD-1", "type": "ISO14443"} and "evse_id" not in request
        )
        await cp.call(
            call201.TransactionEvent(
                event_type="Started", timestamp=now_iso(), trigger_reason="RemoteStart", seq_no=0,
                transaction_info={"transaction_id": "tx-1", "remote_start_id": request["remote_start_id"]},
                evse={"id": 1, "connector_id": 1}, id_token={"id_token": "ABC-CARD-1", "type": "ISO14443"},
            )
        )  # fmt: skip
        [session] = (await api.get("/api/sessions", params={"station_id": "C6"})).json()
        assert session["started_remotely_by"] == "ocpi:eMSP ABC" and session["auth_status"] == "Accepted"

        body = {"response_url": emsp.url("stop"), "session_id": str(session["id"])}
        assert accepted(*await command(api, headers, "STOP_SESSION", body), server)
        assert (await emsp.result("stop"))["result"] == "ACCEPTED"
        assert cp.calls("RequestStopTransaction") == [{"transaction_id": "tx-1"}]


async def test_malformed_and_unauthorized_requests(server: Stekker, api: httpx.AsyncClient) -> None:
    headers = await partner(server)
    location_id = await add_site(api, "C7")
    good = {"response_url": "https://emsp.example/results/1", "token": ocpi_token("ABC-CARD-1"),
            "location_id": location_id, "evse_uid": "NL*STK*EC7*1"}  # fmt: skip
    bad_bodies: list[tuple[str, Any]] = [
        ("START_SESSION", {k: v for k, v in good.items() if k != "response_url"}),
        ("START_SESSION", {**good, "response_url": "not a url"}),
        ("START_SESSION", {**good, "response_url": "ftp://emsp.example/x"}),
        ("START_SESSION", {**good, "response_url": "https://" + "a" * 300 + ".example/"}),
        ("START_SESSION", {**good, "location_id": 12}),
        ("START_SESSION", {**good, "token": {"uid": "X"}}),
        ("START_SESSION", {**good, "token": ocpi_token("X" * 37)}),
        ("START_SESSION", {**good, "connector_id": "1", "evse_uid": None}),
        ("START_SESSION", {**good, "evse_uid": "É" * 3}),
        ("START_SESSION", [good]),
        ("START_SESSION", "text"),
        ("STOP_SESSION", {"response_url": "https://emsp.example/r"}),
        ("STOP_SESSION", {"response_url": "https://emsp.example/r", "session_id": 5}),
        ("UNLOCK_CONNECTOR", {"response_url": "https://emsp.example/r", "location_id": location_id}),
        ("RESERVE_NOW", {**good, "reservation_id": "R", "expiry_date": "tomorrow"}),
        ("RESERVE_NOW", {**good, "reservation_id": "R", "expiry_date": "2020-01-01T00:00:00Z"}),
        ("CANCEL_RESERVATION", {"response_url": "https://emsp.example/r", "reservation_id": ""}),
    ]
    for name, body in bad_bodies:
        status, answer = await command(api, headers, name, body)
        assert (status, answer["status_code"]) == (200, 2001), (name, body, answer)
        assert "data" not in answer
    response = await api.post(f"{BASE}/START_SESSION", content=b"{not json", headers=headers)
    assert (response.status_code, response.json()["status_code"]) == (400, 2001)

    for unknown in ("FLY_AWAY", "start_session", "X" * 64):
        status, answer = await command(api, headers, unknown, good)
        assert (status, answer["status_code"]) == (404, 2001), unknown
    assert (await api.get(f"{BASE}/START_SESSION", headers=headers)).status_code == 405

    # unknown places: 2003
    for where in ({"location_id": "999"}, {"location_id": "x"}, {"evse_uid": "NL*STK*ENOPE*1"},
                  {"evse_uid": "NL*STK*EC7*1", "connector_id": "9"}):  # fmt: skip
        status, answer = await command(api, headers, "START_SESSION", {**good, **where})
        assert (status, answer["status_code"]) == (404, 2003), where

    # no or a wrong token: 401, whatever the body
    for bad_auth in ({}, auth("nope"), {"Authorization": "Bearer x"}):
        status, answer = await command(api, bad_auth, "START_SESSION", good)
        assert (status, answer["status_code"]) == (401, 2000), bad_auth
    status, answer = await command(api, {}, "START_SESSION", "garbage")
    assert status == 401


async def test_several_stations_need_an_evse(server: Stekker, api: httpx.AsyncClient) -> None:
    headers = await partner(server)
    location_id = await add_site(api, "C8")
    await add_station(api, "C9", location_id)
    body = {
        "response_url": "https://emsp.example/r",
        "token": ocpi_token("ABC-CARD-1"),
        "location_id": location_id,
    }
    status, answer = await command(api, headers, "START_SESSION", body)
    assert status == 200 and answer["data"]["result"] == "REJECTED"
    assert "name the EVSE" in answer["data"]["message"][0]["text"]


async def test_an_app_users_start_session_is_its_emsps_real_time_authorization(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """An app user's token (whitelist NEVER: only the eMSP decides) may charge when its own eMSP
    sends START_SESSION for it: the command is the eMSP's decision, for this station, for 15
    minutes. The same token presented at another station on its own stays refused."""
    headers = await partner(server)
    location_id = await add_site(api, "C9")
    await add_site(api, "C10")
    app_user = ocpi_token("APP-USER-7", type="APP_USER", whitelist="NEVER")
    async with emsp_endpoint() as emsp, ocpp_station(ocpp_url, "C9") as cp:
        body = {**start_body(emsp, "start/9", location_id, "NL*STK*EC9*1"), "token": app_user}
        status, answer = await command(api, headers, "START_SESSION", body)
        assert accepted(status, answer, server)
        assert (await emsp.result("start/9"))["result"] == "ACCEPTED"
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="APP-USER-7", meter_start=0, timestamp=now_iso())
        )
        assert started.id_tag_info["status"] == "Accepted"
    async with ocpp_station(ocpp_url, "C10") as other:
        refused = await other.call(call.Authorize(id_tag="APP-USER-7"))
        assert refused.id_tag_info["status"] == "Invalid"
