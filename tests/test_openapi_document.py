"""Issue 17 item 22: the OpenAPI document is one an integrator can start from, and it tells the
truth. The first test walks the whole document; the others ask the server every operator
operation and compare the answer with what the document promises."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stekker.api.error_schema import ApiError
from stekker.api.openapi_meta import TAG_ORDER
from stekker.app import Stekker
from stekker.config import UnknownStationPolicy
from tests.test_station_authentication import refused_status

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

API_ERROR = {"$ref": "#/components/schemas/ApiError"}
METHODS = ("get", "post", "put", "patch", "delete")
ADMIN_PW = "correct horse battery staple"


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in METHODS
    ]


def operator(path: str) -> bool:
    return path.startswith("/api/")


def error_schema(op: dict[str, Any], status: int) -> Any:
    return op["responses"][str(status)]["content"]["application/json"]["schema"]


async def test_the_document_reads_as_a_guide_and_documents_every_error(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    description = doc["info"]["description"]
    for section in ("## Getting started", "## Authentication", "Authorization: Bearer", "## Errors"):
        assert section in description, section
    for role in ("admin", "operator", "helpdesk", "municipality", "read-only"):
        assert f"`{role}`" in description
    assert [t["name"] for t in doc["tags"]] == TAG_ORDER
    assert all(t["description"] for t in doc["tags"])

    schemas = doc["components"]["schemas"]
    assert not [name for name in schemas if "__" in name]  # no leaked module paths
    assert "ApiError" in schemas and "HTTPValidationError" not in schemas

    summaries: dict[str, str] = {}
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("tags") and set(op["tags"]) <= set(TAG_ORDER), (where, op.get("tags"))
        assert summaries.setdefault(op["summary"], path) == path, (where, "shares its summary")
        responses = op["responses"]
        has_path_id = any(p["in"] == "path" for p in op.get("parameters", []))
        takes_input = bool(op.get("parameters")) or "requestBody" in op
        if path.startswith("/ocpi/"):
            continue  # OCPI answers in its own envelope (HTTP 400, status_code 2001)
        if has_path_id:
            assert "404" in responses and error_schema(op, 404) == API_ERROR, where
        if not operator(path):
            continue
        if op.get("x-roles"):
            for status in (401, 403):
                assert error_schema(op, status) == API_ERROR, (where, status)
            assert f"Roles: {', '.join(op['x-roles'])}." in op["description"], where
        if takes_input:
            assert error_schema(op, 422) == API_ERROR, where
        if method != "get":
            assert error_schema(op, 413) == API_ERROR, where
        for status in responses:
            if status.isdigit() and int(status) >= 400:
                assert error_schema(op, int(status)) == API_ERROR, (where, status)

    # operations that wait for a station say what a station can do to them
    for path in ("/api/stations/{station_id}/remote-start", "/api/sessions/{session_id}/remote-stop"):
        assert {"409", "502", "504"} <= set(doc["paths"][path]["post"]["responses"]), path
    started = doc["paths"]["/api/stations/{station_id}/remote-start"]["post"]["responses"]["200"]
    assert "Location" in started["headers"]


def fill(path: str, op: dict[str, Any]) -> str:
    """The path with ids that name nothing."""
    for parameter in op.get("parameters", []):
        if parameter["in"] == "path":
            kind = parameter["schema"].get("type")
            path = path.replace(f"{{{parameter['name']}}}", "987654" if kind == "integer" else "NOPE404")
    return path


async def ask(api: httpx.AsyncClient, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"json": {}} if method in ("post", "put", "patch") else {}
    return await api.request(method.upper(), path, headers=headers, **body)


async def users(api: httpx.AsyncClient) -> tuple[str, str]:
    """An admin's and a read-only user's tokens (from now on the API needs one)."""
    body = {"username": "root", "password": ADMIN_PW, "role": "admin"}
    assert (await api.post("/api/users", json=body)).status_code == 201
    login = await api.post("/api/auth/token", json={"username": "root", "password": ADMIN_PW})
    admin = login.json()["token"]
    reader = {"username": "reader", "password": ADMIN_PW, "role": "read-only"}
    assert (
        await api.post("/api/users", json=reader, headers={"Authorization": f"Bearer {admin}"})
    ).status_code == 201
    login = await api.post("/api/auth/token", json={"username": "reader", "password": ADMIN_PW})
    return admin, login.json()["token"]


async def test_every_operator_operation_answers_only_what_it_documents(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    admin, reader = await users(api)
    checked = 0
    for path, method, op in operations(doc):
        if not operator(path):
            continue
        where = f"{method.upper()} {path}"
        url = fill(path, op)
        documented = {int(s) for s in op["responses"] if s.isdigit()}
        roles = op.get("x-roles")
        if roles:
            anonymous = await ask(api, method, url, None)
            assert anonymous.status_code == 401, (where, anonymous.text)
            ApiError.model_validate(anonymous.json())
            if "read-only" not in roles:
                refused = await ask(api, method, url, reader)
                assert refused.status_code == 403, (where, refused.text)
                assert ApiError.model_validate(refused.json()).error == "forbidden"
        answer = await ask(api, method, url, admin)
        assert answer.status_code in documented, (where, answer.status_code, answer.text[:200])
        if answer.status_code >= 400:
            ApiError.model_validate(answer.json())
        checked += 1
    assert checked > 100


async def test_unknown_ids_are_404_where_the_document_says_so(
    api: httpx.AsyncClient, server: Stekker, ocpp_url: str
) -> None:
    """A sample of reads by id that used to answer an empty list for an id that names nothing."""
    for url, detail in (
        ("/api/stations/NOPE404/events", "no station 'NOPE404'"),
        ("/api/sessions/987654/meter-values", "no session 987654"),
        ("/api/stations/NOPE404", "no station 'NOPE404'"),
        ("/api/sessions/remote-starts/987654", "no remote start 987654"),
    ):
        answer = await api.get(url)
        assert answer.status_code == 404, (url, answer.text)
        assert ApiError.model_validate(answer.json()).detail == detail
    # an id no station has, under which a handshake was refused: its refusal is what it shows
    server.settings.unknown_stations = UnknownStationPolicy.REJECT
    assert await refused_status(ocpp_url, "STRANGER") == 404
    (refusal,) = (await api.get("/api/stations/STRANGER/events")).json()
    assert refusal["kind"] == "connection_refused" and refusal["detail"]["reason"] == "unknown station"
    too_large = await api.post(
        "/api/locations", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert too_large.status_code == 413 and ApiError.model_validate(too_large.json()).error == "too_large"
