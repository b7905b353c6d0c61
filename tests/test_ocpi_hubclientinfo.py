"""OCPI 2.2.1 HubClientInfo (receiver): a roaming hub tells us which parties behind it it can
reach, at /ocpi/2.2.1/hubclientinfo/{country_code}/{party_id}, and reads back what we hold."""

from __future__ import annotations

from typing import Any

import httpx

from stekker.app import Stekker
from stekker.services import hub_clients
from stekker.services.ocpi_partners import add_registered_partner
from tests.test_ocpi_commands import auth, partner

BASE = "/ocpi/2.2.1/hubclientinfo"


async def hub(server: Stekker, party: str = "HUB") -> tuple[int, dict[str, str]]:
    token = f"hub-{party.lower()}-token"
    hub_id = await add_registered_partner(
        server.ctx, name=f"Hub {party}", country_code="DE", party_id=party, role="HUB", token=token
    )
    return hub_id, auth(token)


def info(party: str = "ABC", status: str = "CONNECTED", **extra: Any) -> dict[str, Any]:
    return {"party_id": party, "country_code": "NL", "role": "EMSP", "status": status,
            "last_updated": "2026-11-24T10:00:00Z", **extra}  # fmt: skip


async def test_a_hub_puts_and_reads_client_info(server: Stekker, api: httpx.AsyncClient) -> None:
    hub_id, headers = await hub(server)
    response = await api.put(f"{BASE}/NL/ABC", json=info(), headers=headers)
    assert response.status_code == 200 and response.json()["status_code"] == 1000, response.text
    got = (await api.get(f"{BASE}/nl/abc", headers=headers)).json()
    assert got["status_code"] == 1000 and got["data"] == info()

    # the party goes offline; an older copy arriving late does not undo it
    offline = info(status="OFFLINE", last_updated="2026-11-24T11:00:00+01:00")  # same moment, other offset
    assert (await api.put(f"{BASE}/NL/ABC", json=offline, headers=headers)).json()["status_code"] == 1000
    stale = info(status="CONNECTED", last_updated="2026-11-24T09:00:00Z")
    late = (await api.put(f"{BASE}/NL/ABC", json=stale, headers=headers)).json()
    assert late["status_code"] == 1000 and "newer" in late["status_message"]
    got = (await api.get(f"{BASE}/NL/ABC", headers=headers)).json()["data"]
    assert (got["status"], got["last_updated"]) == ("OFFLINE", "2026-11-24T10:00:00Z")

    # a second party, suspended: both are unreachable through this hub, not through another
    assert (
        await api.put(f"{BASE}/NL/XYZ", json=info("XYZ", "SUSPENDED"), headers=headers)
    ).status_code == 200
    assert (await api.put(f"{BASE}/NL/CON", json=info("CON"), headers=headers)).status_code == 200
    other_id, _ = await hub(server, "HB2")
    async with server.ctx.db() as db:
        assert await hub_clients.client_statuses(db, [hub_id, other_id]) == {
            hub_id: {("NL", "ABC"): "OFFLINE", ("NL", "XYZ"): "SUSPENDED", ("NL", "CON"): "CONNECTED"}
        }
        assert await hub_clients.client_statuses(db, [other_id]) == {}

    # each hub sees only its own
    _, other = await hub(server, "HB3")
    response = await api.get(f"{BASE}/NL/ABC", headers=other)
    assert (response.status_code, response.json()["status_code"]) == (404, 2000)

    audit = (await api.get("/api/audit", params={"action": "ocpi.client_info."})).json()
    assert sorted(a["result"] for a in audit) == ["CONNECTED", "CONNECTED", "OFFLINE", "SUSPENDED"]


async def test_only_a_hub_may_use_it(server: Stekker, api: httpx.AsyncClient) -> None:
    emsp = await partner(server)
    response = await api.put(f"{BASE}/NL/ABC", json=info(), headers=emsp)
    assert (response.status_code, response.json()["status_code"]) == (403, 2000)
    assert "hub" in response.json()["status_message"].lower()
    response = await api.get(f"{BASE}/NL/ABC", headers=emsp)
    assert (response.status_code, response.json()["status_code"]) == (403, 2000)
    for sent in ({}, {"Authorization": "Token bm9wZQ=="}):
        response = await api.put(f"{BASE}/NL/ABC", json=info(), headers=sent)
        assert (response.status_code, response.json()["status_code"]) == (401, 2000)

    # a partner that registered HUB among its roles may
    token = "mixed-token"
    await add_registered_partner(
        server.ctx, name="Mixed", country_code="BE", party_id="MIX", token=token,
        extra_roles=(("BE", "MXH", "HUB"),),
    )  # fmt: skip
    response = await api.put(f"{BASE}/NL/ABC", json=info(), headers=auth(token))
    assert response.status_code == 200, response.text


async def test_malformed_client_info(server: Stekker, api: httpx.AsyncClient) -> None:
    _, headers = await hub(server)
    bad: list[tuple[str, Any]] = [
        ("NL/ABC", info("XYZ")),  # another party than the URL's
        ("NL/ABC", {**info(), "country_code": "BE"}),
        ("NL/ABC", {k: v for k, v in info().items() if k != "status"}),
        ("NL/ABC", {k: v for k, v in info().items() if k != "last_updated"}),
        ("NL/ABC", info(status="ONLINE")),
        ("NL/ABC", info(role="DRIVER")),
        ("NL/ABC", info(last_updated="yesterday")),
        ("NL/ABC", info(last_updated=1700000000)),
        ("NL/ABC", {**info(), "party_id": "ABCD"}),
        ("NL/ABC", {**info(), "party_id": 123}),
        ("NL/ABC", [info()]),
        ("NL/ABC", "CONNECTED"),
        ("NL/ABC", None),
        ("NLD/ABC", info()),
        ("NL/AB", info()),
        ("N1/ABC", info()),
        ("NL/A%20C", info()),
    ]
    for path, body in bad:
        response = await api.put(f"{BASE}/{path}", json=body, headers=headers)
        answer = response.json()
        assert (response.status_code, answer["status_code"]) == (200, 2001), (path, body, answer)
    response = await api.put(
        f"{BASE}/NL/ABC", content=b"{", headers={**headers, "content-type": "application/json"}
    )
    assert (response.status_code, response.json()["status_code"]) == (400, 2001)
    response = await api.get(f"{BASE}/NLD/ABC", headers=headers)
    assert (response.status_code, response.json()["status_code"]) == (200, 2001)
    response = await api.get(f"{BASE}/NL/QQQ", headers=headers)
    assert (response.status_code, response.json()["status_code"]) == (404, 2000)
    # nothing was stored by the refused pushes
    response = await api.get(f"{BASE}/NL/ABC", headers=headers)
    assert response.status_code == 404
