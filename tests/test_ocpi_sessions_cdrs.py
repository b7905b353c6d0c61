"""OCPI 2.2.1 Sessions and CDRs (CPO, sender) from an eMSP's side, over loopback: a simulated
OCPP 1.6 station charges with a roaming partner's card; the partner reads the live session
(kwh, cost), then the completed one and its CDR, and receives the pushes; another eMSP sees
none of it. The session and its prices are those of tests/test_cdrs.py.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from ocpp.v16 import call
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stekker.app import Stekker
from stekker.db.models import Token
from stekker.ocpi import sessions as ocpi_sessions
from stekker.ocpi.session_objects import ChargingPreferencesResponse, OcpiSession
from stekker.services import ocpi_partners
from tests.observe import eventually
from tests.peers import Station, ocpp_station
from tests.test_cdrs import EXPECTED, TARIFF, add_tariff, base_time, iso
from tests.test_ocpi_credentials import serving

TOKEN_A, TOKEN_B = "partner-a-token", "partner-b-token"
CARD = "ROAM-0001"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


async def partners(server: Stekker, endpoints: dict[str, str] | None = None) -> tuple[int, int]:
    """Partner A (NL-AAA, also NL-ABC, the card's eMSP) and partner B (NL-BBB)."""
    a = await ocpi_partners.add_registered_partner(
        server.ctx, name="A", country_code="NL", party_id="AAA", token=TOKEN_A,
        extra_roles=[("NL", "ABC", "EMSP")], endpoints=endpoints, outgoing_token="to-a",
    )  # fmt: skip
    b = await ocpi_partners.add_registered_partner(
        server.ctx, name="B", country_code="NL", party_id="BBB", token=TOKEN_B,
        endpoints={k: v.replace("/a/", "/b/") for k, v in (endpoints or {}).items()}, outgoing_token="to-b",
    )  # fmt: skip
    return a, b


async def partner_card(server: Stekker, partner_id: int, uid: str = CARD) -> None:
    """A card partner A pushed to us (its eMSP party NL-ABC, whitelist ALLOWED)."""
    async with server.ctx.db() as db, db.begin():
        db.add(
            Token(
                uid=uid, type="RFID", contract_id="NL-ABC-C00000001-X", country_code="NL", party_id="ABC",
                status="active", ocpi_partner_id=partner_id, whitelist="ALLOWED",
                ocpi_last_updated=datetime.now(UTC),
            )
        )  # fmt: skip


async def listing(api: httpx.AsyncClient, module: str, token: str, **params: Any) -> httpx.Response:
    response = await api.get(f"/ocpi/2.2.1/{module}", headers=auth(token), params=params)
    assert response.status_code == 200, response.text
    assert response.json()["status_code"] == 1000
    return response


async def items(api: httpx.AsyncClient, module: str, token: str, **params: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await listing(api, module, token, **params)).json()["data"]
    return data


class Charging:
    """The session of tests/test_cdrs.py, step by step on one station connection."""

    def __init__(self, cp: Station, base: datetime, card: str = CARD) -> None:
        self.cp, self.base, self.card, self.tx = cp, base, card, 0

    async def status(self, minutes: float, value: str) -> None:
        await self.cp.call(
            call.StatusNotification(
                connector_id=1, error_code="NoError", status=value, timestamp=iso(self.base, minutes)
            )
        )

    async def meter(self, minutes: float, wh: int) -> None:
        value = [{"value": str(wh), "unit": "Wh", "measurand": "Energy.Active.Import.Register"}]
        await self.cp.call(
            call.MeterValues(
                connector_id=1,
                transaction_id=self.tx,
                meter_value=[{"timestamp": iso(self.base, minutes), "sampled_value": value}],
            )
        )

    async def start(self) -> int:
        await self.status(-1, "Preparing")
        started = await self.cp.call(
            call.StartTransaction(
                connector_id=1, id_tag=self.card, meter_start=1_000_000, timestamp=iso(self.base, 0)
            )
        )
        self.tx = int(started.transaction_id)
        await self.status(0, "Charging")
        await self.meter(30, 1_011_000)
        return self.tx

    async def finish(self) -> None:
        await self.meter(60, 1_022_000)
        await self.status(60, "SuspendedEV")
        await self.meter(90, 1_022_000)
        await self.cp.call(
            call.StopTransaction(
                meter_stop=1_022_000, timestamp=iso(self.base, 120), transaction_id=self.tx,
                reason="EVDisconnected", id_tag=self.card,
            )
        )  # fmt: skip
        await self.status(120, "Finishing")


async def test_partner_follows_its_drivers_session_and_cdr_and_nobody_else_does(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    a, _b = await partners(server)
    await partner_card(server, a)
    async with ocpp_station(ocpp_url, "OCPIS1") as cp:
        charging = Charging(cp, base)
        tx = await charging.start()

        [live] = await items(api, "sessions", TOKEN_A)
        OcpiSession.model_validate(live)  # our own wire model accepts what we send
        assert live["id"] == str(tx) and live["status"] == "ACTIVE"
        assert live["country_code"] == "NL" and live["party_id"] == "STK"
        assert live["kwh"] == 11 and "end_date_time" not in live
        # charging all along so far: 11 kWh x 0.30, no parking
        assert live["total_cost"] == {"excl_vat": 3.3, "incl_vat": 3.99}  # 3.993, billed in cents
        assert live["cdr_token"] == {
            "country_code": "NL", "party_id": "ABC", "uid": CARD, "type": "RFID",
            "contract_id": "NL-ABC-C00000001-X",
        }  # fmt: skip
        assert live["auth_method"] == "WHITELIST"  # decided on the copy partner A pushed us
        assert live["evse_uid"] == "NL*STK*EOCPIS1*1" and live["connector_id"] == "1"
        assert live["currency"] == "EUR" and live["start_date_time"] == iso(base, 0)
        assert await items(api, "sessions", TOKEN_B) == []

        await charging.finish()

    async def completed() -> dict[str, Any] | None:
        [row] = await items(api, "sessions", TOKEN_A)
        return row if row["status"] == "COMPLETED" else None

    done = await eventually(completed)
    assert done["kwh"] == 22 and done["end_date_time"] == iso(base, 120)
    [cdr] = await eventually(lambda: items(api, "cdrs", TOKEN_A))
    assert cdr["total_cost"] == EXPECTED and cdr["session_id"] == str(tx)
    assert cdr["cdr_token"]["country_code"] == "NL" and cdr["cdr_token"]["party_id"] == "ABC"
    assert cdr["auth_method"] == "WHITELIST"
    # the completed session shows the bill
    [done] = await items(api, "sessions", TOKEN_A)
    assert done["total_cost"] == EXPECTED
    assert [p["dimensions"][0]["type"] for p in done["charging_periods"]] == [
        "ENERGY", "PARKING_TIME", "PARKING_TIME"
    ]  # fmt: skip
    assert await items(api, "sessions", TOKEN_B) == []
    assert await items(api, "cdrs", TOKEN_B) == []


async def test_pagination_and_date_filters(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    a, _b = await partners(server)
    await partner_card(server, a)
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with ocpp_station(ocpp_url, "OCPIS2") as cp:
        for n in range(3):
            charging = Charging(cp, base + timedelta(hours=3 * n))
            await charging.start()
            await charging.finish()
    await eventually(lambda: _count(api, "cdrs", 3))

    for module in ("sessions", "cdrs"):
        first = await listing(api, module, TOKEN_A, limit=2)
        assert first.headers["X-Total-Count"] == "3" and first.headers["X-Limit"] == "2"
        assert len(first.json()["data"]) == 2
        link = first.headers["Link"]
        assert link.endswith('>; rel="next"') and "offset=2" in link
        following = await api.get(link[1 : link.index(">")], headers=auth(TOKEN_A))
        assert following.status_code == 200 and len(following.json()["data"]) == 1
        assert "Link" not in following.headers
        ids = [o["id"] for o in first.json()["data"] + following.json()["data"]]
        assert len(set(ids)) == 3
        # last_updated filters: date_from inclusive, date_to exclusive
        assert len(await items(api, module, TOKEN_A, date_from=before.isoformat())) == 3
        later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        assert await items(api, module, TOKEN_A, date_from=later) == []
        assert await items(api, module, TOKEN_A, date_to=before.isoformat()) == []
        assert (await listing(api, module, TOKEN_B)).headers["X-Total-Count"] == "0"
        # a limit above ours is capped, and says so
        assert (await listing(api, module, TOKEN_A, limit=5000)).headers["X-Limit"] == "100"


async def _count(api: httpx.AsyncClient, module: str, n: int) -> bool:
    return len(await items(api, module, TOKEN_A)) >= n


async def test_charging_preferences_and_hostile_input(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    a, _b = await partners(server)
    await partner_card(server, a)
    async with ocpp_station(ocpp_url, "OCPIS3") as cp:
        tx = await Charging(cp, base).start()

        prefs = {"profile_type": "FAST", "departure_time": "2030-01-01T10:00:00Z", "energy_need": 20}
        for path in (f"/ocpi/2.2.1/sessions/{tx}/charging_preferences",
                     f"/ocpi/2.2.1/sessions/NL/STK/{tx}/charging_preferences"):  # fmt: skip
            # our EVSEs do not advertise CHARGING_PREFERENCES_CAPABLE: OCPI says HTTP 404
            mine = await api.put(path, headers=auth(TOKEN_A), json=prefs)
            assert mine.status_code == 404 and mine.json()["status_code"] == 2001
            assert "CHARGING_PREFERENCES_CAPABLE" in mine.json()["status_message"]
            # another eMSP's driver's session does not exist for B
            other = await api.put(path, headers=auth(TOKEN_B), json=prefs)
            assert other.status_code == 404 and other.json()["status_code"] == 2001
            assert "unknown session" in other.json()["status_message"]

        hostile = {
            "/ocpi/2.2.1/sessions/999999/charging_preferences": prefs,
            "/ocpi/2.2.1/sessions/abc/charging_preferences": prefs,
            "/ocpi/2.2.1/sessions/-1/charging_preferences": prefs,
            f"/ocpi/2.2.1/sessions/{'9' * 30}/charging_preferences": prefs,
            f"/ocpi/2.2.1/sessions/{'x' * 40}/charging_preferences": prefs,
            f"/ocpi/2.2.1/sessions/NL/XXX/{tx}/charging_preferences": prefs,
            f"/ocpi/2.2.1/sessions/NLD/STK/{tx}/charging_preferences": prefs,
        }
        for path, body in hostile.items():
            response = await api.put(path, headers=auth(TOKEN_A), json=body)
            assert response.status_code in (200, 404), (path, response.text)
            assert response.json()["status_code"] == 2001, (path, response.text)
        bad_bodies: list[Any] = [
            {"profile_type": "TURBO"},
            {"energy_need": 5},
            {"profile_type": "FAST", "energy_need": -1},
            {"profile_type": "FAST", "departure_time": "tomorrow"},
            [],
            "FAST",
        ]
        for body in bad_bodies:
            response = await api.put(
                f"/ocpi/2.2.1/sessions/{tx}/charging_preferences", headers=auth(TOKEN_A), json=body
            )
            assert response.status_code == 200 and response.json()["status_code"] == 2001, body
        not_json = await api.put(
            f"/ocpi/2.2.1/sessions/{tx}/charging_preferences",
            headers={**auth(TOKEN_A), "Content-Type": "application/json"},
            content=b"{not json",
        )
        assert not_json.status_code == 400 and not_json.json()["status_code"] == 2001

    for module in ("sessions", "cdrs"):
        url = f"/ocpi/2.2.1/{module}"
        for headers in ({}, {"Authorization": "Token bm9wZQ=="}, {"Authorization": "Bearer x"}):
            response = await api.get(url, headers=headers)
            assert response.status_code == 401 and response.json()["status_code"] == 2000
        for params in (
            {"limit": "0"}, {"limit": "abc"}, {"offset": "-1"}, {"date_from": "yesterday"},
            {"date_from": "2030-01-02T00:00:00Z", "date_to": "2030-01-01T00:00:00Z"},
        ):  # fmt: skip
            response = await api.get(url, headers=auth(TOKEN_A), params=params)
            assert response.status_code == 200 and response.json()["status_code"] == 2001, params


def test_preferences_answer_when_an_evse_takes_them() -> None:
    """With the capability advertised, preferences we cannot act on are NOT_POSSIBLE."""
    answer = ocpi_sessions.preferences_answer
    assert answer(capable=False, running=True) is None
    assert answer(capable=True, running=True) is ChargingPreferencesResponse.NOT_POSSIBLE
    assert answer(capable=True, running=False) is ChargingPreferencesResponse.NOT_POSSIBLE


# --- pushes ----------------------------------------------------------------------------------


class Emsp:
    """An eMSP's receiver endpoints: records every push it gets and answers OCPI success."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str, Any, str]] = []
        self.port = 0

    def app(self) -> Starlette:
        async def receive(request: Request) -> JSONResponse:
            body = await request.json() if await request.body() else None
            self.got.append(
                (request.method, request.url.path, body, request.headers.get("authorization", ""))
            )
            return JSONResponse({"status_code": 1000, "timestamp": "2030-01-01T00:00:00Z"})

        methods = ["GET", "PUT", "PATCH", "POST"]
        return Starlette(routes=[Route("/{rest:path}", receive, methods=methods)])


async def test_pushes_reach_only_the_drivers_emsp_in_order(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    emsp = Emsp()
    async with serving(emsp):  # type: ignore[arg-type]
        url = f"http://127.0.0.1:{emsp.port}"
        endpoints = {"sessions:RECEIVER": f"{url}/a/sessions", "cdrs:RECEIVER": f"{url}/a/cdrs"}
        a, _b = await partners(server, endpoints)
        await partner_card(server, a)
        server.roaming_pushes.meter_interval = timedelta(0)  # every meter value, for the test
        try:
            async with ocpp_station(ocpp_url, "OCPIS4") as cp:
                charging = Charging(cp, base)
                tx = await charging.start()
                await charging.finish()

            def posted() -> bool:
                return any(method == "POST" for method, *_ in emsp.got)

            await eventually(posted, timeout=20)
        finally:
            server.roaming_pushes.meter_interval = timedelta(seconds=60)

    assert all(path.startswith("/a/") for _, path, _, _ in emsp.got), "partner B got a push"
    assert all(header == auth("to-a")["Authorization"] for *_, header in emsp.got)
    methods = [method for method, *_ in emsp.got]
    assert methods[0] == "PUT" and methods[-1] == "POST" and methods.count("POST") == 1
    assert set(methods[1:-1]) == {"PATCH"}
    _method, path, put, _ = emsp.got[0]
    assert path == f"/a/sessions/NL/STK/{tx}"
    OcpiSession.model_validate(put)
    assert put["status"] == "ACTIVE" and put["cdr_token"]["party_id"] == "ABC"
    patches = [body for method, _, body, _ in emsp.got if method == "PATCH"]
    assert all(
        set(body) <= {"kwh", "total_cost", "last_updated", "status", "end_date_time"} for body in patches
    )
    # meter PATCHes while charging (how many the station's pace allows), never going back
    meters = [body for body in patches if "status" not in body]
    assert meters and all(set(body) == {"kwh", "total_cost", "last_updated"} for body in meters)
    kwh = [body["kwh"] for body in patches]
    assert kwh == sorted(kwh) and set(kwh) <= {0, 11, 22}, emsp.got
    final = next(body for body in patches if "status" in body)
    assert final["status"] == "COMPLETED" and final["kwh"] == 22
    assert final["end_date_time"] == iso(base, 120)
    _, path, cdr, _ = emsp.got[-1]
    assert path == "/a/cdrs" and cdr["total_cost"] == EXPECTED and cdr["session_id"] == str(tx)
    assert cdr["cdr_token"]["country_code"] == "NL" and cdr["cdr_token"]["party_id"] == "ABC"
