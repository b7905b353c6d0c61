"""The operator API answers bad input with a 4xx that says what is wrong, and stores nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

BAD_TOKENS: list[dict[str, Any]] = [
    {},
    {"uid": ""},
    {"uid": "x" * 37},
    {"uid": "has space"},
    {"uid": "A", "country_code": "nl"},
    {"uid": "A", "party_id": "TOOLONG"},
    {"uid": "A", "status": "maybe"},
    {"uid": "A", "type": "CREDITCARD"},
    {"uid": "A", "expires_at": "tomorrow"},
    {"uid": "A", "expires_at": "2027-01-01T00:00:00"},  # no offset: ambiguous
    {"uid": ["A"]},
]


@pytest.mark.parametrize("body", BAD_TOKENS)
async def test_bad_token_is_422_and_not_stored(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await api.put("/api/tokens", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert (await api.get("/api/tokens")).json() == []


BAD_STATIONS: list[dict[str, Any]] = [
    {},
    {"id": ""},
    {"id": "a b"},
    {"id": "x" * 49},
    {"id": "../etc"},
    {"id": "CP1", "password": "short"},
    {"id": "CP1", "evse_count": -1},
    {"id": "CP1", "evse_count": 10_000},
    {"id": "CP1", "registration_status": "Maybe"},
]


@pytest.mark.parametrize("body", BAD_STATIONS)
async def test_bad_station_is_422_and_not_stored(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await api.post("/api/stations", json=body)
    assert response.status_code == 422, response.text
    assert (await api.get("/api/stations")).json() == []


async def test_duplicate_station_is_409(api: httpx.AsyncClient) -> None:
    assert (
        await api.post("/api/stations", json={"authentication": "none", "id": "CP1", "evse_count": 2})
    ).status_code == 201
    response = await api.post("/api/stations", json={"authentication": "none", "id": "CP1"})
    assert response.status_code == 409 and "already registered" in response.json()["detail"]
    [station] = (await api.get("/api/stations")).json()
    assert [e["evse_id"] for e in station["evses"]] == ["NL*STK*ECP1*1", "NL*STK*ECP1*2"]


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=100000", "offset=-1", "status=bogus", "limit=abc"],
)
async def test_bad_list_parameters_are_422(api: httpx.AsyncClient, query: str) -> None:
    for path in ("/api/sessions", "/api/stations", "/api/tokens"):
        if "status" in query and path != "/api/sessions":
            continue
        response = await api.get(f"{path}?{query}")
        assert response.status_code == 422, (path, query, response.text)


async def test_not_json_and_unknown_ids(api: httpx.AsyncClient) -> None:
    response = await api.put(
        "/api/tokens", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert (await api.get("/api/stations/NOPE")).status_code == 404
    assert (await api.get("/api/sessions/123")).status_code == 404
    assert (await api.post("/api/tokens/999/block")).status_code == 404


@pytest.mark.parametrize("settings_overrides", [{"api_token": "s3cret-token-for-tests"}])
async def test_api_token_is_enforced(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/stations")).status_code == 401
    bad = await api.get("/api/stations", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Bearer"
    ok = await api.get("/api/stations", headers={"Authorization": "Bearer s3cret-token-for-tests"})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/sessions/99999999999999999999",
        "/api/sessions/99999999999999999999/meter-values",
        "/api/tokens/-99999999999999999999",
        "/api/jobs/99999999999999999999",
        "/api/diagnostics/99999999999999999999",
    ],
)
async def test_ids_beyond_64_bits_are_4xx_not_500(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(path)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]
