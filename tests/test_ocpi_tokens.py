"""OCPI 2.2.1 Tokens (we receive, as the CPO): an eMSP pushes its drivers' tokens over loopback,
reads them back, blocks one; OCPP 1.6 stations are then answered by the tokens' whitelist rules
and learn the tokens they may use offline. Plus what a hostile or sloppy partner gets."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy import select

from stekker.app import Stekker
from stekker.db.models import AuditEntry, AuthorizationRequest
from stekker.services import ocpi_partners, roaming_tokens
from stekker.services.ocpi_partners import add_registered_partner
from tests.observe import eventually
from tests.peers import now_iso, ocpp_station, raw_station

FIXTURES = Path("/work/shared/fixtures/ocpi/2.2.1")
if not FIXTURES.is_dir():  # the fixtures next to the repository, wherever it is checked out
    FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ocpi" / "2.2.1"
TOKENS = "/ocpi/2.2.1/tokens"
TNM_TOKEN = "tnm-secret-token-c"


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


@pytest.fixture
async def mounted(server: Stekker) -> Stekker:
    """The running app (it mounts the tokens module)."""
    return server


@pytest.fixture
async def tnm(mounted: Stekker, api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The eMSP TheNewMotion (parties NL/TNM and DE/TNM, as in the spec's examples), calling us."""
    await add_registered_partner(
        mounted.ctx,
        name="TheNewMotion",
        country_code="NL",
        party_id="TNM",
        token=TNM_TOKEN,
        extra_roles=(("DE", "TNM", "EMSP"),),
    )
    # the api fixture's 30 s: a machine under I/O load (a neighbour's 200 MB test) stalls for seconds
    async with httpx.AsyncClient(base_url=str(api.base_url), headers=auth(TNM_TOKEN), timeout=30) as client:
        yield client


async def other_emsp(server: Stekker, api: httpx.AsyncClient, party: str = "OTH") -> httpx.AsyncClient:
    secret = f"other-{party}"
    await add_registered_partner(
        server.ctx, name=f"Other {party}", country_code="BE", party_id=party, token=secret
    )
    return httpx.AsyncClient(base_url=str(api.base_url), headers=auth(secret), timeout=30)


def url(token: dict[str, Any]) -> str:
    return f"{TOKENS}/{token['country_code']}/{token['party_id']}/{token['uid']}"


async def put(client: httpx.AsyncClient, token: dict[str, Any], **params: str) -> dict[str, Any]:
    response = await client.put(url(token), json=token, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status_code"] == 1000, body
    return body


def rfid(uid: str, **fields: Any) -> dict[str, Any]:
    return {**example("token_put_example.json"), "uid": uid, **fields}


def refused(response: httpx.Response, http_status: int, ocpi_status: int) -> dict[str, Any]:
    assert response.status_code == http_status, response.text
    body: dict[str, Any] = response.json()
    assert body["status_code"] == ocpi_status, body
    assert "data" not in body and body["status_message"] and body["timestamp"].endswith("Z")
    return body


async def idtag_status(ocpp_url: str, station_id: str, *uids: str) -> dict[str, dict[str, Any]]:
    async with raw_station(ocpp_url, station_id) as st:
        return {uid: (await st.ok("Authorize", {"idTag": uid}))["idTagInfo"] for uid in uids}


# ---- the official examples, round trip --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("token_put_example.json", {}),
        ("token_example_1_app_user.json", {"type": "APP_USER"}),
        ("token_example_2_full_rfid.json", {"type": "RFID"}),
    ],
)
async def test_official_examples_put_and_read_back(
    tnm: httpx.AsyncClient, name: str, params: dict[str, str]
) -> None:
    token = example(name)
    await put(tnm, token, **params)
    got = await tnm.get(url(token), params=params)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["status_code"] == 1000
    assert body["data"] == token  # same keys, same values, same time format


async def test_get_without_type_means_rfid(tnm: httpx.AsyncClient) -> None:
    app_user = example("token_example_1_app_user.json")
    await put(tnm, app_user)  # PUT without ?type: the body's type
    refused(await tnm.get(url(app_user)), 404, 2004)  # GET without ?type looks for an RFID token
    assert (await tnm.get(url(app_user), params={"type": "APP_USER"})).json()["data"] == app_user


# ---- OCPP authorization by the pushed tokens ------------------------------------------------


