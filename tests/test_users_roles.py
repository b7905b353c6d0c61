"""Users, roles and API tokens: who may do what on the operator API and CLI, and the audit trail."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from stekker.app import Stekker
from tests.peers import now_iso, ocpp_station

ADMIN_PW = "admin-password-1"
PW = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_admin(api: httpx.AsyncClient, name: str = "root") -> str:
    """The first user (on the open API), logged in: its token."""
    created = await api.post("/api/users", json={"username": name, "password": ADMIN_PW, "role": "admin"})
    assert created.status_code == 201, created.text
    return await login(api, name, ADMIN_PW)


async def login(api: httpx.AsyncClient, username: str, password: str) -> str:
    response = await api.post("/api/auth/token", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    secret: str = response.json()["token"]
    return secret


async def add_user(api: httpx.AsyncClient, admin: str, name: str, role: str) -> str:
    created = await api.post(
        "/api/users", json={"username": name, "password": PW, "role": role}, headers=bearer(admin)
    )
    assert created.status_code == 201, created.text
    return await login(api, name, PW)


async def audit_log(api: httpx.AsyncClient, admin: str, **params: Any) -> list[dict[str, Any]]:
    response = await api.get("/api/audit", params=params, headers=bearer(admin))
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


# ---- bootstrap --------------------------------------------------------------------------------


async def test_api_is_open_until_the_first_user_exists(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/stations")).status_code == 200
    me = (await api.get("/api/auth/me")).json()
    assert me["role"] == "admin" and me["user"] is None

    # the first user must be an admin, or nobody could manage users afterwards
    refused = await api.post("/api/users", json={"username": "eve", "password": PW, "role": "read-only"})
    assert refused.status_code == 409 and "first user must be an admin" in refused.json()["detail"]
    assert (await api.get("/api/stations")).status_code == 200  # still open

    created = await api.post("/api/users", json={"username": "Root", "password": ADMIN_PW, "role": "admin"})
    assert created.status_code == 201 and created.json()["username"] == "root"
    closed = await api.get("/api/stations")
    assert closed.status_code == 401 and closed.headers["WWW-Authenticate"] == "Bearer"
    assert "API token is required" in closed.json()["detail"]

    token = await login(api, "ROOT", ADMIN_PW)  # names are case-insensitive
    assert token.startswith("stk_")
    assert (await api.get("/api/stations", headers=bearer(token))).status_code == 200
    me = (await api.get("/api/auth/me", headers=bearer(token))).json()
    assert me["actor"] == "user:root" and me["role"] == "admin" and me["user"]["username"] == "root"
    assert me["user"]["last_login_at"] is not None

    # the creation was done by the open API's caller, the login by the user
    [entry] = await audit_log(api, token, action="user.created")
    assert entry["actor"] == "operator" and entry["object_id"] == "root" and entry["result"] == "ok"


@pytest.mark.parametrize("settings_overrides", [{"api_token": "bootstrap-secret-for-tests"}])
async def test_bootstrap_token_is_an_admin_and_closes_the_api(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/stations")).status_code == 401
    boot = bearer("bootstrap-secret-for-tests")
    me = (await api.get("/api/auth/me", headers=boot)).json()
    assert me == {"actor": "api-token", "role": "admin", "user": None, "token_id": None}
    # with a bootstrap token the first user need not be an admin
    created = await api.post(
        "/api/users", json={"username": "viewer", "password": PW, "role": "read-only"}, headers=boot
    )
    assert created.status_code == 201
    viewer = await login(api, "viewer", PW)
    assert (await api.get("/api/stations", headers=bearer(viewer))).status_code == 200
    assert (await api.get("/api/stations", headers=bearer("nope"))).status_code == 401
    [entry] = await audit_log(api, "bootstrap-secret-for-tests", action="user.created")
    assert entry["actor"] == "api-token"


# ---- permissions --------------------------------------------------------------------------------

ROLES = ["admin", "operator", "helpdesk", "municipality", "read-only"]


async def test_permission_matrix(api: httpx.AsyncClient) -> None:
    root = await make_admin(api)
    tokens = {"admin": root}
    for role in ROLES[1:]:
        tokens[role] = await add_user(api, root, role.replace("-", ""), role)
    assert (
        await api.post("/api/stations", json={"authentication": "none", "id": "CP1"}, headers=bearer(root))
    ).status_code == 201

    variables = {"items": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "60"}]}
    # (method, path, body) → roles allowed
    matrix: list[tuple[str, str, Any, set[str]]] = [
        ("GET", "/api/stations", None, set(ROLES)),
        ("GET", "/api/sessions", None, set(ROLES)),
        ("POST", "/api/stations", {"id": "CP-NEW", "authentication": "none"}, {"admin", "operator"}),
        ("PUT", "/api/tokens", {"uid": "CARD1"}, {"admin", "operator"}),
        ("POST", "/api/sessions/999/remote-stop", None, {"admin", "operator", "helpdesk"}),
        ("POST", "/api/stations/CP1/variables/set", variables, {"admin", "operator"}),
        ("GET", "/api/audit", None, {"admin", "operator", "municipality"}),
        ("GET", "/api/users", None, {"admin"}),
        ("POST", "/api/users", {"username": "x", "password": PW, "role": "admin"}, {"admin"}),
    ]
    for method, path, body, allowed in matrix:
        for role, token in tokens.items():
            if path == "/api/stations" and method == "POST":
                body = {"id": f"CP-{role}", "authentication": "none"}
            if path == "/api/users" and method == "POST":
                body = {"username": f"new-{role}", "password": PW, "role": "read-only"}
            response = await api.request(method, path, json=body, headers=bearer(token))
            where = f"{role} {method} {path}: {response.status_code} {response.text}"
            if role in allowed:
                assert response.status_code not in (401, 403), where
            else:
                assert response.status_code == 403, where
                detail = response.json()["detail"]
                assert f"role {role} may not do this" in detail, where
                assert "allowed: admin" in detail and all(r in detail for r in allowed), where

    # what the denied calls tried did not happen
    stations = {s["id"] for s in (await api.get("/api/stations", headers=bearer(root))).json()}
    assert stations == {"CP1", "CP-admin", "CP-operator"}
    assert [t["uid"] for t in (await api.get("/api/tokens", headers=bearer(root))).json()] == ["CARD1"]


async def test_helpdesk_stops_a_real_session_and_the_municipality_cannot(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    root = await make_admin(api)
    helen = await add_user(api, root, "helen", "helpdesk")
    mo = await add_user(api, root, "mo", "municipality")
    assert (await api.put("/api/tokens", json={"uid": "CARD-1"}, headers=bearer(root))).status_code == 200
    async with ocpp_station(ocpp_url, "CP-H") as cp:
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-1", meter_start=0, timestamp=now_iso())
        )
        session_id = started.transaction_id
        denied = await api.post(f"/api/sessions/{session_id}/remote-stop", headers=bearer(mo))
        assert denied.status_code == 403
        assert cp.calls("RemoteStopTransaction") == []
        stopped = await api.post(f"/api/sessions/{session_id}/remote-stop", headers=bearer(helen))
        assert stopped.status_code == 200 and stopped.json()["status"] == "Accepted"
        assert cp.calls("RemoteStopTransaction") == [{"transaction_id": session_id}]
    entries = await audit_log(api, root, action="session.remote_stop")
    assert entries and {e["actor"] for e in entries} == {"user:helen"}


async def test_role_change_and_disable_take_effect_at_once(api: httpx.AsyncClient) -> None:
    root = await make_admin(api)
    op = await add_user(api, root, "olga", "operator")
    assert (
        await api.post("/api/stations", json={"authentication": "none", "id": "A"}, headers=bearer(op))
    ).status_code == 201
    changed = await api.put("/api/users/olga/role", json={"role": "read-only"}, headers=bearer(root))
    assert changed.status_code == 200 and changed.json()["role"] == "read-only"
    assert (
        await api.post("/api/stations", json={"authentication": "none", "id": "B"}, headers=bearer(op))
    ).status_code == 403
    assert (await api.get("/api/stations", headers=bearer(op))).status_code == 200

    assert (await api.post("/api/users/olga/disable", headers=bearer(root))).json()["active"] is False
    denied = await api.get("/api/stations", headers=bearer(op))
    assert denied.status_code == 401 and denied.json()["detail"] == "user olga is disabled"
    disabled_login = await api.post("/api/auth/token", json={"username": "olga", "password": PW})
    assert disabled_login.status_code == 401 and "disabled" in disabled_login.json()["detail"]
    assert (await api.post("/api/users/olga/enable", headers=bearer(root))).json()["active"] is True
    assert (await api.get("/api/stations", headers=bearer(op))).status_code == 200

    actions = [e["action"] for e in await audit_log(api, root, action="user.", object_id="olga")]
    assert actions[:3] == ["user.enabled", "user.disabled", "user.role.changed"]


async def test_the_last_active_admin_cannot_be_demoted_or_disabled(api: httpx.AsyncClient) -> None:
    root = await make_admin(api)
    demote = await api.put("/api/users/root/role", json={"role": "operator"}, headers=bearer(root))
    assert demote.status_code == 409 and "last active admin" in demote.json()["detail"]
    disable = await api.post("/api/users/root/disable", headers=bearer(root))
    assert disable.status_code == 409
    await add_user(api, root, "second", "admin")
    assert (
        await api.put("/api/users/root/role", json={"role": "operator"}, headers=bearer(root))
    ).status_code == 200


# ---- API tokens ------------------------------------------------------------------------------


async def test_token_lifecycle(api: httpx.AsyncClient) -> None:
    root = await make_admin(api)
    await add_user(api, root, "helen", "helpdesk")

    created = await api.post(
        "/api/users/helen/tokens", json={"name": "wallboard", "expires_days": 30}, headers=bearer(root)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret, token_id = body["token"], body["id"]
    assert secret.startswith("stk_") and len(secret) > 40 and body["prefix"] == secret[:8]
    assert body["username"] == "helen" and body["usable"] and body["created_by"] == "user:root"

    me = (await api.get("/api/auth/me", headers=bearer(secret))).json()
    assert me["actor"] == "user:helen" and me["role"] == "helpdesk" and me["token_id"] == token_id

    listed = await api.get("/api/users/helen/tokens", headers=bearer(root))
    assert listed.status_code == 200 and secret not in listed.text and "token_hash" not in listed.text
    [entry] = [t for t in listed.json() if t["id"] == token_id]
    assert entry["name"] == "wallboard" and entry["last_used_at"] is not None and "token" not in entry

    revoked = await api.post(f"/api/auth/tokens/{token_id}/revoke", headers=bearer(root))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] and not revoked.json()["usable"]
    after = await api.get("/api/stations", headers=bearer(secret))
    assert after.status_code == 401 and "revoked" in after.json()["detail"]
    assert after.headers["WWW-Authenticate"] == "Bearer"
    again = await api.post(f"/api/auth/tokens/{token_id}/revoke", headers=bearer(root))
    assert again.status_code == 200  # idempotent

    # an expiring token works until it expires
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    short = await api.post(
        "/api/users/helen/tokens", json={"name": "brief", "expires_at": soon}, headers=bearer(root)
    )
    assert short.status_code == 201, short.text
    short_secret = short.json()["token"]
    assert (await api.get("/api/stations", headers=bearer(short_secret))).status_code == 200
    await asyncio.sleep(1.6)
    expired = await api.get("/api/stations", headers=bearer(short_secret))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]

    unknown = await api.get("/api/stations", headers=bearer("stk_" + "A" * 43))
    assert unknown.status_code == 401 and unknown.json()["detail"] == "unknown API token"

    audited = await audit_log(api, root, object_type="api_token", object_id=str(token_id))
    assert [e["action"] for e in audited] == ["api_token.revoked", "api_token.created"]
    assert all(e["actor"] == "user:root" for e in audited)


async def test_users_manage_their_own_tokens_only(api: httpx.AsyncClient) -> None:
    root = await make_admin(api)
    rita = await add_user(api, root, "rita", "read-only")
    await add_user(api, root, "mo", "municipality")

    own = await api.post("/api/users/rita/tokens", json={"name": "script"}, headers=bearer(rita))
    assert own.status_code == 201 and own.json()["expires_at"] is None
    assert (await api.get("/api/users/rita/tokens", headers=bearer(rita))).status_code == 200

    other = await api.post("/api/users/mo/tokens", json={"name": "x"}, headers=bearer(rita))
    assert other.status_code == 403 and "another user" in other.json()["detail"]
    assert (await api.get("/api/users/mo/tokens", headers=bearer(rita))).status_code == 403
    [mo_token] = (await api.get("/api/users/mo/tokens", headers=bearer(root))).json()
    assert (
        await api.post(f"/api/auth/tokens/{mo_token['id']}/revoke", headers=bearer(rita))
    ).status_code == 403
    assert (await api.get("/api/users/mo", headers=bearer(rita))).status_code == 403

    # revoking your own login token logs you out
    me = (await api.get("/api/auth/me", headers=bearer(rita))).json()
    assert (
        await api.post(f"/api/auth/tokens/{me['token_id']}/revoke", headers=bearer(rita))
    ).status_code == 200
    assert (await api.get("/api/auth/me", headers=bearer(rita))).status_code == 401


# ---- login -----------------------------------------------------------------------------------


class FakeClock:
    """The server's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def client_from(server: Stekker, address: str) -> httpx.AsyncClient:
    """An HTTP client whose connections come from `address` (any 127.x.y.z is loopback), so
    the server sees another client address (and trusts no X-Forwarded-For from it)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", transport=transport, timeout=30)


async def test_a_strangers_wrong_passwords_do_not_lock_the_admin_out(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    root = await make_admin(api, "admin")
    clock = FakeClock()
    server.ctx.clock = clock
    stranger = client_from(server, "127.0.0.2")
    guess = {"username": "admin", "password": "guess-guess"}
    async with stranger:
        answers = []
        for n in range(50):
            wrong = await stranger.post("/api/auth/token", json=guess)
            answers.append(wrong.status_code)
            if n < 8 and wrong.status_code == 429:  # the first 8 wait their turn: each is checked
                clock.advance(int(wrong.headers["Retry-After"]))
                wrong = await stranger.post("/api/auth/token", json=guess)
                answers[-1] = wrong.status_code
            if wrong.status_code == 401:
                assert wrong.json()["detail"] == "wrong user name or password"
        assert answers[:8] == [401] * 8 and answers[8:] == [429] * 42
        # the admin, from their own address, logs in at once
        mine = await api.post("/api/auth/token", json={"username": "admin", "password": ADMIN_PW})
        assert mine.status_code == 201, mine.text
        # and the stranger, guessing right now, still waits: the password is not even checked
        right = await stranger.post("/api/auth/token", json={"username": "admin", "password": ADMIN_PW})
        assert right.status_code == 429 and right.headers["Retry-After"] == "32"

    attempts = await audit_log(api, root, action="auth.login", object_id="admin", limit=1000)
    failed = [e for e in attempts if e["result"] == "failed"]
    assert len(failed) == 8 and {e["actor"] for e in failed} == {"anonymous"}
    assert {e["detail"]["address"] for e in failed} == {"127.0.0.2"}
    assert [e["detail"]["retry_after"] for e in reversed(failed)] == [0, 0, 1, 2, 4, 8, 16, 32]
    assert [e["result"] for e in attempts[:1]] == ["ok"] and attempts[0]["detail"]["address"] == "127.0.0.1"
    assert "guess-guess" not in str(attempts)


async def test_the_wait_doubles_per_failure_and_a_success_clears_it(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    root = await make_admin(api)
    await add_user(api, root, "lena", "operator")
    clock = FakeClock()
    server.ctx.clock = clock

    async def attempt(password: str) -> httpx.Response:
        return await api.post("/api/auth/token", json={"username": "lena", "password": password})

    for _ in range(3):
        assert (await attempt("nope-nope")).status_code == 401
    for wait in (1, 2, 4):
        early = await attempt(PW)  # even the right password waits its turn
        assert early.status_code == 429 and early.headers["Retry-After"] == str(wait)
        assert "too many failed logins" in early.json()["detail"] and "lena" not in early.json()["detail"]
        clock.advance(wait - 0.5)
        assert (await attempt("nope-nope")).headers["Retry-After"] == "1"  # still inside: not counted
        clock.advance(0.5)
        assert (await attempt("nope-nope")).status_code == 401
    clock.advance(8)
    await login(api, "lena", PW)
    assert (await attempt("nope-nope")).status_code == 401  # from zero again

    # a name that does not exist answers the same way, so the throttle reveals nothing
    for _ in range(3):
        ghost = await api.post("/api/auth/token", json={"username": "ghost", "password": "guess-guess"})
        assert ghost.status_code == 401 and ghost.json()["detail"] == "wrong user name or password"
    ghost = await api.post("/api/auth/token", json={"username": "ghost", "password": "guess-guess"})
    assert ghost.status_code == 429 and ghost.headers["Retry-After"] == "1"
    assert ghost.json()["error"] == "too_many_requests"
    documented = (await api.get("/openapi.json")).json()["paths"]["/api/auth/token"]["post"]["responses"]
    assert {"401", "429"} <= set(documented)


async def test_failed_logins_are_logged_without_a_name_that_may_be_a_password(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await make_admin(api, "admin")
    caplog.set_level(logging.INFO, logger="stekker.services.users")
    # the password typed into the name field, then the right name with a wrong password
    typo = await api.post("/api/auth/token", json={"username": "hunter2secret", "password": "x"})
    wrong = await api.post("/api/auth/token", json={"username": "admin", "password": "not-the-one"})
    assert typo.status_code == wrong.status_code == 401
    assert typo.json() == wrong.json()  # the answer does not say which names exist
    assert "hunter2secret" not in caplog.text and "not-the-one" not in caplog.text
    assert "failed login for an unknown user name from 127.0.0.1" in caplog.text
    assert "failed login for user admin from 127.0.0.1" in caplog.text


@pytest.mark.parametrize("settings_overrides", [{"login_address_free_failures": 5}])
async def test_one_address_trying_many_names_is_slowed(api: httpx.AsyncClient, server: Stekker) -> None:
    await make_admin(api)
    server.ctx.clock = FakeClock()
    stuffer = client_from(server, "127.0.0.3")

    def guess(n: int) -> dict[str, str]:
        return {"username": f"user{n}", "password": "pw-pw"}

    async with stuffer:
        answers = [(await stuffer.post("/api/auth/token", json=guess(n))).status_code for n in range(6)]
        assert answers == [401] * 5 + [429]
    assert (await api.post("/api/auth/token", json=guess(9))).status_code == 401  # another address


async def test_users_change_their_own_password(api: httpx.AsyncClient) -> None:
    root = await make_admin(api)
    rita = await add_user(api, root, "rita", "read-only")
    wrong = await api.post(
        "/api/auth/password",
        json={"current_password": "not-it", "new_password": "new-password-1"},
        headers=bearer(rita),
    )
    assert wrong.status_code == 403 and "current password is wrong" in wrong.json()["detail"]
    short = await api.post(
        "/api/auth/password", json={"current_password": PW, "new_password": "x"}, headers=bearer(rita)
    )
    assert short.status_code == 422
    changed = await api.post(
        "/api/auth/password",
        json={"current_password": PW, "new_password": "new-password-1"},
        headers=bearer(rita),
    )
    assert changed.status_code == 200
    assert (await api.post("/api/auth/token", json={"username": "rita", "password": PW})).status_code == 401
    await login(api, "rita", "new-password-1")
    [entry] = await audit_log(api, root, action="user.password.changed")
    assert entry["actor"] == "user:rita" and "new-password-1" not in str(entry)


# ---- audit log --------------------------------------------------------------------------------


async def test_audit_log_filters_and_holds_no_secrets(api: httpx.AsyncClient) -> None:
    root = await make_admin(api)
    before = datetime.now(UTC)
    await add_user(api, root, "olaf", "operator")
    olaf = await login(api, "olaf", PW)
    token = (await api.post("/api/users/olaf/tokens", json={"name": "cron"}, headers=bearer(olaf))).json()
    await api.post("/api/users/olaf/password", json={"password": "second-secret-pw"}, headers=bearer(root))
    assert (await api.put("/api/tokens", json={"uid": "CARD9"}, headers=bearer(olaf))).status_code == 200

    everything = await api.get("/api/audit", params={"limit": 1000}, headers=bearer(root))
    text = everything.text
    for secret in (PW, ADMIN_PW, "second-secret-pw", token["token"], olaf, root):
        assert secret not in text
    assert "scrypt$" not in text

    by_olaf = await audit_log(api, root, actor="user:olaf")
    assert {e["action"] for e in by_olaf} >= {"api_token.created", "auth.login"}
    assert all(e["actor"] == "user:olaf" for e in by_olaf)
    assert any(e["object_type"] == "token" for e in by_olaf)  # the RFID token change, by olaf

    prefix = await audit_log(api, root, action="user.")
    assert {e["action"] for e in prefix} == {"user.created", "user.password.reset"}
    assert await audit_log(api, root, action="user%") == []  # a prefix, not a pattern
    since = await audit_log(api, root, **{"from": before.isoformat(), "to": datetime.now(UTC).isoformat()})
    assert len(since) >= 5 and all(e["object_id"] != "root" for e in since)
    earlier = await audit_log(api, root, to=before.isoformat())
    assert {(e["action"], e["object_id"]) for e in earlier} == {
        ("user.created", "root"),
        ("auth.login", "root"),
    }
    page = await audit_log(api, root, limit=2, offset=1)
    assert [e["id"] for e in page] == [e["id"] for e in (await audit_log(api, root))[1:3]]

    municipality = await add_user(api, root, "mia", "municipality")
    assert (await api.get("/api/audit", headers=bearer(municipality))).status_code == 200
    helpdesk = await add_user(api, root, "hank", "helpdesk")
    assert (await api.get("/api/audit", headers=bearer(helpdesk))).status_code == 403

    # user lists carry no password hashes
    listed = await api.get("/api/users", headers=bearer(root))
    assert "password" not in listed.text and "scrypt" not in listed.text


# ---- hostile input ---------------------------------------------------------------------------

BAD_USERS: list[dict[str, Any]] = [
    {},
    {"username": "", "password": PW, "role": "operator"},
    {"username": "x" * 65, "password": PW, "role": "operator"},
    {"username": "a' OR '1'='1", "password": PW, "role": "operator"},
    {"username": "bob; DROP TABLE users;--", "password": PW, "role": "operator"},
    {"username": "<script>alert(1)</script>", "password": PW, "role": "operator"},
    {"username": "../../etc/passwd", "password": PW, "role": "operator"},
    {"username": "bob\u0000", "password": PW, "role": "operator"},
    {"username": "bob", "password": "short", "role": "operator"},
    {"username": "bob", "password": "x" * 257, "role": "operator"},
    {"username": "bob", "password": PW, "role": "superuser"},
    {"username": "bob", "password": PW, "role": "ADMIN"},
    {"username": "bob", "password": PW, "role": None},
    {"username": ["bob"], "password": PW, "role": "operator"},
    {"username": "bob", "password": 12345678, "role": "operator"},
    {"username": "bob", "password": PW, "role": "operator", "display_name": "x" * 256},
    {"username": "bob", "password": PW, "role": "operator", "display_name": "bell\u0007"},
]


async def test_hostile_input_is_422_and_changes_nothing(api: httpx.AsyncClient) -> None:
    root = await make_admin(api)
    auth = bearer(root)
    for body in BAD_USERS:
        response = await api.post("/api/users", json=body, headers=auth)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"]
    huge = await api.post(
        "/api/users", json={"username": "bob", "password": "p" * 1_000_000, "role": "operator"}, headers=auth
    )
    assert huge.status_code == 422
    assert [u["username"] for u in (await api.get("/api/users", headers=auth)).json()] == ["root"]

    await add_user(api, root, "bob", "operator")
    duplicate = await api.post(
        "/api/users", json={"username": "BOB", "password": PW, "role": "operator"}, headers=auth
    )
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]

    bad_requests: list[tuple[str, str, Any, int]] = [
        ("PUT", "/api/users/bob/role", {"role": "god"}, 422),
        ("PUT", "/api/users/bob/role", {}, 422),
        ("GET", "/api/users/a'%20OR%201=1", None, 422),
        ("GET", "/api/users/" + "x" * 100, None, 422),
        ("GET", "/api/users/nobody", None, 404),
        ("PUT", "/api/users/nobody/role", {"role": "operator"}, 404),
        ("POST", "/api/users/nobody/disable", None, 404),
        ("POST", "/api/users/bob/password", {"password": "x" * 300}, 422),
        ("POST", "/api/users/bob/tokens", {"name": ""}, 422),
        ("POST", "/api/users/bob/tokens", {"name": "x" * 101}, 422),
        ("POST", "/api/users/bob/tokens", {"expires_days": 0}, 422),
        ("POST", "/api/users/bob/tokens", {"expires_days": "soon"}, 422),
        ("POST", "/api/users/bob/tokens", {"expires_at": "2027-01-01T00:00:00"}, 422),
        ("POST", "/api/users/bob/tokens", {"expires_at": "2000-01-01T00:00:00Z"}, 409),
        ("POST", "/api/users/bob/tokens", {"expires_days": 1, "expires_at": "2099-01-01T00:00:00Z"}, 422),
        ("POST", "/api/auth/tokens/abc/revoke", None, 422),
        ("POST", "/api/auth/tokens/0/revoke", None, 422),
        ("POST", "/api/auth/tokens/99999999999999999999/revoke", None, 422),
        ("POST", "/api/auth/tokens/4242/revoke", None, 404),
        ("GET", "/api/audit?limit=0", None, 422),
        ("GET", "/api/audit?limit=100000", None, 422),
        ("GET", "/api/audit?from=yesterday", None, 422),
        ("GET", "/api/audit?from=2026-01-01T00:00:00", None, 422),
        ("GET", "/api/audit?actor=" + "x" * 200, None, 422),
        ("POST", "/api/auth/token", {"username": "bob' --", "password": "x"}, 422),
        ("POST", "/api/auth/token", {"username": "bob", "password": "x" * 300}, 422),
        ("POST", "/api/auth/token", {"username": "bob"}, 422),
    ]
    for method, path, body, expected in bad_requests:
        response = await api.request(method, path, json=body, headers=auth)
        assert response.status_code == expected, (method, path, body, response.text)
        assert response.json()["detail"]
    assert (await api.get("/api/users/bob", headers=auth)).json()["role"] == "operator"

    # hostile Authorization headers are a 401, never a 500
    for value in (
        "Bearer " + "stk_" + "x" * 5000,
        "Bearer stk_'; DROP TABLE api_tokens;--",
        "Basic abc",
        "Bearer",
    ):
        response = await api.get("/api/stations", headers={"Authorization": value})
        assert response.status_code == 401, (value, response.text)
    assert (await api.get("/api/stations", headers=auth)).status_code == 200


# ---- OpenAPI --------------------------------------------------------------------------------


async def test_every_api_route_states_its_roles(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    missing = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if (method, path) == ("post", "/api/auth/token"):
                continue
            roles = operation.get("x-roles")
            # admin may do everything except the municipality's own decisions
            if not roles or (roles != ["municipality"] and "admin" not in roles):
                missing.append(f"{method.upper()} {path}")
            elif "Roles: " not in operation.get("description", ""):
                missing.append(f"{method.upper()} {path}")
    assert missing == []
    approve = spec["paths"]["/api/tariffs/{code}/versions/{version}/approve"]["post"]
    assert approve["x-roles"] == ["municipality"]
    assert spec["paths"]["/api/users"]["post"]["x-roles"] == ["admin"]
    assert spec["paths"]["/api/stations"]["get"]["x-roles"] == ROLES
    remote_stop = spec["paths"]["/api/sessions/{session_id}/remote-stop"]["post"]
    assert remote_stop["x-roles"] == ["admin", "operator", "helpdesk"]
    assert remote_stop["description"].endswith("Roles: admin, operator, helpdesk.")


# ---- CLI -------------------------------------------------------------------------------------


async def test_cli_manages_users_and_tokens(
    server: Stekker, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from stekker.cli import app as cli_app

    monkeypatch.setenv("STEKKER_API_URL", f"http://127.0.0.1:{server.http_port}")
    monkeypatch.delenv("STEKKER_API_TOKEN", raising=False)
    runner = CliRunner()

    async def cli(*args: str, stdin: str | None = None) -> Any:
        return await asyncio.to_thread(runner.invoke, cli_app, list(args), input=stdin)

    # fresh install: the API is open, the first admin is created and logged in at once
    first = await cli("user", "add", "root", "--role", "admin", "--password-stdin", stdin=ADMIN_PW + "\n")
    assert first.exit_code == 0, first.output
    assert "user root created with role admin" in first.output
    root_token = next(line for line in first.output.splitlines() if line.startswith("stk_"))
    closed = await cli("station", "list")
    assert closed.exit_code == 1 and "401" in closed.output and "STEKKER_API_TOKEN" in closed.output

    monkeypatch.setenv("STEKKER_API_TOKEN", root_token)
    added = await cli(
        "user", "add", "bob", "--role", "helpdesk", "--display-name", "Bob B", "--password-stdin", stdin=PW
    )
    assert added.exit_code == 0 and "created with role helpdesk" in added.output, added.output
    assert "stk_" not in added.output  # no login when the CLI already has a token
    bad_role = await cli("user", "add", "carl", "--role", "superuser", "--password-stdin", stdin=PW)
    assert bad_role.exit_code == 2
    prompted = await cli("user", "add", "dora", "--role", "read-only", stdin=f"{PW}\n{PW}\n")
    assert prompted.exit_code == 0, prompted.output

    listed = await cli("user", "list")
    assert listed.exit_code == 0 and all(n in listed.output for n in ("root", "bob", "dora", "helpdesk"))
    assert (await cli("user", "role", "bob", "operator")).exit_code == 0
    made = await cli("user", "token", "bob", "--name", "script", "--expires-days", "7")
    assert made.exit_code == 0, made.output
    bob_token = next(line for line in made.output.splitlines() if line.startswith("stk_"))
    tokens = await cli("user", "tokens", "bob")
    assert tokens.exit_code == 0 and "script" in tokens.output and bob_token not in tokens.output

    monkeypatch.setenv("STEKKER_API_TOKEN", bob_token)
    assert (await cli("station", "list")).exit_code == 0
    denied = await cli("user", "list")
    assert (
        denied.exit_code == 1 and "403" in denied.output and "role operator may not do this" in denied.output
    )

    monkeypatch.setenv("STEKKER_API_TOKEN", root_token)
    listed_tokens = await api.get("/api/users/bob/tokens", headers=bearer(root_token))
    token_id = listed_tokens.json()[0]["id"]
    assert (await cli("user", "revoke", str(token_id))).exit_code == 0
    monkeypatch.setenv("STEKKER_API_TOKEN", bob_token)
    revoked = await cli("station", "list")
    assert revoked.exit_code == 1 and "revoked" in revoked.output

    monkeypatch.setenv("STEKKER_API_TOKEN", root_token)
    assert (await cli("user", "disable", "dora")).exit_code == 0
    logged = await cli("user", "login", "dora", "--password-stdin", stdin=PW)
    assert logged.exit_code == 1 and "disabled" in logged.output
    assert (await cli("user", "enable", "dora")).exit_code == 0
    logged = await cli("user", "login", "dora", "--password-stdin", stdin=PW)
    assert logged.exit_code == 0 and "stk_" in logged.output
