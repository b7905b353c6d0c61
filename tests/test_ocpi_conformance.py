"""OCPI 2.2.1 by the book, read by a strict client over loopback: every answer under /ocpi (every
module, success and error, unknown paths, 405, 413, 500) is an envelope with a valid timestamp
and echoes X-Request-ID and X-Correlation-ID; parameter errors are HTTP 200 + 2001 (only a body
that is not JSON is HTTP 400); hostile ID headers are refused; and what we send a partner
carries both IDs, the handshake's requests sharing the correlation ID that caused them."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from stekker.app import Stekker
from stekker.ocpi import tariffs as ocpi_tariffs
from stekker.services import ocpi_partners
from stekker.services.ocpi_partners import add_registered_partner
from tests.test_ocpi_commands import add_site, emsp_endpoint, start_body
from tests.test_ocpi_commands import partner as commands_partner
from tests.test_ocpi_credentials import FakeEmsp, RegisteringEmsp, credentials, serving, token_header

EMSP_TOKEN = "conformance-emsp-token"
#: OCPI DateTime: at most 25 characters, at most 3 decimals, UTC
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z?$")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"http_max_body_bytes": 4096}


def auth(token: str = EMSP_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Token {base64.b64encode(token.encode()).decode()}"}


@pytest.fixture
async def emsp(server: Stekker) -> None:
    await add_registered_partner(
        server.ctx, name="Strict eMSP", country_code="NL", party_id="ABC", token=EMSP_TOKEN
    )


def assert_by_the_book(response: httpx.Response, sent: dict[str, str], what: object) -> dict[str, Any]:
    """The envelope and the echoed IDs a strict OCPI client insists on."""
    assert response.headers.get("X-Request-ID") == sent["X-Request-ID"], (what, response.headers)
    assert response.headers.get("X-Correlation-ID") == sent["X-Correlation-ID"], (what, response.headers)
    assert response.headers["content-type"].startswith("application/json"), (what, response.text)
    body = response.json()
    assert isinstance(body, dict), (what, body)
    assert set(body) <= {"data", "status_code", "status_message", "timestamp"}, (what, body)
    code = body["status_code"]
    assert isinstance(code, int) and 1000 <= code < 5000, (what, body)
    assert isinstance(body.get("status_message", ""), str), (what, body)
    stamp = body["timestamp"]
    assert isinstance(stamp, str) and len(stamp) <= 25 and DATETIME.match(stamp), (what, stamp)
    if response.status_code >= 400:  # an HTTP error is never an OCPI success
        assert code != 1000, (what, response.status_code, body)
    return body


def ids() -> dict[str, str]:
    return {"X-Request-ID": str(uuid.uuid4()), "X-Correlation-ID": f"corr-{uuid.uuid4().hex}"}


TOKEN_URL = "/ocpi/2.2.1/tokens/NL/ABC/CARD-1"
GOOD_TOKEN = {
    "country_code": "NL", "party_id": "ABC", "uid": "CARD-1", "type": "RFID", "contract_id": "NL-ABC-C1",
    "issuer": "ABC", "valid": True, "whitelist": "ALLOWED", "last_updated": "2030-01-01T00:00:00Z",
}  # fmt: skip

#: (method, path, json body or raw bytes, authenticated?, expected HTTP status, expected OCPI status)
EXCHANGES: list[tuple[str, str, Any, bool, int, int]] = [
    ("GET", "/ocpi/versions", None, True, 200, 1000),
    ("GET", "/ocpi/2.2.1", None, True, 200, 1000),
    ("GET", "/ocpi/versions", None, False, 401, 2000),
    ("GET", "/ocpi/2.2.1/credentials", None, True, 200, 1000),
    ("POST", "/ocpi/2.2.1/credentials", credentials("x", "https://emsp.example/v"), True, 405, 2001),
    ("PUT", "/ocpi/2.2.1/credentials", {"token": "x"}, True, 200, 2001),
    ("GET", "/ocpi/2.2.1/locations", None, True, 200, 1000),
    ("GET", "/ocpi/2.2.1/locations/NOPE", None, True, 404, 2003),
    ("GET", "/ocpi/2.2.1/tariffs", None, True, 200, 1000),
    ("GET", "/ocpi/2.2.1/sessions", None, True, 200, 1000),
    ("PUT", "/ocpi/2.2.1/sessions/NOPE/charging_preferences", {"profile_type": "FAST"}, True, 404, 2001),
    ("GET", "/ocpi/2.2.1/cdrs", None, True, 200, 1000),
    ("PUT", TOKEN_URL, GOOD_TOKEN, True, 200, 1000),
    ("GET", TOKEN_URL, None, True, 200, 1000),
    ("GET", "/ocpi/2.2.1/tokens/NL/ABC/NOBODY", None, True, 404, 2004),
    ("PATCH", TOKEN_URL, {"valid": False}, True, 200, 2001),  # no last_updated
    ("PUT", TOKEN_URL, b"{not json", True, 400, 2001),
    ("POST", "/ocpi/2.2.1/commands/START_SESSION", {"response_url": "x"}, True, 200, 2001),
    ("POST", "/ocpi/2.2.1/commands/FLY", {}, True, 404, 2001),
    (
        "GET",
        "/ocpi/2.2.1/chargingprofiles/NOPE?response_url=https://emsp.example/r",
        None,
        True,
        200,
        2001,
    ),  # no duration
    ("PUT", "/ocpi/2.2.1/chargingprofiles/NOPE", {"charging_profile": 1}, True, 200, 2001),
    ("GET", "/ocpi/2.2.1/hubclientinfo/NL/XYZ", None, True, 403, 2000),  # we are not its hub
    # unknown paths and methods: envelopes too, never {"detail": "Not Found"}
    ("GET", "/ocpi", None, True, 404, 2000),
    ("GET", "/ocpi/2.2.1/nothing-here", None, True, 404, 2000),
    ("GET", "/ocpi/2.2.1/locations/L/E/C/extra", None, True, 404, 2000),
    ("GET", "/ocpi/9.9/versions", None, False, 404, 2000),
    ("DELETE", "/ocpi/2.2.1/locations", None, True, 405, 2000),
    ("POST", "/ocpi/versions", {}, True, 405, 2000),
]


@pytest.mark.usefixtures("emsp")
async def test_every_answer_is_an_envelope_that_echoes_the_ids(api: httpx.AsyncClient) -> None:
    for method, path, body, authenticated, http_status, ocpi_status in EXCHANGES:
        sent = ids()
        headers = {**sent, **(auth() if authenticated else {})}
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/json"
            response = await api.request(method, path, content=body, headers=headers)
        else:
            response = await api.request(method, path, json=body, headers=headers)
        what = (method, path)
        answer = assert_by_the_book(response, sent, what)
        got = (response.status_code, answer["status_code"])
        assert got == (http_status, ocpi_status), (what, response.text)
        if http_status in (404, 405) and ocpi_status == 2000:
            assert answer["status_message"] in (
                "no such OCPI endpoint",
                "method not allowed on this OCPI endpoint",
            )


@pytest.mark.usefixtures("emsp")
async def test_without_ids_nothing_is_made_up(api: httpx.AsyncClient) -> None:
    response = await api.get("/ocpi/2.2.1/tariffs", headers=auth())
    assert response.status_code == 200 and response.json()["status_code"] == 1000
    assert "X-Request-ID" not in response.headers and "X-Correlation-ID" not in response.headers


@pytest.mark.usefixtures("emsp")
async def test_parameter_errors_are_http_200_with_2001(api: httpx.AsyncClient) -> None:
    """OCPI 2.2.1 status codes: a request that parses and reaches an existing resource gets no
    HTTP error; what is wrong with its parameters is the OCPI layer's 2001."""
    for module in ("locations", "tariffs", "sessions", "cdrs"):
        for params in (
            {"limit": "0"}, {"offset": "-1"}, {"date_from": "yesterday"}, {"limit": "many"},
            {"date_to": "2030-13-01T00:00:00Z"},
            {"date_from": "2030-01-02T00:00:00Z", "date_to": "2030-01-01T00:00:00Z"},
        ):  # fmt: skip
            sent = ids()
            response = await api.get(f"/ocpi/2.2.1/{module}", params=params, headers={**sent, **auth()})
            answer = assert_by_the_book(response, sent, (module, params))
            assert (response.status_code, answer["status_code"]) == (200, 2001), (module, params, answer)
            assert answer["status_message"], (module, params)
    # a body that is not JSON never reached the OCPI layer: HTTP 400 (with the envelope)
    sent = ids()
    broken = await api.put(
        TOKEN_URL, content=b'{"uid": ', headers={**sent, **auth(), "Content-Type": "application/json"}
    )
    assert (broken.status_code, assert_by_the_book(broken, sent, "not json")["status_code"]) == (400, 2001)


