"""The OCPI credentials handshake, from an eMSP's side, over loopback: versions, registration
with the token we issued, credential updates, unregistration, and what a bad request gets."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stekker.app import Stekker
from stekker.services import ocpi_partners


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


class FakeEmsp:
    """An eMSP's OCPI server: versions and version details, answering only its own token B."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.seen: list[tuple[str, str]] = []
        self.port = 0

    def _ok(self, request: Request, data: Any) -> JSONResponse:
        header = request.headers.get("authorization", "")
        self.seen.append((request.url.path, header))
        if header != token_header(self.token)["Authorization"]:
            return JSONResponse(
                {"status_code": 2000, "status_message": "unknown token", "timestamp": "x"}, 401
            )
        return JSONResponse({"data": data, "status_code": 1000, "timestamp": "2026-11-24T00:00:00Z"})

    def app(self) -> Starlette:
        base = lambda: f"http://127.0.0.1:{self.port}"  # noqa: E731

        async def versions(request: Request) -> JSONResponse:
            return self._ok(
                request,
                [{"version": "2.1.1", "url": f"{base()}/211"}, {"version": "2.2.1", "url": f"{base()}/221"}],
            )

        async def details(request: Request) -> JSONResponse:
            endpoints = [
                {"identifier": "tokens", "role": "SENDER", "url": f"{base()}/221/tokens"},
                {"identifier": "locations", "role": "RECEIVER", "url": f"{base()}/221/locations"},
            ]
            return self._ok(request, {"version": "2.2.1", "endpoints": endpoints})

        return Starlette(routes=[Route("/versions", versions), Route("/221", details)])


