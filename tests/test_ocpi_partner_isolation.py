"""Two eMSPs, A and B, registered through the real credentials handshake over loopback: B
cannot make itself A by declaring A's party, cannot read or change A's drivers' tokens (not
even when the operator grants it A's party too, as for a hub), and never sees or receives A's
sessions and CDRs. The operator grants the parties, in the API and the CLI.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stekker.app import Stekker
from stekker.db.engine import make_engine
from stekker.db.migrate import upgrade
from tests.observe import eventually
from tests.peers import ocpp_station
from tests.test_cdrs import TARIFF, add_tariff, base_time
from tests.test_ocpi_credentials import serving
from tests.test_ocpi_sessions_cdrs import Charging

TOKENS = "/ocpi/2.2.1/tokens"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


class Emsp:
    """An eMSP's OCPI server: versions, details, and receivers that record our pushes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.token = f"token-B-of-{name.replace(' ', '-')}"
        self.port = 0
        self.calls: list[str] = []  # every request we made to it
        self.pushes: list[tuple[str, str]] = []  # (method, path) of session and CDR pushes

    def app(self) -> Starlette:
        base = lambda: f"http://127.0.0.1:{self.port}"  # noqa: E731

        def ok(data: Any) -> JSONResponse:
            return JSONResponse({"data": data, "status_code": 1000, "timestamp": "2026-12-07T00:00:00Z"})

        async def versions(request: Request) -> JSONResponse:
            self.calls.append(request.url.path)
            return ok([{"version": "2.2.1", "url": f"{base()}/221"}])

        async def details(request: Request) -> JSONResponse:
            self.calls.append(request.url.path)
            endpoints = [
                {"identifier": "sessions", "role": "RECEIVER", "url": f"{base()}/221/sessions"},
                {"identifier": "cdrs", "role": "RECEIVER", "url": f"{base()}/221/cdrs"},
            ]
            return ok({"version": "2.2.1", "endpoints": endpoints})

        async def receiver(request: Request) -> JSONResponse:
            self.calls.append(request.url.path)
            self.pushes.append((request.method, request.url.path))
            return ok(None)

        return Starlette(
            routes=[
                Route("/versions", versions),
                Route("/221", details),
                Route("/221/{module}/{rest:path}", receiver, methods=["PUT", "PATCH", "POST"]),
                Route("/221/{module}", receiver, methods=["POST"]),
            ]
        )


def credentials(emsp: Emsp, *parties: str) -> dict[str, Any]:
    return {
        "token": emsp.token,
        "url": f"http://127.0.0.1:{emsp.port}/versions",
        "roles": [
            {
                "role": "EMSP",
                "business_details": {"name": emsp.name},
                "country_code": party.split("/")[0],
                "party_id": party.split("/")[1],
            }
            for party in parties
        ],
    }


async def register(api: httpx.AsyncClient, emsp: Emsp, party: str) -> tuple[int, str]:
    """The operator invites the eMSP for `party`; the eMSP registers: (partner id, its token C)."""
    invited = await api.post("/api/ocpi/partners", json={"name": emsp.name, "parties": [party]})
    assert invited.status_code == 201, invited.text
    assert invited.json()["partner"]["parties"] == [party]
    token_a = invited.json()["registration_token"]
    answer = await api.post("/ocpi/2.2.1/credentials", headers=auth(token_a), json=credentials(emsp, party))
    assert answer.status_code == 200, answer.text
    return invited.json()["partner"]["id"], answer.json()["data"]["token"]


def card(uid: str, party: str = "AAA", **fields: Any) -> dict[str, Any]:
    return {
        "country_code": "NL", "party_id": party, "uid": uid, "type": "RFID",
        "contract_id": f"NL-{party}-C00000001-X", "issuer": "A Mobility", "valid": True,
        "whitelist": "ALWAYS", "last_updated": "2026-12-01T00:00:00Z", **fields,
    }  # fmt: skip


def refused(response: httpx.Response, http_status: int, ocpi_status: int) -> None:
    assert response.status_code == http_status, response.text
    assert response.json()["status_code"] == ocpi_status, response.text


