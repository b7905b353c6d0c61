"""OCPI 2.2.1 real-time authorization (we are the CPO, asking): a station's Authorize for a
roaming partner's token whose whitelist asks is put to the token's eMSP, over loopback, and the
start that follows is judged by that answer without asking again.

The eMSP is a small HTTP server in the test (its tokens SENDER endpoint), answering
`POST /tokens/{uid}/authorize` as each test tells it and recording every call. Its tokens
reach us by OCPI PUT, as in production. Stations are raw OCPP-J sockets (1.6 and 2.0.1).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stekker.app import Stekker
from stekker.db.models import AuthorizationRequest
from stekker.domain.authorization import AuthStatus, EmspAnswer, TokenFacts, decide
from stekker.services.ocpi_partners import add_registered_partner
from stekker.services.realtime_authorization import authorization_reference, read_answer
from tests.observe import eventually
from tests.peers import now_iso, raw_station
from tests.peers201 import tx_event
from tests.test_ocpi_commands import add_site, auth, ocpi_token
from tests.test_ocpi_credentials import serving

TIMEOUT = 1.0  # our ocpi_authorize_timeout in these tests
OUR_TOKEN_AT_ABC = "our-token-at-ABC"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"ocpi_authorize_timeout": TIMEOUT}


# --- the eMSP's side ----------------------------------------------------------------------------

Answer = Callable[[], Awaitable[Response]]


def envelope(data: Any = None, status_code: int = 1000, http: int = 200) -> Answer:
    async def answer() -> Response:
        body: dict[str, Any] = {"status_code": status_code, "timestamp": "2026-11-24T00:00:00Z"}
        if data is not None:
            body["data"] = data
        return JSONResponse(body, status_code=http)

    return answer


def allowed(value: str, uid: str, **extra: Any) -> Answer:
    return envelope({"allowed": value, "token": ocpi_token(uid, whitelist="NEVER"), **extra})


def raw(content: str, http: int = 200, media_type: str = "application/json") -> Answer:
    async def answer() -> Response:
        return Response(content, status_code=http, media_type=media_type)

    return answer


class TokensEmsp:
    """The eMSP's tokens SENDER endpoint: answers real-time authorizations from `answers`
    (by uid) and records each call. `slow` answers wait until the test ends."""

    def __init__(self) -> None:
        self.port = 0
        self.answers: dict[str, Answer] = {}
        self.calls: list[dict[str, Any]] = []
        self.release = asyncio.Event()

    def slow(self) -> Answer:
        async def answer() -> Response:
            await self.release.wait()
            return await allowed("ALLOWED", "late")()

        return answer

    def app(self) -> Starlette:
        async def authorize(request: Request) -> Response:
            uid = request.path_params["uid"]
            content = await request.body()
            self.calls.append(
                {
                    "uid": uid,
                    "query": dict(request.query_params),
                    "body": json.loads(content) if content else None,
                    "headers": dict(request.headers),
                }
            )
            return await self.answers.get(uid, envelope(None, 2004, 404))()

        return Starlette(routes=[Route("/tokens/{uid}/authorize", authorize, methods=["POST"])])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/tokens/"

    def calls_for(self, uid: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["uid"] == uid]


@asynccontextmanager
async def tokens_emsp() -> AsyncIterator[TokensEmsp]:
    emsp = TokensEmsp()
    async with serving(emsp):  # type: ignore[arg-type]
        try:
            yield emsp
        finally:
            emsp.release.set()


def closed_port() -> int:
    """A loopback port nothing listens on (an eMSP that is down)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def partner(server: Stekker, endpoint: str | None, party: str = "ABC") -> dict[str, str]:
    """A registered eMSP whose tokens SENDER endpoint is `endpoint`; returns its headers to us."""
    token = f"emsp-{party.lower()}-token"
    await add_registered_partner(
        server.ctx, name=f"eMSP {party}", country_code="NL", party_id=party, token=token,
        outgoing_token=OUR_TOKEN_AT_ABC, endpoints={} if endpoint is None else {"tokens:SENDER": endpoint},
    )  # fmt: skip
    return auth(token)


async def push(
    api: httpx.AsyncClient, headers: dict[str, str], uid: str, whitelist: str, **extra: Any
) -> None:
    token = ocpi_token(uid, whitelist=whitelist, **extra)
    response = await api.put(f"/ocpi/2.2.1/tokens/NL/ABC/{uid}", json=token, headers=headers)
    assert response.status_code == 200 and response.json()["status_code"] == 1000, response.text