@asynccontextmanager
async def serving(emsp: FakeEmsp) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    emsp.port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(emsp.app(), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # it failed to start: say why
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{emsp.port}/versions"
    finally:
        server.should_exit = True
        await task


def credentials(token: str, url: str, party: str = "ABC") -> dict[str, Any]:
    return {
        "token": token,
        "url": url,
        "roles": [
            {
                "role": "EMSP",
                "business_details": {"name": "ABC Mobility"},
                "party_id": party,
                "country_code": "NL",
            }
        ],
    }


async def ocpi(api: httpx.AsyncClient, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    return await api.request(method, path, headers=token_header(token), **kwargs)


async def test_an_emsp_registers_updates_and_unregisters(server: Stekker, api: httpx.AsyncClient) -> None:
    invited = await api.post(  # the operator
        "/api/ocpi/partners", json={"name": "ABC Mobility", "parties": ["NL/ABC"]}
    )
    assert invited.status_code == 201, invited.text
    token_a = invited.json()["registration_token"]
    assert invited.json()["versions_url"].endswith("/ocpi/versions")
    assert invited.json()["partner"]["status"] == "pending"
    emsp = FakeEmsp("token-B-of-the-emsp")
    async with serving(emsp) as their_versions:
        versions = await ocpi(api, "GET", "/ocpi/versions", token_a)
        assert versions.status_code == 200, versions.text
        [v] = versions.json()["data"]
        assert v["version"] == "2.2.1" and v["url"].endswith("/ocpi/2.2.1")
        details = (await ocpi(api, "GET", "/ocpi/2.2.1", token_a)).json()["data"]
        assert {"identifier": "credentials", "role": "RECEIVER"} in [
            {k: e[k] for k in ("identifier", "role")} for e in details["endpoints"]
        ]

        registered = await ocpi(
            api, "POST", "/ocpi/2.2.1/credentials", token_a, json=credentials(emsp.token, their_versions)
        )
        assert registered.status_code == 200, registered.text
        body = registered.json()
        assert body["status_code"] == 1000 and "timestamp" in body
        ours = body["data"]
        token_c = ours["token"]
        assert token_c != token_a and ours["url"].endswith("/ocpi/versions")
        assert ours["roles"] == [
            {"role": "CPO", "business_details": {"name": "Stekker"}, "party_id": "STK", "country_code": "NL"}
        ]
        # we read its versions and details with its token B, base64 encoded
        assert [path for path, _ in emsp.seen] == ["/versions", "/221"]
        assert all(header == token_header(emsp.token)["Authorization"] for _, header in emsp.seen)

        # token A is spent; C works, and GET credentials echoes it
        assert (await ocpi(api, "GET", "/ocpi/versions", token_a)).status_code == 401
        got = (await ocpi(api, "GET", "/ocpi/2.2.1/credentials", token_c)).json()["data"]
        assert got["token"] == token_c
        again = await ocpi(
            api, "POST", "/ocpi/2.2.1/credentials", token_c, json=credentials(emsp.token, their_versions)
        )
        assert again.status_code == 405 and again.json()["status_code"] == 2001

        [partner] = await ocpi_partners.list_partners(server.ctx)
        assert (partner["status"], partner["country_code"], partner["party_id"], partner["role"]) == (
            "registered", "NL", "ABC", "EMSP",
        )  # fmt: skip
        assert partner["endpoints"] == {
            "tokens:SENDER": f"http://127.0.0.1:{emsp.port}/221/tokens",
            "locations:RECEIVER": f"http://127.0.0.1:{emsp.port}/221/locations",
        }

        # a credentials update: a new token B2, and a new token of ours in return
        emsp.token = "token-B2"
        updated = await ocpi(
            api, "PUT", "/ocpi/2.2.1/credentials", token_c, json=credentials("token-B2", their_versions)
        )
        assert updated.status_code == 200, updated.text
        token_c2 = updated.json()["data"]["token"]
        assert token_c2 != token_c
        assert (await ocpi(api, "GET", "/ocpi/2.2.1", token_c)).status_code == 401
        assert (await ocpi(api, "GET", "/ocpi/2.2.1", token_c2)).status_code == 200

        gone = await ocpi(api, "DELETE", "/ocpi/2.2.1/credentials", token_c2)
        assert gone.status_code == 200 and gone.json()["status_code"] == 1000
        refused = await ocpi(api, "GET", "/ocpi/versions", token_c2)
        assert refused.status_code == 401 and "unregistered" in refused.json()["status_message"]
    [partner] = await ocpi_partners.list_partners(server.ctx)
    assert partner["status"] == "unregistered"


async def test_an_unreachable_emsp_gets_3001_and_stays_pending(
    server: Stekker, api: httpx.AsyncClient
) -> None:
    _, token_a = await ocpi_partners.issue_registration(
        server.ctx, actor="test", name="Offline eMSP", parties=["NL/ABC"]
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/versions"  # nobody listens
    response = await ocpi(api, "POST", "/ocpi/2.2.1/credentials", token_a, json=credentials("B", closed))
    assert response.status_code == 200 and response.json()["status_code"] == 3001
    assert response.json()["status_code"] == 3001
    assert response.json()["status_message"] == ocpi_partners.CANNOT_FETCH
    assert (
        await ocpi(api, "GET", "/ocpi/versions", token_a)
    ).status_code == 200  # still pending, A still works


async def test_a_partner_that_sends_its_token_unencoded_is_understood(
    server: Stekker, api: httpx.AsyncClient
) -> None:
    await ocpi_partners.add_registered_partner(
        server.ctx, name="Raw", country_code="DE", party_id="RAW", token="raw-token-1", raw_token=True
    )
    response = await api.get("/ocpi/2.2.1", headers={"Authorization": "Token raw-token-1"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Token",
        "Bearer abc",
        "Token " + "x" * 2000,
        "Token %%%",
        "Token " + base64.b64encode(b"nope").decode(),
    ],
)
async def test_bad_authorization_is_401_in_an_envelope(api: httpx.AsyncClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await api.get("/ocpi/versions", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["status_code"] == 2000 and body["status_message"] and "timestamp" in body


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": "B", "url": "http://x.example/versions"},
        {"token": "B", "url": "ftp://x.example", "roles": []},
        {"token": "", "url": "http://x.example/v", "roles": [{"role": "EMSP"}]},
        {"token": "B" * 65, "url": "http://x.example/v", "roles": []},
        {
            "token": "B",
            "url": "http://x.example/v",
            "roles": [
                {"role": "KING", "business_details": {"name": "x"}, "party_id": "ABC", "country_code": "NL"}
            ],
        },
        {
            "token": "B",
            "url": "http://x.example/v",
            "roles": [
                {"role": "EMSP", "business_details": {"name": "x"}, "party_id": "abcd", "country_code": "NL"}
            ],
        },
        [],
        "null",
    ],
)
async def test_malformed_credentials_are_2001(server: Stekker, api: httpx.AsyncClient, body: Any) -> None:
    _, token_a = await ocpi_partners.issue_registration(
        server.ctx, actor="test", name="Sloppy", parties=["NL/ABC"]
    )
    response = await ocpi(api, "POST", "/ocpi/2.2.1/credentials", token_a, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["status_code"] == 2001
    assert (await ocpi(api, "GET", "/ocpi/versions", token_a)).status_code == 200  # nothing changed


async def test_operator_side_of_partners(server: Stekker, api: httpx.AsyncClient, cli: Any) -> None:
    for body in (
        {},
        {"name": ""},
        {"name": "x", "role": "KING"},
        {"name": "x", "extra": 1},
        {"name": "x" * 101},
    ):
        assert (await api.post("/api/ocpi/partners", json=body)).status_code == 422, body
    result = await cli("ocpi", "invite", "Hub Co", "--role", "HUB", "--party", "NL/HUB")
    assert result.exit_code == 0, result.output
    assert "registration token:" in result.output and "/ocpi/versions" in result.output
    listed = (await api.get("/api/ocpi/partners")).json()
    assert [(p["name"], p["role"], p["status"]) for p in listed] == [("Hub Co", "HUB", "pending")]
    assert "token" not in str(listed).replace("raw_token", "")  # never a token in a listing
    result = await cli("ocpi", "unregister", str(listed[0]["id"]))
    assert result.exit_code == 0, result.output
    again = await api.delete(f"/api/ocpi/partners/{listed[0]['id']}")
    assert again.status_code == 409
    assert (await api.delete("/api/ocpi/partners/999")).status_code == 404
    assert (await api.delete("/api/ocpi/partners/0")).status_code == 422


class RegisteringEmsp:
    """An eMSP that gave us a registration token A: answers versions, details and our
    credentials POST, calling our versions back with the token we sent, as a real one does."""

    def __init__(self, token_a: str, token_c: str) -> None:
        self.tokens = {token_header(token_a)["Authorization"], token_header(token_c)["Authorization"]}
        self.token_c = token_c
        self.our_versions_status: int | None = None
        self.our_token: str | None = None
        self.deleted = 0
        self.port = 0

    def app(self) -> Starlette:
        base = lambda: f"http://127.0.0.1:{self.port}"  # noqa: E731

        def ok(request: Request, data: Any) -> JSONResponse:
            if request.headers.get("authorization") not in self.tokens:
                return JSONResponse({"status_code": 2000, "status_message": "unknown token"}, 401)
            return JSONResponse({"data": data, "status_code": 1000, "timestamp": "2026-11-24T00:00:00Z"})

        async def versions(request: Request) -> JSONResponse:
            return ok(request, [{"version": "2.2.1", "url": f"{base()}/221"}])

        async def details(request: Request) -> JSONResponse:
            endpoints = [
                {"identifier": "credentials", "role": "RECEIVER", "url": f"{base()}/221/credentials"},
                {"identifier": "sessions", "role": "RECEIVER", "url": f"{base()}/221/sessions"},
            ]
            return ok(request, {"version": "2.2.1", "endpoints": endpoints})

        async def post_credentials(request: Request) -> JSONResponse:
            body = await request.json()
            self.our_token = body["token"]
            async with httpx.AsyncClient() as client:  # as a real eMSP: check our side first
                ours = await client.get(body["url"], headers=token_header(body["token"]))
            self.our_versions_status = ours.status_code
            return ok(request, credentials(self.token_c, f"{base()}/versions"))

        async def delete_credentials(request: Request) -> JSONResponse:
            self.deleted += 1
            return ok(request, None)

        return Starlette(
            routes=[
                Route("/versions", versions),
                Route("/221", details),
                Route("/221/credentials", post_credentials, methods=["POST"]),
                Route("/221/credentials", delete_credentials, methods=["DELETE"]),
            ]
        )


async def test_we_register_with_an_emsp_from_its_token_a(
    server: Stekker, api: httpx.AsyncClient, cli: Any
) -> None:
    emsp = RegisteringEmsp("their-A", "their-C")
    async with serving(emsp) as their_versions:  # type: ignore[arg-type]
        result = await cli(
            "ocpi", "register", "ABC Mobility", "--versions-url", their_versions, "--token", "their-A",
            "--party", "NL/ABC",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "registered with ABC Mobility (NL-ABC EMSP)" in result.output
        assert emsp.our_versions_status == 200  # our token worked while it handled our POST
        [partner] = (await api.get("/api/ocpi/partners")).json()
        assert partner["status"] == "registered" and partner["endpoints"]["sessions:RECEIVER"].endswith(
            "/221/sessions"
        )
        # the eMSP calls us with the token we gave it
        assert emsp.our_token is not None
        locations = await ocpi(api, "GET", "/ocpi/2.2.1/locations", emsp.our_token)
        assert locations.status_code == 200, locations.text
        # our operator ends it: the eMSP is told, and its token stops working here
        ended = await cli("ocpi", "unregister", str(partner["id"]))
        assert ended.exit_code == 0 and "could not be told" not in ended.output, ended.output
        assert emsp.deleted == 1
        assert (await ocpi(api, "GET", "/ocpi/2.2.1/locations", emsp.our_token)).status_code == 401

        # a partner that refuses: 409 with the reason, and no usable partner left behind
        wrong = await api.post(
            "/api/ocpi/partners/register",
            json={
                "name": "Wrong",
                "versions_url": their_versions,
                "token": "not-their-A",
                "parties": ["NL/WRO"],
            },
        )
        assert wrong.status_code == 409 and "HTTP 401" in wrong.json()["detail"]
    for body in (
        {"name": "x", "versions_url": "ftp://x", "token": "A"},
        {"name": "x", "versions_url": "http://x.example/v", "token": ""},
        {"name": "x", "versions_url": "http://x.example/v", "token": "has space"},
        {"name": "x", "versions_url": "http://x.example/v", "token": "A", "role": "CPO"},
    ):
        assert (await api.post("/api/ocpi/partners/register", json=body)).status_code == 422, body