async def test_patch_blocks_token_at_authorize_and_start(tnm: httpx.AsyncClient, ocpp_url: str) -> None:
    token = example("token_put_example.json")  # whitelist ALWAYS
    await put(tnm, token)
    async with raw_station(ocpp_url, "CP-ROAM") as st:
        authorized = (await st.ok("Authorize", {"idTag": token["uid"]}))["idTagInfo"]
        assert authorized == {"status": "Accepted", "parentIdTag": "DF000-2001-8999"}
        started = await st.ok(
            "StartTransaction",
            {"connectorId": 1, "idTag": token["uid"], "meterStart": 0, "timestamp": now_iso()},
        )
        assert started["idTagInfo"]["status"] == "Accepted"

        patched = await tnm.patch(url(token), json=example("token_patch_example.json"))
        assert patched.status_code == 200 and patched.json()["status_code"] == 1000, patched.text
        stored = (await tnm.get(url(token))).json()["data"]
        assert stored == {**token, "valid": False, "last_updated": "2019-06-19T02:11:11Z"}

        assert (await st.ok("Authorize", {"idTag": token["uid"]}))["idTagInfo"]["status"] == "Blocked"
        again = await st.ok(
            "StartTransaction",
            {"connectorId": 2, "idTag": token["uid"], "meterStart": 0, "timestamp": now_iso()},
        )
        assert again["idTagInfo"]["status"] == "Blocked"


async def test_whitelist_rules(tnm: httpx.AsyncClient, ocpp_url: str, mounted: Stekker) -> None:
    for uid, whitelist in (
        ("W-ALWAYS", "ALWAYS"),
        ("W-ALLOWED", "ALLOWED"),
        ("W-OFFLINE", "ALLOWED_OFFLINE"),
    ):
        await put(tnm, rfid(uid, whitelist=whitelist))
    await put(tnm, rfid("W-NEVER", whitelist="NEVER"))
    await put(tnm, rfid("W-NEVER-OFF", whitelist="NEVER", valid=False))
    answers = await idtag_status(
        ocpp_url, "CP-WL", "W-ALWAYS", "W-ALLOWED", "W-OFFLINE", "W-NEVER", "W-NEVER-OFF"
    )
    assert {uid: a["status"] for uid, a in answers.items()} == {
        "W-ALWAYS": "Accepted",
        "W-ALLOWED": "Accepted",
        "W-OFFLINE": "Accepted",
        # NEVER: only the eMSP may decide, and this one offers no way to ask it: the answer is no
        "W-NEVER": "Invalid",
        "W-NEVER-OFF": "Blocked",
    }
    async with mounted.ctx.db() as db:
        reasons = {
            r.token_uid: r.reason for r in (await db.execute(select(AuthorizationRequest))).scalars().all()
        }
    assert reasons["W-NEVER"] == (
        "eMSP not reachable: it has no tokens SENDER endpoint; whitelist NEVER: only the eMSP may decide"
    )
    async with ocpp_station(ocpp_url, "CP-WL2") as cp:
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="W-NEVER", meter_start=0, timestamp=now_iso())
        )
        assert started.id_tag_info["status"] == "Invalid"


@pytest.mark.parametrize("settings_overrides", [{"configure_stations_on_boot": True}])
async def test_stations_learn_tokens_they_may_use_offline(tnm: httpx.AsyncClient, ocpp_url: str) -> None:
    for uid, whitelist in (
        ("L-ALWAYS", "ALWAYS"),
        ("L-ALLOWED", "ALLOWED"),
        ("L-OFFLINE", "ALLOWED_OFFLINE"),
    ):
        await put(tnm, rfid(uid, whitelist=whitelist, group_id=None))
    await put(tnm, rfid("L-NEVER", whitelist="NEVER"))
    await put(tnm, rfid("L-INVALID", valid=False))
    async with ocpp_station(ocpp_url, "CP-LIST") as cp:
        await eventually(lambda: bool(cp.calls("SendLocalList")))
        [full] = cp.calls("SendLocalList")
        assert full["type"] == "Full"
        assert set(cp.local_list) == {"L-ALWAYS", "L-ALLOWED", "L-OFFLINE"}

        # the eMSP now wants one decided in real time, blocks another, adds a third
        await tnm.patch(
            url(rfid("L-ALLOWED")), json={"whitelist": "NEVER", "last_updated": "2030-01-01T00:00:00Z"}
        )
        await tnm.patch(url(rfid("L-ALWAYS")), json={"valid": False, "last_updated": "2030-01-01T00:00:00Z"})
        await put(tnm, rfid("L-NEW", group_id=None))
        await eventually(lambda: "L-NEW" in cp.local_list and "L-ALLOWED" not in cp.local_list)
        assert (cp.local_list["L-ALWAYS"] or {}).get("status") == "Blocked"
        assert cp.calls("SendLocalList")[-1]["type"] == "Differential"
        assert set(cp.local_list) == {"L-ALWAYS", "L-OFFLINE", "L-NEW"}