async def reasons(server: Stekker, kind: str = "Authorize", station: str | None = None) -> dict[str, str]:
    """The reason we recorded, by uid (the latest of `kind`, at `station` when given)."""
    query = select(AuthorizationRequest).where(AuthorizationRequest.kind == kind)
    if station is not None:
        query = query.where(AuthorizationRequest.station_id == station)
    async with server.ctx.db() as db:
        rows = (await db.execute(query.order_by(AuthorizationRequest.id))).scalars()
        return {r.token_uid: r.reason for r in rows}


def start(uid: str, connector: int = 1) -> dict[str, Any]:
    return {"connectorId": connector, "idTag": uid, "meterStart": 0, "timestamp": now_iso()}


async def statuses(st: Any, *uids: str) -> dict[str, str]:
    return {uid: (await st.ok("Authorize", {"idTag": uid}))["idTagInfo"]["status"] for uid in uids}


# --- over loopback ------------------------------------------------------------------------------


async def test_the_emsp_decides_at_authorize_and_its_answer_holds_for_the_start(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with tokens_emsp() as emsp:
        headers = await partner(server, emsp.endpoint)
        location_id = await add_site(api, "RT1")
        for uid in ("RT-OK", "RT-BLOCK", "RT-NA", "RT-NC", "RT-EXP", "RT-UNKNOWN"):
            await push(api, headers, uid, "NEVER")
        await push(api, headers, "RT-STALE", "NEVER", valid=False)  # our copy says invalid
        emsp.answers = {
            "RT-OK": allowed("ALLOWED", "RT-OK", authorization_reference="REF-42"),
            "RT-BLOCK": allowed("BLOCKED", "RT-BLOCK"),
            "RT-NA": allowed("NOT_ALLOWED", "RT-NA", info={"language": "en", "text": "Not at this site"}),
            "RT-NC": allowed("NO_CREDIT", "RT-NC"),
            "RT-EXP": allowed("EXPIRED", "RT-EXP"),
            "RT-STALE": allowed("ALLOWED", "RT-STALE"),
            # RT-UNKNOWN: HTTP 404 with OCPI 2004, as the spec wants for a token it does not know
        }
        async with raw_station(ocpp_url, "RT1") as st:
            assert await statuses(
                st, "RT-OK", "RT-BLOCK", "RT-NA", "RT-NC", "RT-EXP", "RT-UNKNOWN", "RT-STALE"
            ) == {
                "RT-OK": "Accepted",
                "RT-BLOCK": "Blocked",
                "RT-NA": "Invalid",
                "RT-NC": "Invalid",
                "RT-EXP": "Expired",
                "RT-UNKNOWN": "Invalid",
                "RT-STALE": "Accepted",  # the eMSP owns the token: its answer is newer than our copy
            }
            # what the eMSP received: its token for us, our party, the station's location
            call = emsp.calls_for("RT-OK")[0]
            assert call["query"] == {"type": "RFID"}
            assert call["body"] == {"location_id": location_id, "evse_uids": ["NL*STK*ERT1*1"]}
            sent = call["headers"]
            assert sent["authorization"] == "Token " + base64.b64encode(OUR_TOKEN_AT_ABC.encode()).decode()
            assert (sent["ocpi-from-country-code"], sent["ocpi-from-party-id"]) == ("NL", "STK")
            assert (sent["ocpi-to-country-code"], sent["ocpi-to-party-id"]) == ("NL", "ABC")
            assert sent["x-request-id"] == sent["x-correlation-id"]

            # the starts that follow are judged by the eMSP's answers, without asking again
            assert (await st.ok("StartTransaction", start("RT-OK")))["idTagInfo"]["status"] == "Accepted"
            assert (await st.ok("StartTransaction", start("RT-BLOCK", 2)))["idTagInfo"]["status"] == "Blocked"
            assert len(emsp.calls_for("RT-OK")) == 1 and len(emsp.calls_for("RT-BLOCK")) == 1
            assert len(emsp.calls) == 7

        # elsewhere the answer does not hold: that station never asked
        async with raw_station(ocpp_url, "RT2") as other:
            refused = await other.ok("StartTransaction", start("RT-OK"))
            assert refused["idTagInfo"]["status"] == "Invalid"
        assert len(emsp.calls) == 7

    said = await reasons(server)
    assert said["RT-OK"] == "eMSP answered ALLOWED (authorization_reference REF-42)"
    assert authorization_reference(said["RT-OK"]) == "REF-42"
    assert said["RT-NA"] == "eMSP answered NOT_ALLOWED: Not at this site"
    assert said["RT-NC"] == "eMSP answered NO_CREDIT"
    assert said["RT-UNKNOWN"] == "eMSP does not know the token (OCPI status 2004)"
    started = await reasons(server, "StartTransaction", "RT1")
    assert started["RT-OK"].startswith("as at Authorize ") and started["RT-OK"].endswith(said["RT-OK"])
    assert authorization_reference(started["RT-OK"]) == "REF-42"
    elsewhere = await reasons(server, "StartTransaction", "RT2")
    assert (
        elsewhere["RT-OK"] == "needs real-time authorization at the eMSP, which has not authorized this use"
    )


async def test_a_201_station_authorize_and_transaction_event(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with tokens_emsp() as emsp:
        headers = await partner(server, emsp.endpoint)
        await push(api, headers, "RT-201", "NEVER", type="APP_USER")
        emsp.answers = {"RT-201": allowed("ALLOWED", "RT-201")}
        async with raw_station(ocpp_url, "RT201", protocol="ocpp2.0.1") as st:
            token = {"idToken": "RT-201", "type": "Central"}
            answer = await st.ok("Authorize", {"idToken": token})
            assert answer["idTokenInfo"]["status"] == "Accepted"
            event = tx_event("Started", "tx-rt-1", 0, token="RT-201", meter_wh=0)
            answer = await st.ok("TransactionEvent", event)
            assert answer["idTokenInfo"]["status"] == "Accepted"
        assert len(emsp.calls) == 1
        assert emsp.calls[0]["query"] == {"type": "APP_USER"}
        assert emsp.calls[0]["body"] is None  # a station at no location: no LocationReferences


async def test_an_emsp_that_is_down(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> None:
    headers = await partner(server, f"http://127.0.0.1:{closed_port()}/tokens/")
    await push(api, headers, "DOWN-NEVER", "NEVER")
    await push(api, headers, "DOWN-OFFLINE", "ALLOWED_OFFLINE")
    await push(api, headers, "DOWN-ALLOWED", "ALLOWED")
    await push(api, headers, "DOWN-BLOCKED", "ALLOWED_OFFLINE", valid=False)
    async with raw_station(ocpp_url, "RT3") as st:
        assert await statuses(st, "DOWN-NEVER", "DOWN-OFFLINE", "DOWN-ALLOWED", "DOWN-BLOCKED") == {
            "DOWN-NEVER": "Invalid",  # only the eMSP may decide
            "DOWN-OFFLINE": "Accepted",  # our stored copy, as ALLOWED_OFFLINE permits
            "DOWN-ALLOWED": "Accepted",
            "DOWN-BLOCKED": "Blocked",
        }
        # no answer from the eMSP vouches for nothing: the stored copy decides the start
        assert (await st.ok("StartTransaction", start("DOWN-NEVER")))["idTagInfo"]["status"] == "Invalid"
        assert (await st.ok("StartTransaction", start("DOWN-OFFLINE", 2)))["idTagInfo"][
            "status"
        ] == "Accepted"
    said = await reasons(server)
    assert said["DOWN-NEVER"].startswith("eMSP not reachable: ConnectError")
    assert said["DOWN-NEVER"].endswith("; whitelist NEVER: only the eMSP may decide")
    assert said["DOWN-OFFLINE"].startswith("eMSP not reachable: ConnectError")
    assert said["DOWN-OFFLINE"].endswith("; decided from the stored token: token is valid")
    assert said["DOWN-BLOCKED"].endswith("; token is blocked")
    assert all(len(reason) <= 255 for reason in said.values())


async def test_an_emsp_without_a_tokens_endpoint(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    headers = await partner(server, None)
    await push(api, headers, "NOEP-NEVER", "NEVER")
    await push(api, headers, "NOEP-OFFLINE", "ALLOWED_OFFLINE")
    async with raw_station(ocpp_url, "RT4") as st:
        assert await statuses(st, "NOEP-NEVER", "NOEP-OFFLINE") == {
            "NOEP-NEVER": "Invalid",
            "NOEP-OFFLINE": "Accepted",
        }
    said = await reasons(server)
    assert said["NOEP-NEVER"] == (
        "eMSP not reachable: it has no tokens SENDER endpoint; whitelist NEVER: only the eMSP may decide"
    )


async def test_a_slow_emsp_is_cut_off_and_holds_up_nobody(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with tokens_emsp() as emsp:
        headers = await partner(server, emsp.endpoint)
        await push(api, headers, "SLOW-NEVER", "NEVER")
        await push(api, headers, "SLOW-OFFLINE", "ALLOWED_OFFLINE")
        assert (await api.put("/api/tokens", json={"uid": "OUR-CARD"})).status_code in (200, 201)
        emsp.answers = {"SLOW-NEVER": emsp.slow(), "SLOW-OFFLINE": emsp.slow()}
        async with raw_station(ocpp_url, "RT5") as st, raw_station(ocpp_url, "RT6") as bystander:
            waiting = asyncio.create_task(st.ok("Authorize", {"idTag": "SLOW-NEVER"}))
            await eventually(lambda: bool(emsp.calls_for("SLOW-NEVER")))  # the eMSP is being asked now
            # meanwhile another station's Authorize and start are answered: the eMSP call holds
            # no database transaction (the first Authorize is still waiting for the eMSP)
            assert (await bystander.ok("Authorize", {"idTag": "OUR-CARD"}))["idTagInfo"][
                "status"
            ] == "Accepted"
            assert (await bystander.ok("StartTransaction", start("OUR-CARD")))["idTagInfo"][
                "status"
            ] == "Accepted"
            assert not waiting.done()
            # cut off by our own timeout (the reason below says so), not by the eMSP's answer
            assert (await waiting)["idTagInfo"]["status"] == "Invalid"
            assert (await st.ok("Authorize", {"idTag": "SLOW-OFFLINE"}))["idTagInfo"]["status"] == "Accepted"
    said = await reasons(server)
    assert said["SLOW-NEVER"] == (
        f"eMSP not reachable: no answer within {TIMEOUT:g} s; whitelist NEVER: only the eMSP may decide"
    )
    assert said["SLOW-OFFLINE"].endswith("; decided from the stored token: token is valid")


async def test_always_tokens_and_our_own_are_never_asked(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with tokens_emsp() as emsp:
        headers = await partner(server, emsp.endpoint)
        await push(api, headers, "ALWAYS-1", "ALWAYS")
        await push(api, headers, "SHARED-UID", "NEVER")
        for uid in ("OWN-1", "SHARED-UID"):  # our own card wins over a partner's with the same uid
            assert (await api.put("/api/tokens", json={"uid": uid})).status_code in (200, 201)
        async with raw_station(ocpp_url, "RT7") as st:
            assert await statuses(st, "ALWAYS-1", "OWN-1", "SHARED-UID", "NOBODY") == {
                "ALWAYS-1": "Accepted",
                "OWN-1": "Accepted",
                "SHARED-UID": "Accepted",
                "NOBODY": "Invalid",
            }
            assert (await st.ok("StartTransaction", start("ALWAYS-1")))["idTagInfo"]["status"] == "Accepted"
        assert emsp.calls == []


async def test_the_latest_answer_at_this_station_holds_for_15_minutes(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with tokens_emsp() as emsp:
        headers = await partner(server, emsp.endpoint)
        await push(api, headers, "RECALL-1", "NEVER")
        async with raw_station(ocpp_url, "RT9") as st:
            emsp.answers["RECALL-1"] = allowed("ALLOWED", "RECALL-1", authorization_reference="R-1")
            assert (await statuses(st, "RECALL-1"))["RECALL-1"] == "Accepted"
            # the eMSP stumbles on the driver's second try: its answer a moment ago still holds
            emsp.answers["RECALL-1"] = raw("oops")
            assert (await statuses(st, "RECALL-1"))["RECALL-1"] == "Accepted"
            recalled = (await reasons(server, station="RT9"))["RECALL-1"]
            assert recalled.startswith("as at Authorize ") and authorization_reference(recalled) == "R-1"
            # then it blocks the token: the latest answer counts for the start
            emsp.answers["RECALL-1"] = allowed("BLOCKED", "RECALL-1")
            assert (await statuses(st, "RECALL-1"))["RECALL-1"] == "Blocked"
            assert (await st.ok("StartTransaction", start("RECALL-1")))["idTagInfo"]["status"] == "Blocked"
        assert len(emsp.calls) == 3


async def test_hostile_emsp_answers_and_endpoints(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with tokens_emsp() as emsp:
        headers = await partner(server, emsp.endpoint)
        await push(api, headers, "HUGE", "ALLOWED_OFFLINE")
        await push(api, headers, "HUGE-NEVER", "NEVER")
        huge = '{"status_code": 1000, "data": {"allowed": "ALLOWED", "pad": "' + "x" * 200_000 + '"}}'
        emsp.answers = {"HUGE": raw(huge), "HUGE-NEVER": raw(huge)}
        async with raw_station(ocpp_url, "RT10") as st:
            assert await statuses(st, "HUGE", "HUGE-NEVER") == {"HUGE": "Accepted", "HUGE-NEVER": "Invalid"}
    said = await reasons(server)
    assert said["HUGE-NEVER"].startswith("eMSP not reachable: its answer is over 64 KiB")
    # an endpoint URL that is no URL (from the partner's version details) is no answer either
    other = await partner(server, "http://[::1/not-a-url/", party="BAD")
    token = ocpi_token("BADURL-1", party="BAD", whitelist="NEVER")
    response = await api.put("/ocpi/2.2.1/tokens/NL/BAD/BADURL-1", json=token, headers=other)
    assert response.status_code == 200, response.text
    async with raw_station(ocpp_url, "RT11") as st:
        assert (await statuses(st, "BADURL-1"))["BADURL-1"] == "Invalid"
    assert (await reasons(server))["BADURL-1"].startswith("eMSP not reachable: ")


MALFORMED: dict[str, tuple[Answer, str]] = {
    "BAD-HTML": (raw("<html>busy</html>", 200, "text/html"), "HTTP 200, and its answer is not JSON"),
    "BAD-LIST": (raw("[1, 2]"), "HTTP 200, and its answer is not an OCPI response"),
    "BAD-NOSTATUS": (
        raw('{"data": {"allowed": "ALLOWED"}}'),
        "HTTP 200, and its answer has no OCPI status_code",
    ),
    "BAD-2002": (envelope(None, 2002), "OCPI status 2002"),
    "BAD-3000": (envelope(None, 3000, 500), "HTTP 500, OCPI status 3000"),
    "BAD-NODATA": (envelope(None), "its answer holds no AuthorizationInfo"),
    "BAD-MAYBE": (allowed("MAYBE", "BAD-MAYBE"), 'unknown allowed value "MAYBE"'),
    "BAD-OTHER": (allowed("ALLOWED", "SOMEONE-ELSE"), "it answered about another token (SOMEONE-ELSE)"),
}


async def test_malformed_answers_are_no_answer(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    async with tokens_emsp() as emsp:
        headers = await partner(server, emsp.endpoint)
        for uid in MALFORMED:
            await push(api, headers, uid, "ALLOWED_OFFLINE")
        await push(api, headers, "BAD-NEVER", "NEVER")
        await push(api, headers, "LONG-REF", "NEVER")
        emsp.answers = {uid: answer for uid, (answer, _) in MALFORMED.items()}
        emsp.answers["BAD-NEVER"] = allowed("SURE", "BAD-NEVER")
        # a reference we could not hand back (over 36 characters) is dropped, not the decision
        emsp.answers["LONG-REF"] = allowed("ALLOWED", "LONG-REF", authorization_reference="R" * 37)
        async with raw_station(ocpp_url, "RT8") as st:
            got = await statuses(st, *MALFORMED, "BAD-NEVER", "LONG-REF")
        assert got == {**dict.fromkeys(MALFORMED, "Accepted"), "BAD-NEVER": "Invalid", "LONG-REF": "Accepted"}
    said = await reasons(server)
    for uid, (_, detail) in MALFORMED.items():
        assert said[uid] == f"eMSP not reachable: {detail}; decided from the stored token: token is valid", (
            uid
        )
    assert said["BAD-NEVER"].startswith('eMSP not reachable: unknown allowed value "SURE"')
    assert said["LONG-REF"] == "eMSP answered ALLOWED"


# --- the pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "content", "expected"),
    [
        (200, b'{"status_code": 1000, "data": {"allowed": "ALLOWED"}}', AuthStatus.ACCEPTED),
        (200, b'{"status_code": 1000, "data": {"allowed": "BLOCKED"}}', AuthStatus.BLOCKED),
        (200, b'{"status_code": 1000, "data": {"allowed": "EXPIRED"}}', AuthStatus.EXPIRED),
        (200, b'{"status_code": 1000, "data": {"allowed": "NO_CREDIT"}}', AuthStatus.INVALID),
        (200, b'{"status_code": 1000, "data": {"allowed": "NOT_ALLOWED"}}', AuthStatus.INVALID),
        (404, b'{"status_code": 2004, "status_message": "Unknown Token"}', AuthStatus.INVALID),
        (200, b'{"status_code": 2004}', AuthStatus.INVALID),
        (404, b"Not Found", None),  # a wrong URL, not the eMSP's word on the token
        (200, b"\xff\xfe", None),
        (200, b'"ALLOWED"', None),
        (200, b'{"status_code": true, "data": {"allowed": "ALLOWED"}}', None),
        (200, b'{"status_code": "1000", "data": {"allowed": "ALLOWED"}}', None),
        (200, b'{"status_code": 1000, "data": {"allowed": "allowed"}}', None),
        (200, b'{"status_code": 1000, "data": {"allowed": null}}', None),
        (200, b'{"status_code": 1000, "data": []}', None),
        (502, b'{"status_code": 1000, "data": {"allowed": "ALLOWED"}}', None),
    ],
)
def test_read_answer(status: int, content: bytes, expected: AuthStatus | None) -> None:
    answer = read_answer(status, content, "CARD-1")
    assert answer.status is expected, answer
    assert len(answer.reason) <= 255
    if expected is None:
        assert answer.reason.startswith("eMSP not reachable: ")


def test_read_answer_compares_uids_without_case_and_cuts_long_texts() -> None:
    same = read_answer(
        200,
        json.dumps(
            {"status_code": 1000, "data": {"allowed": "ALLOWED", "token": {"uid": "card-1"}}}
        ).encode(),
        "CARD-1",
    )
    assert same.status is AuthStatus.ACCEPTED
    chatty = json.dumps(
        {"status_code": 1000, "data": {"allowed": "NOT_ALLOWED", "info": {"text": "x" * 5000}}}
    )
    assert len(read_answer(200, chatty.encode(), "CARD-1").reason) <= 255
    noisy = json.dumps({"status_code": 2001, "status_message": "y" * 5000})
    assert len(read_answer(200, noisy.encode(), "CARD-1").reason) <= 255


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "whitelist", "emsp", "expected"),
    [
        # the eMSP decided: its answer stands over our copy
        ("blocked", "NEVER", AuthStatus.ACCEPTED, AuthStatus.ACCEPTED),
        ("active", "ALLOWED", AuthStatus.BLOCKED, AuthStatus.BLOCKED),
        ("active", "ALLOWED_OFFLINE", AuthStatus.INVALID, AuthStatus.INVALID),
        # no answer: the whitelist says whether our copy may decide
        ("active", "NEVER", None, AuthStatus.INVALID),
        ("active", "ALLOWED_OFFLINE", None, AuthStatus.ACCEPTED),
        ("active", "ALLOWED", None, AuthStatus.ACCEPTED),
        ("blocked", "ALLOWED_OFFLINE", None, AuthStatus.BLOCKED),
        ("blocked", "NEVER", None, AuthStatus.BLOCKED),
    ],
)
def test_decide_with_the_emsps_answer(
    status: str, whitelist: str, emsp: AuthStatus | None, expected: AuthStatus
) -> None:
    facts = TokenFacts(status, None, False, whitelist)
    answer = EmspAnswer(emsp, "eMSP answered X" if emsp else "eMSP not reachable: down")
    decision = decide(facts, NOW, 0, starting=False, emsp=answer)
    assert decision.status is expected
    assert decision.reason.startswith(answer.reason)


def test_decide_keeps_concurrency_and_our_own_tokens() -> None:
    partner = TokenFacts("active", None, False, "NEVER")
    said = EmspAnswer(AuthStatus.ACCEPTED, "eMSP answered ALLOWED")
    assert decide(partner, NOW, 1, starting=True, emsp=said).status is AuthStatus.CONCURRENT_TX
    assert decide(partner, NOW, 1, starting=False, emsp=said).status is AuthStatus.ACCEPTED
    # an answer handed in for one of our own tokens is ignored: we are its issuer
    ours = TokenFacts("blocked", None, False, None)
    assert decide(ours, NOW, 0, starting=False, emsp=said).status is AuthStatus.BLOCKED
    assert decide(None, NOW, 0, starting=False, emsp=said).status is AuthStatus.INVALID
