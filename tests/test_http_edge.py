"""The HTTP edge under hostile clients: bodies over their limit are refused before they are read,
parsed or authenticated (while stations keep being answered), errors never echo the input,
slow request heads are cut off, and every error of the operator API has one documented schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from stekker.app import Stekker
from tests.peers import raw_station
from tests.test_diagnostics import location_of, request_one

JSON = {"Content-Type": "application/json"}
JSON_H = ("Content-Type: application/json",)
MiB = 1024 * 1024
HUGE = 20_000_000  # what a hostile client claims to send (or starts sending)


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    extra: dict[str, Any] = getattr(request, "param", {})
    return {"files_dir": tmp_path / "files", "call_timeout": 1.0, **extra}


# ---- a bare HTTP/1.1 client: sends exactly what a test says, reads what comes back ------------


@contextlib.asynccontextmanager
async def connection(server: Stekker) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


def request_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: stekker.test", *headers, "", ""]
    return "\r\n".join(lines).encode()


async def sleep0() -> None:
    await asyncio.sleep(0)


async def send_chunked(writer: asyncio.StreamWriter, answered: asyncio.Task[Any], at_half_mib: Any) -> int:
    """Stream up to HUGE bytes of chunked body in 64 KiB chunks until the server answers (or
    hangs up); `at_half_mib` runs once after 512 KiB. Returns the bytes sent."""
    chunk = b"x" * 65_536
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < HUGE and not answered.done():
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            sent += len(chunk)
            if sent == 8 * len(chunk):
                await at_half_mib()
    return sent


# ---- body limits ---------------------------------------------------------------------------------


async def test_a_20_mb_login_is_413_before_it_is_read_and_stations_keep_being_answered(
    server: Stekker, ocpp_url: str
) -> None:
    heartbeats: list[dict[str, Any]] = []
    async with raw_station(ocpp_url, "EDGE-HB") as station:
        # declared: answered at once, with only 1 kB of the 20 MB sent
        async with connection(server) as (reader, writer):
            head = request_head(
                "POST", "/api/auth/token", "Content-Type: application/json", f"Content-Length: {HUGE}"
            )
            writer.write(head + b'{"' + b"k" * 1000)
            await writer.drain()
            status, headers, body = await asyncio.wait_for(read_response(reader), 15)
            heartbeats.append(await station.ok("Heartbeat", {}))  # the connection still open
            assert await asyncio.wait_for(reader.read(), 15) == b""  # and the server hung up
        assert status == 413 and headers["connection"] == "close"
        assert json.loads(body) == {
            "error": "too_large",
            "detail": f"the request body is larger than {MiB} bytes, the limit of this route",
        }

        # chunked: counted as it streams, refused once over 1 MiB; a heartbeat midway is answered
        async with connection(server) as (reader, writer):
            writer.write(request_head("POST", "/api/auth/token", "Transfer-Encoding: chunked", *JSON_H))
            answered = asyncio.create_task(read_response(reader))

            async def heartbeat() -> None:
                heartbeats.append(await station.ok("Heartbeat", {}))

            sent = await send_chunked(writer, answered, heartbeat)
            status, headers, body = await asyncio.wait_for(answered, 15)
        assert status == 413 and json.loads(body)["error"] == "too_large"
        assert sent < HUGE  # the server answered and closed long before the client was done
    assert len(heartbeats) == 2 and all("currentTime" in h for h in heartbeats)


@pytest.mark.parametrize("settings_overrides", [{"api_token": "edge-secret-token"}], indirect=True)
async def test_an_unauthenticated_huge_put_is_413_not_401_after_reading(server: Stekker) -> None:
    async with connection(server) as (reader, writer):  # 200 MB announced, 64 kB sent
        writer.write(request_head("PUT", "/api/tokens", *JSON_H, "Content-Length: 200000000"))
        writer.write(b"[" + b"1," * 32_000)
        status, headers, body = await asyncio.wait_for(read_response(reader), 15)
    assert status == 413 and headers["connection"] == "close", body

    async with connection(server) as (reader, writer):  # the same, chunked
        writer.write(request_head("PUT", "/api/tokens", *JSON_H, "Transfer-Encoding: chunked"))
        answered = asyncio.create_task(read_response(reader))
        sent = await send_chunked(writer, answered, sleep0)
        status, _headers, body = await asyncio.wait_for(answered, 15)
    assert status == 413 and sent < HUGE, body

    # a small body is still read, and refused for what it is: no token
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as anonymous:
        small = await anonymous.put("/api/tokens", json={"uid": "A"})
    assert small.status_code == 401
    assert small.json() == {"error": "unauthorized", "detail": small.json()["detail"]}


async def test_ocpi_gets_its_413_as_an_ocpi_envelope(server: Stekker) -> None:
    async with connection(server) as (reader, writer):
        writer.write(request_head("PUT", "/ocpi/2.2.1/tokens/NL/ABC/T1", *JSON_H, f"Content-Length: {HUGE}"))
        status, _headers, body = await asyncio.wait_for(read_response(reader), 15)
    answer = json.loads(body)
    assert status == 413 and answer["status_code"] == 2000 and "larger than" in answer["status_message"]


async def test_uploads_and_imports_still_take_large_bodies(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    file = b"diagnostics line\n" * (3 * MiB // 17)  # 3 MiB: over the JSON limit, under upload_max_bytes
    async with raw_station(ocpp_url, "EDGE-UP") as station:
        station.answers["GetDiagnostics"] = {"fileName": "big.log"}
        await request_one(api, "EDGE-UP")
        async with httpx.AsyncClient(timeout=30) as client:
            uploaded = await client.put(location_of(station), content=file)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["size"] == len(file)

    text = "t" * 60
    columns = "uid,visual_number,issuer,energy_supplier,energy_contract_id\n"
    csv = (columns + "".join(f"EDGE{i:05d},{text},{text},{text},{text}\n" for i in range(5000))).encode()
    assert MiB < len(csv) < 5 * MiB
    imported = await api.post("/api/import/tokens", content=csv, headers={"Content-Type": "text/csv"})
    assert imported.status_code == 200, imported.text[:300]
    assert imported.json()["totals"]["create"] == 5000, imported.json()["rows"][0]["errors"]


# ---- validation errors never echo the input ------------------------------------------------------


async def test_a_validation_error_does_not_echo_a_huge_body(api: httpx.AsyncClient) -> None:
    keys = json.dumps({f"key{i:06d}": "v" for i in range(55_000)}).encode()
    assert 800_000 < len(keys) < MiB
    response = await api.post("/api/auth/token", content=keys, headers=JSON)
    assert response.status_code == 422
    assert len(response.content) < 10_000 and b"key000" not in response.content
    answer = response.json()
    assert answer["error"] == "invalid_request" and "body.username: Field required" in answer["detail"]
    assert {tuple(e) for e in answer["errors"]} == {("loc", "msg", "type")}

    long_uid = await api.put("/api/tokens", json={"uid": "u" * 500_000})
    assert long_uid.status_code == 422 and len(long_uid.content) < 10_000
    assert b"uuuuuuuuuu" not in long_uid.content

    many = await api.post("/api/groups/edge/members", json={"station_ids": list(range(5_000))})
    answer = many.json()
    assert many.status_code == 422 and len(many.content) < 10_000
    assert len(answer["errors"]) == 20 and "(and 4997 more)" in answer["detail"]
    assert answer["errors"][0] == {
        "loc": ["body", "station_ids", 0],
        "msg": "Input should be a valid string",
        "type": "string_type",
    }


# ---- slow request heads --------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"http_header_timeout": 0.5}], indirect=True)
async def test_slow_request_heads_are_cut_off(server: Stekker) -> None:
    async with connection(server) as (reader, writer):  # a request line, half a header, then nothing
        writer.write(b"GET /health HTTP/1.1\r\nHost: stekker.test\r\nX-Slow: a")
        assert (await asyncio.wait_for(reader.read(), 15)).startswith(b"HTTP/1.1 408 ")

    async with connection(server) as (reader, _writer):  # connects and says nothing at all
        assert (await asyncio.wait_for(reader.read(), 15)).startswith(b"HTTP/1.1 408 ")

    async with connection(server) as (reader, writer):  # one good request, then a slow one
        writer.write(request_head("GET", "/health"))
        status, _headers, _body = await asyncio.wait_for(read_response(reader), 15)
        writer.write(b"GET /health HTTP/1.1\r\n")
        assert status == 200
        assert (await asyncio.wait_for(reader.read(), 15)).startswith(b"HTTP/1.1 408 ")

    async with connection(server) as (reader, writer):  # a head over 16 KiB
        writer.write(b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n")
        status, _headers, _body = await asyncio.wait_for(read_response(reader), 15)
        assert status == 400


# ---- one error schema, documented ------------------------------------------------------------


async def test_openapi_documents_every_error_with_one_schema(api: httpx.AsyncClient) -> None:
    response = await api.get("/openapi.json")
    document = response.json()
    assert "HTTPValidationError" not in response.text
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}
    assert set(document["components"]["schemas"]["ApiError"]["properties"]) == {"error", "detail", "errors"}
    expected = {
        ("/api/stations/{station_id}", "get"): {401, 403, 404, 422},
        ("/api/tokens", "put"): {401, 403, 413, 422},
        ("/api/users/{username}", "patch"): {401, 403, 404, 409, 413, 422},
        ("/api/stations/{station_id}/remote-start", "post"): {401, 403, 404, 409, 413, 422, 502, 504},
        ("/api/sessions/{session_id}/remote-stop", "post"): {401, 403, 404, 409, 502, 504},
        ("/api/import/stations", "post"): {401, 403, 413, 415, 422},
        ("/upload/diagnostics/{request_id}/{secret}", "put"): {404, 409, 413},
        ("/api/auth/token", "post"): {413, 422},
    }
    for (path, method), statuses in expected.items():
        responses = document["paths"][path][method]["responses"]
        for status in statuses:
            assert responses[str(status)]["content"] == error, (path, method, status)
    ocpi = document["paths"]["/ocpi/2.2.1/tokens/{country_code}/{party_id}/{token_uid}"]["put"]
    assert "422" not in ocpi["responses"]  # OCPI answers 400 with an envelope, documented as such


@pytest.mark.parametrize("settings_overrides", [{"api_token": "edge-secret-token"}], indirect=True)
async def test_every_error_answer_has_the_schema(server: Stekker) -> None:
    base = f"http://127.0.0.1:{server.http_port}"
    admin = {"Authorization": "Bearer edge-secret-token"}
    async with httpx.AsyncClient(base_url=base) as client:
        user = {"username": "reader", "password": "reader-password-1", "role": "read-only"}
        assert (await client.post("/api/users", json=user, headers=admin)).status_code == 201
        credentials = {"username": "reader", "password": user["password"]}
        login = await client.post("/api/auth/token", json=credentials)
        reader = {"Authorization": f"Bearer {login.json()['token']}"}
        answers = {
            401: await client.get("/api/stations"),
            403: await client.put("/api/tokens", json={"uid": "A"}, headers=reader),
            404: await client.get("/api/no-such-route"),
            405: await client.delete("/api/tokens"),
            409: await client.post("/api/users", json=user, headers=admin),
        }
    for status, response in answers.items():
        body = response.json()
        assert response.status_code == status and set(body) == {"error", "detail"}, body
        assert isinstance(body["detail"], str) and body["detail"]
    assert answers[401].headers["www-authenticate"] == "Bearer"
    assert [answers[s].json()["error"] for s in sorted(answers)] == [
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "conflict",
    ]


# ---- dates in queries --------------------------------------------------------------------------

DATED_LISTS = [
    "/api/audit?",
    "/api/cdrs?",
    "/api/helpdesk/search?q=EDGE&",
    "/api/stations/EDGE/messages?",
]


async def test_a_number_is_not_a_date(api: httpx.AsyncClient) -> None:
    for path in DATED_LISTS:
        for query in ("to=0.5", "from=1700000000", "to=2026-13-01T00:00:00Z", "from=yesterday"):
            response = await api.get(path + query)
            assert response.status_code == 422, (path, query, response.text)
            assert "ISO 8601" in response.text or "datetime" in response.text, (path, query, response.text)
        good = await api.get(path + "from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00%2B01:00")
        assert good.status_code in (200, 404), (path, good.text)  # 404: no station EDGE
    number = await api.get("/api/cdrs?to=0.5")
    assert number.json()["errors"][0]["loc"] == ["query", "to"]
    assert "ISO 8601" in number.json()["errors"][0]["msg"]
