"""The whole roaming scenario over loopback, asserted on the eMSP's side (issue 6, Tests):

the operator invites the eMSP; the eMSP registers with the token it got; it pushes its
driver's card; it sends START_SESSION; a simulated OCPP 1.6 station starts, charges and
reports; the eMSP receives the command result, the session PUT and PATCHes, the EVSE status;
it sends STOP_SESSION; it receives the COMPLETED session and the CDR with its total.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from ocpp.v16 import call
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stekker.app import Stekker
from tests.peers import now_iso, ocpp_station
from tests.test_cdrs import TARIFF, add_tariff
from tests.test_ocpi_credentials import serving


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


class Emsp:
    """The eMSP: versions and details for the handshake, and receivers that record every push."""

    def __init__(self) -> None:
        self.token_b = "emsp-token-B"
        self.got: list[tuple[str, str, Any]] = []
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        def ok(data: Any = None) -> JSONResponse:
            return JSONResponse({"data": data, "status_code": 1000, "timestamp": "2026-11-24T00:00:00Z"})

        async def versions(request: Request) -> JSONResponse:
            assert request.headers["authorization"] == token_header(self.token_b)["Authorization"]
            return ok([{"version": "2.2.1", "url": f"{self.base}/221"}])

        async def details(request: Request) -> JSONResponse:
            modules = ("sessions", "cdrs", "locations", "tariffs")
            endpoints = [
                {"identifier": m, "role": "RECEIVER", "url": f"{self.base}/221/{m}"} for m in modules
            ]
            return ok({"version": "2.2.1", "endpoints": endpoints})

        async def receive(request: Request) -> JSONResponse:
            body = await request.json() if request.method != "DELETE" else None
            self.got.append((request.method, request.url.path, body))
            return ok()

        pushes = ["PUT", "PATCH", "POST", "DELETE"]
        return Starlette(
            routes=[
                Route("/versions", versions),
                Route("/221", details),
                Route("/221/{rest:path}", receive, methods=pushes),
                Route("/results/{rest:path}", receive, methods=["POST"]),
            ]
        )

    async def wait_for(self, where: Callable[[str, str, Any], bool], what: str, seconds: float = 15) -> Any:
        for _ in range(int(seconds / 0.05)):
            for method, path, body in self.got:
                if where(method, path, body):
                    return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"the eMSP never got {what}; it got {[(m, p) for m, p, _ in self.got]}")


async def test_an_emsp_driver_charges_from_the_app_end_to_end(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    server.roaming_pushes.meter_interval = timedelta(0)  # every meter value becomes a PATCH
    await add_tariff(server, TARIFF, effective_from=server.ctx.now() - timedelta(days=1))
    location = (
        await api.post(
            "/api/locations",
            json={
                "name": "Plein",
                "address": "Plein 1",
                "city": "Utrecht",
                "latitude": "52.09",
                "longitude": "5.11",
            },
        )
    ).json()
    assert (
        await api.post(
            "/api/stations", json={"authentication": "none", "id": "ROAM1", "location_id": location["id"]}
        )
    ).status_code == 201
    evse = {"evse_number": 1, "evse_id": "NL*STK*EROAM1*1", "connectors": [{"connector_number": 1}]}
    assert (await api.post("/api/stations/ROAM1/evses", json=evse)).status_code == 201

    emsp = Emsp()
    async with serving(emsp):  # type: ignore[arg-type]
        # 1. the operator invites the eMSP; the eMSP registers with the token it got
        invite = {"name": "ABC Mobility", "parties": ["NL/ABC"]}
        token_a = (await api.post("/api/ocpi/partners", json=invite)).json()["registration_token"]
        credentials = {
            "token": emsp.token_b,
            "url": f"{emsp.base}/versions",
            "roles": [
                {"role": "EMSP", "business_details": {"name": "ABC"}, "party_id": "ABC", "country_code": "NL"}
            ],
        }
        answer = await api.post("/ocpi/2.2.1/credentials", json=credentials, headers=token_header(token_a))
        assert answer.status_code == 200, answer.text
        ours = token_header(answer.json()["data"]["token"])

        # 2. it pushes its driver's card
        card = {
            "country_code": "NL", "party_id": "ABC", "uid": "ABC-APP-1", "type": "APP_USER",
            "contract_id": "NL-ABC-C12345678-X", "issuer": "ABC", "valid": True, "whitelist": "ALLOWED",
            "last_updated": "2026-11-01T00:00:00Z",
        }  # fmt: skip
        put = await api.put("/ocpi/2.2.1/tokens/NL/ABC/ABC-APP-1?type=APP_USER", json=card, headers=ours)
        assert put.status_code == 200 and put.json()["status_code"] == 1000, put.text

        async with ocpp_station(ocpp_url, "ROAM1") as cp:
            await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
            # 3. START_SESSION from the app
            start = {
                "response_url": f"{emsp.base}/results/start",
                "token": card,
                "location_id": str(location["id"]),
                "evse_uid": "NL*STK*EROAM1*1",
            }
            response = await api.post("/ocpi/2.2.1/commands/START_SESSION", json=start, headers=ours)
            assert response.json()["data"]["result"] == "ACCEPTED", response.text
            result = await emsp.wait_for(lambda m, p, b: p == "/results/start", "the START_SESSION result")
            assert result["result"] == "ACCEPTED"
            assert cp.calls("RemoteStartTransaction") == [{"id_tag": "ABC-APP-1", "connector_id": 1}]

            # 4. the station starts and charges
            started = await cp.call(
                call.StartTransaction(
                    connector_id=1, id_tag="ABC-APP-1", meter_start=10_000, timestamp=now_iso()
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            tx = started.transaction_id
            await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
            await cp.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=tx,
                    meter_value=[{"timestamp": now_iso(), "sampled_value": [{"value": "15000"}]}],
                )
            )
            session_path = f"/221/sessions/NL/STK/{tx}"
            opened = await emsp.wait_for(lambda m, p, b: (m, p) == ("PUT", session_path), "the session PUT")
            assert opened["status"] in ("ACTIVE", "PENDING") and opened["cdr_token"]["uid"] == "ABC-APP-1"
            assert opened["location_id"] == str(location["id"]) and opened["evse_uid"] == "NL*STK*EROAM1*1"
            await emsp.wait_for(
                lambda m, p, b: m == "PATCH" and p == session_path and b.get("kwh") == 5, "a PATCH with 5 kWh"
            )
            await emsp.wait_for(
                lambda m, p, b: (
                    m == "PATCH" and p.endswith("/NL*STK*EROAM1*1") and b.get("status") == "CHARGING"
                ),
                "the EVSE status CHARGING",
            )

            # 5. STOP_SESSION from the app; the station stops
            stop = {"response_url": f"{emsp.base}/results/stop", "session_id": str(tx)}
            response = await api.post("/ocpi/2.2.1/commands/STOP_SESSION", json=stop, headers=ours)
            assert response.json()["data"]["result"] == "ACCEPTED", response.text
            stopped = await emsp.wait_for(lambda m, p, b: p == "/results/stop", "the STOP_SESSION result")
            assert stopped["result"] == "ACCEPTED"
            await cp.call(
                call.StopTransaction(
                    meter_stop=32_000, timestamp=now_iso(), transaction_id=tx, reason="Remote"
                )
            )

        # 6. the completed session and the CDR: 22 kWh x 0.30 = 6.60 excl., 7.986 (7.99) incl. VAT
        done = await emsp.wait_for(
            lambda m, p, b: m == "PATCH" and p == session_path and b.get("status") == "COMPLETED", "COMPLETED"
        )
        assert done["kwh"] == 22
        cdr = await emsp.wait_for(lambda m, p, b: (m, p) == ("POST", "/221/cdrs"), "the CDR")
        assert cdr["total_energy"] == 22 and cdr["session_id"] == str(tx)
        assert cdr["total_cost"]["excl_vat"] == 6.6 and cdr["total_cost"]["incl_vat"] == 7.99
        assert cdr["cdr_token"]["uid"] == "ABC-APP-1" and cdr["tariffs"][0]["id"] == "STD"
        # in order: nothing about the session reached the eMSP before its PUT, the CDR came last
        session_pushes = [(m, p) for m, p, _ in emsp.got if p in (session_path, "/221/cdrs")]
        assert session_pushes[0] == ("PUT", session_path) and session_pushes[-1] == ("POST", "/221/cdrs")