async def test_shared_uid_prefers_our_own_then_the_newest_valid(
    tnm: httpx.AsyncClient, api: httpx.AsyncClient, ocpp_url: str, mounted: Stekker
) -> None:
    # our own blocked card wins over a partner's valid token with the same uid
    assert (await api.put("/api/tokens", json={"uid": "SHARED-1", "status": "blocked"})).status_code in (
        200,
        201,
    )
    await put(tnm, rfid("SHARED-1"))
    # two eMSP parties: a valid token wins over an invalid one, whatever their age
    await put(tnm, rfid("SHARED-2", valid=False, last_updated="2031-01-01T00:00:00Z"))
    await put(tnm, {**rfid("SHARED-2"), "country_code": "DE", "group_id": "DE-GROUP"})
    # both valid: the one its eMSP updated last
    await put(tnm, rfid("SHARED-3", group_id="NL-GROUP", last_updated="2020-01-01T00:00:00Z"))
    await put(tnm, {**rfid("SHARED-3"), "country_code": "DE", "group_id": "DE-GROUP"})  # 2015
    answers = await idtag_status(ocpp_url, "CP-SHARED", "SHARED-1", "SHARED-2", "SHARED-3")
    assert answers == {
        "SHARED-1": {"status": "Blocked"},
        "SHARED-2": {"status": "Accepted", "parentIdTag": "DE-GROUP"},
        "SHARED-3": {"status": "Accepted", "parentIdTag": "NL-GROUP"},
    }