@pytest.mark.usefixtures("emsp")
async def test_a_body_over_the_limit_is_an_enveloped_413_with_the_ids(api: httpx.AsyncClient) -> None:
    sent = ids()
    big = {**GOOD_TOKEN, "issuer": "x" * 5000}
    response = await api.put(TOKEN_URL, json=big, headers={**sent, **auth()})
    assert response.status_code == 413
    assert assert_by_the_book(response, sent, "413")["status_code"] == 2000


@pytest.mark.usefixtures("emsp")
async def test_a_failure_is_an_enveloped_500_and_the_database_an_enveloped_503(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ocpi_tariffs, "published_tariffs", broken)
    sent = ids()
    response = await api.get("/ocpi/2.2.1/tariffs", headers={**sent, **auth()})
    assert response.status_code == 500
    answer = assert_by_the_book(response, sent, "500")
    assert answer["status_code"] == 3000 and "a bug" not in response.text

    async def down(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(ocpi_tariffs, "published_tariffs", down)
    sent = ids()
    response = await api.get("/ocpi/2.2.1/tariffs", headers={**sent, **auth()})
    assert response.status_code == 503
    assert assert_by_the_book(response, sent, "503")["status_code"] == 3000
    # the operator API keeps its own error schema for the same failure
    monkeypatch.undo()
    assert (await api.get("/api/nothing-here")).json()["error"] == "not_found"


@pytest.mark.usefixtures("emsp")
async def test_hostile_ids_are_refused_before_the_request_runs(api: httpx.AsyncClient) -> None:
    good = "fine-correlation-id"
    hostile: list[tuple[str, str | bytes]] = [
        ("X-Request-ID", "r" * 256),
        ("X-Request-ID", "evil\tid"),  # a control character
        ("X-Correlation-ID", b"caf\xe9"),  # not ASCII
        ("X-Correlation-ID", ""),
    ]
    for name, value in hostile:
        headers: dict[str, str | bytes] = {**auth(), "X-Correlation-ID": good, "X-Request-ID": "fine-request"}
        headers[name] = value
        response = await api.put(TOKEN_URL, json=GOOD_TOKEN, headers=headers)
        assert response.status_code == 400, (name, value, response.text)
        answer = response.json()
        assert answer["status_code"] == 2001 and name in answer["status_message"], answer
        assert DATETIME.match(answer["timestamp"])
        assert response.headers.get(name) is None  # the hostile value is never echoed
    # an ID header sent twice is refused as well
    twice = [("Authorization", auth()["Authorization"]), ("X-Request-ID", "a"), ("X-Request-ID", "b")]
    response = await api.get("/ocpi/2.2.1/tariffs", headers=twice)
    assert (response.status_code, response.json()["status_code"]) == (400, 2001)
    # none of the refused PUTs stored the token
    assert (await api.get(TOKEN_URL, headers=auth())).json()["status_code"] == 2004
    # 255 printable ASCII characters (spaces included) are echoed as sent
    longest = "A-z ~" * 51
    response = await api.get("/ocpi/2.2.1/tariffs", headers={**auth(), "X-Request-ID": longest})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == longest


class RecordingEmsp(FakeEmsp):
    """FakeEmsp that also keeps the ID headers of every request it receives."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.ids: list[tuple[str, str | None, str | None]] = []

    def _ok(self, request: Any, data: Any) -> Any:
        headers = request.headers
        self.ids.append((request.url.path, headers.get("x-request-id"), headers.get("x-correlation-id")))
        return super()._ok(request, data)


async def test_our_requests_to_a_partner_carry_both_ids(server: Stekker, api: httpx.AsyncClient) -> None:
    _, token_a = await ocpi_partners.issue_registration(
        server.ctx, actor="test", name="ABC Mobility", parties=["NL/ABC"]
    )
    emsp = RecordingEmsp("token-B")
    async with serving(emsp) as their_versions:
        # the eMSP registers with its correlation ID: our GETs of its versions and details
        # carry it, each with a request ID of its own
        sent = ids()
        registered = await api.post(
            "/ocpi/2.2.1/credentials",
            headers={**token_header(token_a), **sent},
            json=credentials(emsp.token, their_versions),
        )
        token_c = assert_by_the_book(registered, sent, "register")["data"]["token"]
        assert [path for path, _, _ in emsp.ids] == ["/versions", "/221"]
        assert {corr for _, _, corr in emsp.ids} == {sent["X-Correlation-ID"]}
        request_ids = [rid for _, rid, _ in emsp.ids]
        assert all(request_ids) and len(set(request_ids)) == 2
        assert sent["X-Request-ID"] not in request_ids  # a new request, not a copy

        # a credentials update without IDs: our two GETs still carry both, sharing a new correlation
        emsp.ids.clear()
        updated = await api.put(
            "/ocpi/2.2.1/credentials",
            headers=token_header(token_c),
            json=credentials(emsp.token, their_versions),
        )
        assert updated.status_code == 200 and updated.json()["status_code"] == 1000, updated.text
        assert len(emsp.ids) == 2 and all(rid and corr for _, rid, corr in emsp.ids)
        assert len({corr for _, _, corr in emsp.ids}) == 1
        assert len({rid for _, rid, _ in emsp.ids}) == 2


async def test_a_command_result_carries_the_correlation_id_of_the_command(
    server: Stekker, api: httpx.AsyncClient
) -> None:
    headers = await commands_partner(server)
    location_id = await add_site(api, "CONF1")
    async with emsp_endpoint() as emsp:
        # the station is not connected: the result (FAILED) is queued at once
        sent = ids()
        body = start_body(emsp, "start/offline", location_id, "NL*STK*ECONF1*1")
        response = await api.post(
            "/ocpi/2.2.1/commands/START_SESSION", json=body, headers={**headers, **sent}
        )
        assert assert_by_the_book(response, sent, "command")["status_code"] == 1000
        assert (await emsp.result("start/offline"))["result"] == "FAILED"
        [pushed] = emsp.headers
        assert pushed["x-correlation-id"] == sent["X-Correlation-ID"]
        assert pushed["x-request-id"] not in ("", sent["X-Request-ID"])


class RecordingRegisteringEmsp(RegisteringEmsp):
    """RegisteringEmsp that keeps (method, path, X-Request-ID, X-Correlation-ID) of every request."""

    def __init__(self, token_a: str, token_c: str) -> None:
        super().__init__(token_a, token_c)
        self.ids: list[tuple[str, str, str | None, str | None]] = []

    def app(self) -> Any:
        inner = super().app()

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = {k.decode(): v.decode() for k, v in scope["headers"]}
                self.ids.append(
                    (
                        scope["method"],
                        scope["path"],
                        headers.get("x-request-id"),
                        headers.get("x-correlation-id"),
                    )
                )
            await inner(scope, receive, send)

        return recording


async def test_the_handshake_we_start_is_one_correlation_with_a_request_id_each(
    server: Stekker, api: httpx.AsyncClient
) -> None:
    emsp = RecordingRegisteringEmsp("their-A", "their-C")
    async with serving(emsp) as their_versions:  # type: ignore[arg-type]
        body = {"name": "ABC", "versions_url": their_versions, "token": "their-A", "parties": ["NL/ABC"]}
        registered = await api.post("/api/ocpi/partners/register", json=body)
        assert registered.status_code in (200, 201), registered.text
        calls = [(method, path) for method, path, _, _ in emsp.ids]
        assert calls[:3] == [("GET", "/versions"), ("GET", "/221"), ("POST", "/221/credentials")], calls
        request_ids = [rid for _, _, rid, _ in emsp.ids]
        assert all(request_ids) and len(set(request_ids)) == len(request_ids)
        correlations = {corr for _, _, _, corr in emsp.ids}
        assert len(correlations) == 1 and None not in correlations

        # unregistering tells the partner with a DELETE that carries both IDs too
        emsp.ids.clear()
        [partner] = (await api.get("/api/ocpi/partners")).json()
        ended = await api.delete(f"/api/ocpi/partners/{partner['id']}")
        assert ended.status_code == 200 and ended.json()["partner_not_told"] is None, ended.text
        [(method, _path, rid, corr)] = emsp.ids
        assert method == "DELETE" and rid and corr
