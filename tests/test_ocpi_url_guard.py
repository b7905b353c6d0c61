"""Where a partner can make us connect (OCPI credentials, the operator's registration): with
STEKKER_OCPI_ALLOW_PRIVATE_URLS off, loopback, private, link-local and other inner addresses
are refused before any connection, with one message for the partner whatever the reason; a
partner token has a few attempts a minute; a URL we cannot parse is a clear 4xx, never a 500.

Nothing here connects anywhere but 127.0.0.1: the guard refuses the other addresses before a
socket is opened (the audit entry says which address it refused, and why).
"""

from __future__ import annotations

import base64
import json
import socket
from datetime import timedelta
from typing import Any

import httpcore
import httpx
import pytest
from sqlalchemy import select

from stekker.app import Stekker
from stekker.db.models import AuditEntry
from stekker.services import ocpi_partners
from stekker.services.partner_http import AddressRefused, GuardedBackend, partner_client
from tests.conftest import make_settings
from tests.test_ocpi_credentials import FakeEmsp, serving


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


def credentials(url: str, token: str = "their-token-B") -> dict[str, Any]:
    role = {"role": "EMSP", "business_details": {"name": "x"}, "party_id": "ABC", "country_code": "NL"}
    return {"token": token, "url": url, "roles": [role]}


async def invite(server: Stekker) -> tuple[int, str]:
    partner, token_a = await ocpi_partners.issue_registration(
        server.ctx, actor="test", name="Prober", parties=["NL/ABC"]
    )
    return partner["id"], token_a


async def failures(server: Stekker, partner_id: int) -> list[str]:
    async with server.ctx.db() as db:
        rows = (
            await db.execute(
                select(AuditEntry.detail)
                .where(
                    AuditEntry.object_id == str(partner_id),
                    AuditEntry.action == "ocpi.partner.credentials_failed",
                )
                .order_by(AuditEntry.id)
            )
        ).scalars()
        return [str(detail["reason"]) for detail in rows]


PRIVATE = {"ocpi_allow_private_urls": False, "ocpi_registration_attempts": 50}


@pytest.mark.parametrize("settings_overrides", [PRIVATE])
async def test_inner_addresses_are_refused_with_one_message(server: Stekker, api: httpx.AsyncClient) -> None:
    partner_id, token_a = await invite(server)
    emsp = FakeEmsp("their-token-B")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]  # nobody listens here once it is closed
    async with serving(emsp) as open_url:
        port = emsp.port
        urls = [
            open_url,  # a real OCPI server, but on loopback
            f"http://127.0.0.1:{closed_port}/versions",
            f"http://127.0.0.1:{server.http_port}/ocpi/versions",  # ourselves
            "http://10.1.2.3/versions",
            "http://192.168.0.1:8080/versions",
            "http://169.254.169.254/latest/meta-data/",
            f"http://[::1]:{port}/versions",
            "http://[::ffff:127.0.0.1]/versions",
            "http://0.0.0.0/versions",
            "http://100.64.0.1/versions",  # carrier NAT
            "http://224.0.0.1/versions",
            f"http://localhost:{port}/versions",  # a name that resolves to loopback
        ]
        for url in urls:
            response = await api.post("/ocpi/2.2.1/credentials", headers=auth(token_a), json=credentials(url))
            assert response.status_code == 200, (url, response.text)
            body = response.json()
            assert body["status_code"] == 3001, (url, body)
            assert body["status_message"] == ocpi_partners.CANNOT_FETCH, (url, body)
        assert emsp.seen == []  # not one request reached it
    reasons = await failures(server, partner_id)
    assert len(reasons) == len(urls)
    # our own log says what happened: every one refused by the guard, none attempted
    assert all("refused to call" in reason for reason in reasons), reasons
    assert "169.254.169.254 is a link-local address" in reasons[5]
    assert "10.1.2.3 is a private address" in reasons[3]
    assert "is a loopback address" in reasons[-1]
    # the partner is still pending: its registration token still works
    assert (await api.get("/ocpi/versions", headers=auth(token_a))).status_code == 200


@pytest.mark.parametrize("settings_overrides", [PRIVATE])
async def test_the_operator_learns_why_a_registration_was_refused(api: httpx.AsyncClient) -> None:
    body = {"name": "Inner", "versions_url": "http://10.0.0.7/versions", "token": "A", "parties": ["NL/INN"]}
    response = await api.post("/api/ocpi/partners/register", json=body)
    assert response.status_code == 409, response.text
    assert "10.0.0.7 is a private address" in response.json()["detail"]
    assert "STEKKER_OCPI_ALLOW_PRIVATE_URLS" in response.json()["detail"]