@pytest.mark.parametrize("settings_overrides", [{"configure_stations_on_boot": True}])
async def test_an_unregistered_partners_tokens_open_nothing(
    mounted: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    partner_id = await add_registered_partner(
        mounted.ctx, name="Leaving", country_code="NL", party_id="LVG", token="leaving"
    )
    async with httpx.AsyncClient(base_url=str(api.base_url), headers=auth("leaving")) as leaving:
        await put(leaving, {**rfid("GONE-1"), "party_id": "LVG"})
    async with ocpp_station(ocpp_url, "CP-UNREG") as cp:
        await eventually(lambda: "GONE-1" in cp.local_list)
        await ocpi_partners.unregister(mounted.ctx, partner_id, "test")
        authorized = await cp.call(call.Authorize(id_tag="GONE-1"))
        assert authorized.id_tag_info["status"] == "Invalid"
        # what the unregistration must trigger (the credentials service): stations forget them
        assert await roaming_tokens.partner_connection_changed(mounted.ctx, partner_id, "test") == 1
        await eventually(lambda: "GONE-1" not in cp.local_list)


# ---- out-of-order and repeated pushes --------------------------------------------------------


async def test_older_push_is_acknowledged_but_not_applied(tnm: httpx.AsyncClient, mounted: Stekker) -> None:
    token = rfid("STALE", last_updated="2020-05-05T10:00:00Z")
    await put(tnm, token)
    late = await put(tnm, {**token, "valid": False, "last_updated": "2020-05-05T09:59:59Z"})
    assert "newer" in late["status_message"]
    late_patch = await tnm.patch(url(token), json={"valid": False, "last_updated": "2019-01-01T00:00:00Z"})
    assert late_patch.json()["status_code"] == 1000 and "newer" in late_patch.json()["status_message"]
    assert (await tnm.get(url(token))).json()["data"] == token

    await put(tnm, token)  # the same push again changes nothing
    async with mounted.ctx.db() as db:
        actions = [
            a.action
            for a in (await db.execute(select(AuditEntry).where(AuditEntry.object_type == "token"))).scalars()
        ]
    assert actions == ["token.created"]


async def test_put_replaces_whole_token(tnm: httpx.AsyncClient) -> None:
    full = example("token_example_2_full_rfid.json")
    await put(tnm, full)
    slim = {
        k: v for k, v in full.items() if k not in ("energy_contract", "language", "visual_number", "group_id")
    }
    slim["last_updated"] = "2019-01-01T00:00:00Z"
    await put(tnm, slim)
    assert (await tnm.get(url(full))).json()["data"] == slim


async def test_patch_changes_only_what_it_names(tnm: httpx.AsyncClient) -> None:
    full = example("token_example_2_full_rfid.json")
    await put(tnm, full)
    change = {
        "energy_contract": {"supplier_name": "Vattenfall"},
        "language": None,
        "last_updated": "2019-02-02T02:02:02Z",
    }
    response = await tnm.patch(url(full), json=change)
    assert response.json()["status_code"] == 1000, response.text
    expected = {k: v for k, v in full.items() if k != "language"}
    expected.update(energy_contract={"supplier_name": "Vattenfall"}, last_updated="2019-02-02T02:02:02Z")
    assert (await tnm.get(url(full))).json()["data"] == expected


# ---- who may do what ---------------------------------------------------------------------------


async def test_no_or_bad_credentials_are_401(tnm: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    token = example("token_put_example.json")
    await put(tnm, token)
    for headers in ({}, auth("not-a-partner"), {"Authorization": "Bearer x"}, {"Authorization": "Token"}):
        async with httpx.AsyncClient(base_url=str(api.base_url), headers=headers) as anonymous:
            refused(await anonymous.get(url(token)), 401, 2000)
            refused(await anonymous.put(url(token), json=token), 401, 2000)
            refused(await anonymous.patch(url(token), json=example("token_patch_example.json")), 401, 2000)
    assert (await tnm.get(url(token))).json()["data"]["valid"] is True


async def test_a_partner_cannot_touch_another_partys_tokens(
    tnm: httpx.AsyncClient, api: httpx.AsyncClient, mounted: Stekker
) -> None:
    token = example("token_put_example.json")  # NL/TNM
    await put(tnm, token)
    async with await other_emsp(mounted, api) as other:
        body = refused(await other.get(url(token)), 404, 2001)
        assert "NL/TNM" in body["status_message"]
        refused(await other.put(url(token), json={**token, "valid": False}), 404, 2001)
        refused(await other.patch(url(token), json=example("token_patch_example.json")), 404, 2001)
        refused(await other.get(url({**token, "uid": "NOT-THERE"})), 404, 2001)  # existence is not revealed
        await put(other, {**token, "country_code": "BE", "party_id": "OTH"})  # its own party: fine
    # and TNM may not write under a party it did not register either
    refused(await tnm.put(url({**token, "party_id": "XYZ"}), json={**token, "party_id": "XYZ"}), 404, 2001)
    assert (await tnm.get(url(token))).json()["data"] == token


async def test_a_partner_cannot_overwrite_our_own_tokens(
    api: httpx.AsyncClient, mounted: Stekker, tnm: httpx.AsyncClient
) -> None:
    # a partner that (wrongly) registered our own party still cannot change our cards
    await add_registered_partner(
        mounted.ctx, name="Squatter", country_code="NL", party_id="STK", token="squat"
    )
    assert (await api.put("/api/tokens", json={"uid": "OWN-CARD"})).status_code in (200, 201)
    async with httpx.AsyncClient(base_url=str(api.base_url), headers=auth("squat")) as squatter:
        own = {**rfid("OWN-CARD", valid=False), "party_id": "STK"}
        refused(await squatter.put(url(own), json=own), 404, 2001)
        refused(await squatter.get(url(own)), 404, 2004)
        refused(await squatter.patch(url(own), json=example("token_patch_example.json")), 404, 2004)
    [card] = (await api.get("/api/tokens", params={"uid": "OWN-CARD"})).json()
    assert card["status"] == "active"


# ---- malformed requests --------------------------------------------------------------------


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in rfid("BAD-1").items() if k != key}


BAD_PUTS: list[tuple[str, str, Any]] = [
    ("missing uid", "BAD-1", _without("uid")),
    ("missing valid", "BAD-1", _without("valid")),
    ("missing whitelist", "BAD-1", _without("whitelist")),
    ("missing last_updated", "BAD-1", _without("last_updated")),
    ("valid as text", "BAD-1", rfid("BAD-1", valid="true")),
    ("uid as number", "123", {**rfid("BAD-1"), "uid": 123}),
    ("time as number", "BAD-1", rfid("BAD-1", last_updated=1561000000)),
    ("time not a time", "BAD-1", rfid("BAD-1", last_updated="yesterday")),
    ("unknown whitelist", "BAD-1", rfid("BAD-1", whitelist="SOMETIMES")),
    ("unknown type", "BAD-1", rfid("BAD-1", type="CARD")),
    ("unknown profile", "BAD-1", rfid("BAD-1", default_profile_type="TURBO")),
    ("uid too long", "U" * 37, rfid("U" * 37)),
    ("contract id too long", "BAD-1", rfid("BAD-1", contract_id="C" * 37)),
    ("issuer too long", "BAD-1", rfid("BAD-1", issuer="I" * 65)),
    ("issuer empty", "BAD-1", rfid("BAD-1", issuer="")),
    ("line break in issuer", "BAD-1", rfid("BAD-1", issuer="The\nNewMotion")),
    ("non-ASCII uid", "BAD-é", rfid("BAD-é")),
    ("language of three letters", "BAD-1", rfid("BAD-1", language="ita")),
    ("country code of three letters", "BAD-1", rfid("BAD-1", country_code="NLD")),
    ("energy contract without supplier", "BAD-1", rfid("BAD-1", energy_contract={"contract_id": "1"})),
    ("supplier with spaces around", "BAD-1", rfid("BAD-1", energy_contract={"supplier_name": " Eneco "})),
    ("uid differs from URL", "BAD-2", rfid("BAD-1")),
    ("party differs from URL", "BAD-1", rfid("BAD-1", country_code="DE")),
    ("token is a list", "BAD-1", [rfid("BAD-1")]),
    ("token is null", "BAD-1", None),
]


@pytest.mark.parametrize(("case", "uid", "body"), BAD_PUTS, ids=[c for c, _, _ in BAD_PUTS])
async def test_malformed_put_is_2001(tnm: httpx.AsyncClient, case: str, uid: str, body: Any) -> None:
    response = await tnm.put(f"{TOKENS}/NL/TNM/{uid}", json=body)
    refused(response, 200, 2001)
    refused(await tnm.get(f"{TOKENS}/NL/TNM/BAD-1"), 404, 2004)  # nothing was stored


async def test_malformed_requests_of_other_shapes_are_2001(tnm: httpx.AsyncClient) -> None:
    token = example("token_put_example.json")
    await put(tnm, token)
    not_json = await tnm.put(url(token), content=b"{not json", headers={"Content-Type": "application/json"})
    refused(not_json, 400, 2001)  # the transport layer: HTTP 400; everything that parses: HTTP 200
    checks = [
        await tnm.put(url(token), json=token, params={"type": "CARD"}),
        await tnm.put(url(token), json=token, params={"type": "APP_USER"}),  # the body says RFID
        await tnm.get(url(token), params={"type": "rfid "}),
        await tnm.get(f"{TOKENS}/NLD/TNM/{token['uid']}"),
        await tnm.get(f"{TOKENS}/NL/TN/{token['uid']}"),
        await tnm.get(f"{TOKENS}/NL/TNM/{'X' * 37}"),
        await tnm.patch(url(token), json={"valid": False}),  # no last_updated
        await tnm.patch(url(token), json={"valid": None, "last_updated": "2030-01-01T00:00:00Z"}),
        await tnm.patch(url(token), json={"issuer": None, "last_updated": "2030-01-01T00:00:00Z"}),
        await tnm.patch(url(token), json={"uid": "OTHER", "last_updated": "2030-01-01T00:00:00Z"}),
        await tnm.patch(url(token), json={"party_id": "ABC", "last_updated": "2030-01-01T00:00:00Z"}),
        await tnm.patch(url(token), json={"type": "APP_USER", "last_updated": "2030-01-01T00:00:00Z"}),
        await tnm.patch(url(token), json={"valid": "no", "last_updated": "2030-01-01T00:00:00Z"}),
        await tnm.patch(
            url(token), json={"energy_contract": {"contract_id": "x"}, "last_updated": "2030-01-01T00:00:00Z"}
        ),
        await tnm.patch(url(token), json=["valid", False]),
    ]
    for response in checks:
        refused(response, 200, 2001)
    assert (await tnm.get(url(token))).json()["data"] == token  # unchanged by any of them


async def test_unknown_token_is_2004(tnm: httpx.AsyncClient) -> None:
    refused(await tnm.get(f"{TOKENS}/NL/TNM/NOBODY"), 404, 2004)
    refused(await tnm.patch(f"{TOKENS}/NL/TNM/NOBODY", json=example("token_patch_example.json")), 404, 2004)
    token = example("token_put_example.json")
    await put(tnm, token)
    refused(await tnm.get(url(token), params={"type": "APP_USER"}), 404, 2004)  # it is an RFID token