async def test_a_partner_cannot_take_over_another_partners_drivers(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    emsp_a, emsp_b = Emsp("A Mobility"), Emsp("B Mobility")
    async with serving(emsp_a), serving(emsp_b):  # type: ignore[arg-type]
        a, token_a = await register(api, emsp_a, "NL/AAA")
        b, token_b = await register(api, emsp_b, "NL/BBB")
        assert a != b
        # A's driver's card, pushed by A
        pushed = await api.put(f"{TOKENS}/NL/AAA/CARD-A", headers=auth(token_a), json=card("CARD-A"))
        assert pushed.status_code == 200, pushed.text

        # B declares A's party in new credentials: refused before anything is fetched
        calls = len(emsp_b.calls)
        claim = await api.put(
            "/ocpi/2.2.1/credentials", headers=auth(token_b), json=credentials(emsp_b, "NL/BBB", "NL/AAA")
        )
        refused(claim, 403, 2001)
        assert "NL/AAA is not granted" in claim.json()["status_message"]
        assert len(emsp_b.calls) == calls
        assert (await api.get("/ocpi/2.2.1", headers=auth(token_b))).status_code == 200  # B's token as it was
        [listed_b] = [p for p in (await api.get("/api/ocpi/partners")).json() if p["id"] == b]
        assert listed_b["parties"] == ["NL/BBB"] and [r["party_id"] for r in listed_b["roles"]] == ["BBB"]

        # A's token is not B's to read or change
        url_a = f"{TOKENS}/NL/AAA/CARD-A"
        never = {"whitelist": "NEVER", "last_updated": "2026-12-02T00:00:00Z"}
        refused(await api.get(url_a, headers=auth(token_b)), 404, 2001)
        refused(await api.patch(url_a, headers=auth(token_b), json=never), 404, 2001)
        refused(
            await api.put(url_a, headers=auth(token_b), json=card("CARD-A", whitelist="NEVER")), 404, 2001
        )

        # even granted A's party (a hub speaking for it), B finds no such token and moves nothing
        granted = await api.put(f"/api/ocpi/partners/{b}/parties", json={"parties": ["NL/BBB", "NL/AAA"]})
        assert granted.status_code == 200 and granted.json()["parties"] == ["NL/AAA", "NL/BBB"], granted.text
        claim = await api.put(
            "/ocpi/2.2.1/credentials", headers=auth(token_b), json=credentials(emsp_b, "NL/BBB", "NL/AAA")
        )
        assert claim.status_code == 200, claim.text  # within its grant now
        token_b = claim.json()["data"]["token"]
        refused(await api.get(url_a, headers=auth(token_b)), 404, 2004)
        refused(await api.patch(url_a, headers=auth(token_b), json=never), 404, 2004)
        refused(
            await api.put(url_a, headers=auth(token_b), json=card("CARD-A", whitelist="NEVER")), 404, 2001
        )
        mine = await api.get(url_a, headers=auth(token_a))
        assert mine.status_code == 200 and mine.json()["data"]["whitelist"] == "ALWAYS", mine.text
        # A still owns its card: it can change it
        blocked = await api.patch(url_a, headers=auth(token_a), json={"valid": True, **never})
        assert blocked.status_code == 200, blocked.text
        assert (await api.patch(url_a, headers=auth(token_a), json={"whitelist": "ALWAYS",
                "last_updated": "2026-12-03T00:00:00Z"})).status_code == 200  # fmt: skip

        # A's driver charges: A follows the session and the CDR, B sees and receives none of it
        async with ocpp_station(ocpp_url, "ISO1") as cp:
            charging = Charging(cp, base, card="CARD-A")
            tx = await charging.start()
            sessions_a = (await api.get("/ocpi/2.2.1/sessions", headers=auth(token_a))).json()["data"]
            assert [s["id"] for s in sessions_a] == [str(tx)]
            assert (await api.get("/ocpi/2.2.1/sessions", headers=auth(token_b))).json()["data"] == []
            await charging.finish()

        async def billed() -> Any:
            return (await api.get("/ocpi/2.2.1/cdrs", headers=auth(token_a))).json()["data"]

        [cdr] = await eventually(billed)
        assert cdr["session_id"] == str(tx)
        assert (await api.get("/ocpi/2.2.1/cdrs", headers=auth(token_b))).json()["data"] == []
        assert (await api.get("/ocpi/2.2.1/sessions", headers=auth(token_b))).json()["data"] == []

        def delivered() -> bool:
            return ("POST", "/221/cdrs") in emsp_a.pushes and any(
                path.startswith("/221/sessions/") for _, path in emsp_a.pushes
            )

        await eventually(delivered)
        assert emsp_b.pushes == []
        pending = (await api.get("/api/ocpi/outbox", params={"partner_id": b})).json()
        assert pending == []  # nothing of A's was even queued for B


async def test_the_operator_grants_parties(server: Stekker, api: httpx.AsyncClient, cli: Any) -> None:
    for parties in ([], ["NLAAA"], ["NL/AAAA"], ["NL/STK"], ["N1/AAA"], "NL/AAA", [1]):
        body = {"name": "x", "parties": parties}
        assert (await api.post("/api/ocpi/partners", json=body)).status_code == 422, parties
    assert (await api.post("/api/ocpi/partners", json={"name": "x"})).status_code == 422  # parties required

    result = await cli("ocpi", "invite", "Hub Co", "--role", "HUB", "--party", "nl/abc", "--party", "DE/ABC")
    assert result.exit_code == 0, result.output
    [partner] = (await api.get("/api/ocpi/partners")).json()
    assert partner["parties"] == ["DE/ABC", "NL/ABC"]  # upper case, in order

    result = await cli("ocpi", "parties", str(partner["id"]), "NL/ABC", "BE/XYZ")
    assert result.exit_code == 0, result.output
    assert "acts for BE/XYZ, NL/ABC" in result.output
    [partner] = (await api.get("/api/ocpi/partners")).json()
    assert partner["parties"] == ["BE/XYZ", "NL/ABC"]
    # the CLI lists them
    listing = await cli("ocpi", "partners")
    assert "BE/XYZ" in listing.output

    assert (
        await api.put(f"/api/ocpi/partners/{partner['id']}/parties", json={"parties": []})
    ).status_code == 422
    own = await api.put(f"/api/ocpi/partners/{partner['id']}/parties", json={"parties": ["NL/STK"]})
    assert own.status_code == 422 and "our own party" in own.text
    assert (await api.put("/api/ocpi/partners/999/parties", json={"parties": ["NL/ABC"]})).status_code == 404


async def test_a_revoked_party_stops_counting_at_once(server: Stekker, api: httpx.AsyncClient) -> None:
    emsp = Emsp("Two Parties")
    async with serving(emsp):  # type: ignore[arg-type]
        invited = await api.post(
            "/api/ocpi/partners", json={"name": emsp.name, "parties": ["NL/AAA", "NL/CCC"]}
        )
        token_a = invited.json()["registration_token"]
        answer = await api.post(
            "/ocpi/2.2.1/credentials", headers=auth(token_a), json=credentials(emsp, "NL/AAA", "NL/CCC")
        )
        assert answer.status_code == 200, answer.text
        token = answer.json()["data"]["token"]
        assert (
            await api.put(f"{TOKENS}/NL/CCC/C-1", headers=auth(token), json=card("C-1", "CCC"))
        ).status_code == 200
        changed = await api.put(f"/api/ocpi/partners/{invited.json()['partner']['id']}/parties",
                                json={"parties": ["NL/AAA"]})  # fmt: skip
        assert changed.status_code == 200 and [r["party_id"] for r in changed.json()["roles"]] == ["AAA"]
        refused(await api.get(f"{TOKENS}/NL/CCC/C-1", headers=auth(token)), 404, 2001)
        assert (await api.get(f"{TOKENS}/NL/AAA/C-1", headers=auth(token))).json()["status_code"] == 2004


async def test_upgrade_grants_registered_partners_the_parties_they_have(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await upgrade(engine, "0012")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO ocpi_partners (id, name, status, role, country_code, party_id, roles, "
                    "incoming_token_sha256, raw_token, endpoints, created_by, created_at, updated_at) VALUES "
                    "(1, 'Hub', 'registered', 'HUB', 'NL', 'HUB', :roles, 'x1', 0, '{}', 't', "
                    "'2026-01-01 00:00:00', '2026-01-01 00:00:00'), "
                    "(2, 'New', 'pending', 'EMSP', NULL, NULL, '[]', 'x2', 0, '{}', 't', "
                    "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                ),
                {
                    "roles": '[{"role": "HUB", "country_code": "NL", "party_id": "HUB"},'
                    ' {"role": "EMSP", "country_code": "de", "party_id": "abc"}]'
                },
            )
        await upgrade(engine)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT id, granted_parties FROM ocpi_partners"))).all()
        assert {row[0]: json.loads(row[1]) for row in rows} == {1: ["DE/ABC", "NL/HUB"], 2: []}
    finally:
        await engine.dispose()