async def test_a_partner_token_has_five_attempts_a_minute(server: Stekker, api: httpx.AsyncClient) -> None:
    _, token_a = await invite(server)
    start = server.ctx.now()
    server.ctx.clock = lambda: start
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/versions"

    async def attempt() -> httpx.Response:
        return await api.post("/ocpi/2.2.1/credentials", headers=auth(token_a), json=credentials(url))

    for _ in range(5):
        assert (await attempt()).json()["status_code"] == 3001
    refused = await attempt()
    assert refused.status_code == 429, refused.text
    assert refused.json()["status_code"] == 2000
    assert "at most 5 a minute" in refused.json()["status_message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    # malformed credentials never reach the counter, nor a refused party
    malformed = await api.post("/ocpi/2.2.1/credentials", headers=auth(token_a), json={})
    assert (malformed.status_code, malformed.json()["status_code"]) == (200, 2001)
    server.ctx.clock = lambda: start + timedelta(seconds=59)
    assert (await attempt()).status_code == 429
    server.ctx.clock = lambda: start + timedelta(seconds=61)
    assert (await attempt()).json()["status_code"] == 3001  # a new minute
    # another partner's token counts on its own
    _, other = await invite(server)
    answer = await api.post("/ocpi/2.2.1/credentials", headers=auth(other), json=credentials(url))
    assert answer.json()["status_code"] == 3001


HOSTILE_URLS = [
    "http://exa\x01mple.com/versions",  # a control character
    "http://example.com/ver\x7fsions",
    "http://exa mple.com/versions",
    "http://exa\nmple.com/versions",
    "http://" + "a" * 64 + ".example/versions",  # a label IDNA cannot encode
    "http://a..b/versions",
    "http://\u2603.example/versions",  # IDNA 2008 does not allow a snowman
    "http://exa$mple.com/versions",
    "http://[::1/versions",
    "http://example.com:99999/versions",
    "http:///versions",
    "https://user:secret@example.com/versions",
    "http://example.com/" + "v" * 250,
]


@pytest.mark.parametrize("url", HOSTILE_URLS, ids=range(len(HOSTILE_URLS)))
async def test_hostile_urls_are_a_clear_4xx(server: Stekker, api: httpx.AsyncClient, url: str) -> None:
    body = {"name": "x", "versions_url": url, "token": "A", "parties": ["NL/ABC"]}
    response = await api.post("/api/ocpi/partners/register", json=body)
    assert response.status_code == 422, response.text
    assert "versions_url" in response.text, response.text  # says which field, and why
    # the same rule for a partner's credentials
    _, token_a = await invite(server)
    answer = await api.post("/ocpi/2.2.1/credentials", headers=auth(token_a), json=credentials(url))
    assert answer.status_code == 200 and answer.json()["status_code"] == 2001, answer.text
    assert "url" in answer.json()["status_message"]


class Inner(httpcore.AsyncNetworkBackend):
    """Stands in for the network: records where the guard would connect, connects nowhere."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self, host: str, port: int, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        raise httpcore.ConnectError("not in tests")


async def test_the_guard_checks_every_address_and_connects_to_the_checked_one() -> None:
    answers = {"rebind.example": ["93.184.216.34", "127.0.0.1"], "public.example": ["93.184.216.34"]}
    calls: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[host]

    backend = GuardedBackend(allow_private=False, resolver=resolver)
    inner = Inner()
    backend._inner = inner
    with pytest.raises(AddressRefused, match=r"127\.0\.0\.1 is a loopback address"):
        await backend.connect_tcp("rebind.example", 443)
    assert inner.connects == []  # one inner answer is enough to refuse, before any socket
    with pytest.raises(httpcore.ConnectError, match="not in tests"):
        await backend.connect_tcp("public.example", 443)
    # resolved once, and the connection goes to that checked address, not the name again
    assert inner.connects == [("93.184.216.34", 443)] and calls == ["rebind.example", "public.example"]


async def test_a_pinned_connection_keeps_the_partners_host_name(database_url: str) -> None:
    """Allowed to loopback (as in these tests), a name still resolves once, through the guard,
    and is connected by its checked address."""
    emsp = FakeEmsp("B")
    seen: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        seen.append(host)
        return ["127.0.0.1"]

    async with serving(emsp):
        settings = make_settings(database_url, ocpi_allow_private_urls=True)
        async with partner_client(settings, resolver=resolver) as client:
            response = await client.get(f"http://partner.example:{emsp.port}/versions")
    assert response.status_code == 401 and seen == ["partner.example"]  # it reached the eMSP
    assert json.loads(response.text)["status_message"] == "unknown token"
