"""Remote functions refuse what they cannot do, with a 4xx that says why: unknown names, bad
arguments, stations that are offline, answer with an error, answer nonsense or never answer,
and callers whose role does not allow the function."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stekker.api import deps
from stekker.api.app import create_http_app
from stekker.app import Stekker
from stekker.db.models import AuditEntry
from stekker.services.device_model import UnknownStation
from stekker.services.functions import FUNCTIONS, run_function
from tests.observe import eventually
from tests.peers import RawStation, raw_station


async def test_catalogue_names_every_function_with_roles_and_schema(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/stations/functions")
    assert response.status_code == 200, response.text
    catalogue = {f["name"]: f for f in response.json()}
    assert set(catalogue) == set(FUNCTIONS)
    for name in (
        "reset",
        "change_availability",
        "unlock_connector",
        "trigger_message",
        "update_firmware",
        "reserve_now",
        "cancel_reservation",
        "clear_cache",
        "data_transfer",
        "set_charging_profile",
        "clear_charging_profile",
        "get_composite_schedule",
        "sync_local_list",
        "get_local_list_version",
        "change_configuration",
        "set_variables",
    ):
        assert name in catalogue, name
    assert catalogue["unlock_connector"]["roles"] == ["admin", "operator", "helpdesk"]
    assert catalogue["update_firmware"]["roles"] == ["admin", "operator"]
    assert "municipality" in catalogue["get_composite_schedule"]["roles"]
    assert catalogue["reset"]["args_schema"]["properties"]["type"]["enum"] == ["Soft", "Hard"]
    assert "evse_number" in catalogue["unlock_connector"]["args_schema"]["required"]


BAD_ARGS: list[tuple[str, Any]] = [
    ("reset", {"type": "Medium"}),
    ("reset", {"type": "Soft", "extra": 1}),
    ("reset", {"type": ["Soft"]}),
    ("unlock_connector", {}),
    ("unlock_connector", {"evse_number": "one"}),
    ("unlock_connector", {"evse_number": 10**20}),
    ("unlock_connector", {"evse_number": -1}),
    ("change_availability", {"operative": "maybe"}),
    ("change_availability", {"operative": True, "connector_number": 1}),
    ("trigger_message", {"message": "'; DROP TABLE charging_stations; --"}),
    ("data_transfer", {"vendor_id": "x" * 256}),
    ("data_transfer", {"vendor_id": "V", "data": "x" * 70_000}),
    ("update_firmware", {"location": "javascript:alert(1)"}),
    ("update_firmware", {"location": "file:///etc/passwd"}),
    ("update_firmware", {"location": "https://x.example/f.bin", "signature": "abc"}),
    ("update_firmware", {"location": "https://x.example/f.bin", "retrieve_at": "2030-01-01T00:00:00"}),
    ("reserve_now", {"token_uid": "has space", "expires_at": "2030-01-01T00:00:00Z"}),
    ("reserve_now", {"token_uid": "A", "expires_at": "tomorrow"}),
    ("cancel_reservation", {"reservation_id": 2**40}),
    (
        "set_charging_profile",
        {
            "evse_number": 1,
            "profile": {"id": 1, "purpose": "TxProfile", "schedule": {"unit": "A", "periods": []}},
        },
    ),
    (
        "set_charging_profile",
        {
            "evse_number": 1,
            "profile": {
                "id": 1,
                "purpose": "TxDefaultProfile",
                "schedule": {"unit": "A", "periods": [{"start": 60, "limit": 10}]},
            },
        },
    ),
    (
        "set_charging_profile",
        {
            "evse_number": 1,
            "profile": {
                "id": 1,
                "purpose": "TxDefaultProfile",
                "schedule": {"unit": "A", "periods": [{"start": 0, "limit": "10.05"}]},
            },
        },
    ),
    (
        "set_charging_profile",
        {
            "evse_number": 1,
            "profile": {
                "id": 1,
                "purpose": "TxDefaultProfile",
                "kind": "Recurring",
                "schedule": {"unit": "A", "periods": [{"start": 0, "limit": 10}]},
            },
        },
    ),
    ("get_composite_schedule", {"duration": 0}),
    ("get_charging_profiles", {"profile_ids": [0]}),
    ("raw", {"action": "Reset; rm -rf /", "payload": {}}),
    ("set_variables", {"items": []}),
    ("set_variables", {"items": [{"variable": "a b", "value": "1"}]}),
    ("get_configuration", {"keys": ["<script>"]}),
    ("change_configuration", {"key": "K", "value": "v" * 501}),
]


async def test_bad_arguments_are_422_and_nothing_is_sent(api: httpx.AsyncClient, ocpp_url: str) -> None:
    async with raw_station(ocpp_url, "HOST1") as station:
        for name, args in BAD_ARGS:
            response = await api.post(f"/api/stations/HOST1/functions/{name}", json={"args": args})
            assert response.status_code == 422, (name, args, response.text)
            assert response.json()["detail"] and "Traceback" not in response.text
        assert station.server_calls == []
    assert (await api.get("/api/stations/HOST1/firmware")).json() == []
    assert (await api.get("/api/stations/HOST1/reservations")).json() == []


BAD_BODIES: list[Any] = [
    {"args": [1, 2]},
    {"args": {}, "timeout": 301},
    {"args": {}, "timeout": -1},
    {"args": {}, "timeout": "soon"},
    {"args": {}, "extra": 1},
    "not an object",
]


async def _bad_bodies_are_422(api: httpx.AsyncClient) -> None:
    await api.post("/api/stations", json={"authentication": "none", "id": "HOST2"})
    for body in BAD_BODIES:
        response = await api.post("/api/stations/HOST2/functions/clear_cache", json=body)
        assert response.status_code == 422, (body, response.text)
    response = await api.post(
        "/api/stations/HOST2/functions/clear_cache",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


async def _unknown_station_function_and_injection_in_ids(api: httpx.AsyncClient) -> None:
    await api.post("/api/stations", json={"authentication": "none", "id": "HOST3"})
    response = await api.post("/api/stations/NOPE/functions/reset", json={"args": {}})
    assert response.status_code == 404 and "no station" in response.json()["detail"]
    response = await api.post("/api/stations/HOST3/functions/format_disk", json={"args": {}})
    assert response.status_code == 404 and "no remote function" in response.json()["detail"]
    injected = "x'; DROP TABLE charging_stations; --"
    response = await api.post(f"/api/stations/{injected}/functions/reset", json={"args": {}})
    assert response.status_code == 404, response.text
    response = await api.post(f"/api/stations/HOST3/functions/{injected}", json={"args": {}})
    assert response.status_code == 404, response.text
    response = await api.post(f"/api/stations/{'A' * 200}/functions/reset", json={"args": {}})
    assert response.status_code == 422, response.text
    assert (await api.get(f"/api/stations/{injected}/reservations")).status_code == 404
    for path in ("/api/stations/%00/firmware", "/api/stations/%00/functions/reset"):
        response = await api.request("GET" if "firmware" in path else "POST", path, json={"args": {}})
        assert response.status_code == 422, response.text
    assert "HOST3" in [s["id"] for s in (await api.get("/api/stations")).json()]  # the table is still there


async def _offline_station_is_409_and_nothing_recorded(api: httpx.AsyncClient, server: Stekker) -> None:
    await api.post("/api/stations", json={"authentication": "none", "id": "HOST4"})
    for name, args in (("reset", {}), ("update_firmware", {"location": "https://x.example/f.bin"})):
        response = await api.post(f"/api/stations/HOST4/functions/{name}", json={"args": args})
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "station_offline"
    assert (await api.get("/api/stations/HOST4/firmware")).json() == []
    async with server.ctx.db() as db:
        actions = (await db.execute(select(AuditEntry.action, AuditEntry.result))).all()
    assert ("station.function.reset.failed", "StationOffline") in [tuple(a) for a in actions]
    # the service refuses ids no station can have before asking the database (bulk jobs call it)
    with pytest.raises(UnknownStation):
        await run_function(server.ctx, "test", "\x00", "reset", {})


async def test_requests_that_cannot_run_are_refused(api: httpx.AsyncClient, server: Stekker) -> None:
    """Bad bodies (422), unknown stations and functions and injected ids (404/422), offline
    stations (409): one server for all of them keeps the suite fast."""
    await _bad_bodies_are_422(api)
    await _unknown_station_function_and_injection_in_ids(api)
    await _offline_station_is_409_and_nothing_recorded(api, server)


async def _answer_next(station: RawStation, frame: list[Any], done: int) -> list[Any]:
    """Wait for the central system's next call and answer it with `frame` (its id filled in)."""
    await eventually(lambda: len(station.server_calls) > done, timeout=5)
    call = station.server_calls[-1]
    await station.ws.send(json.dumps([frame[0], call[1], *frame[1:]]))
    return call


@pytest.mark.parametrize("protocol", ["ocpp1.6", "ocpp2.0.1"])
async def test_station_errors_nonsense_and_silence(
    api: httpx.AsyncClient, ocpp_url: str, protocol: str
) -> None:
    async with raw_station(ocpp_url, "RAWF", protocol=protocol) as station:
        await asyncio.sleep(0.05)
        station.silent = True

        async def post(name: str, args: dict[str, Any], timeout: float | None = None) -> httpx.Response:
            body: dict[str, Any] = {"args": args}
            if timeout is not None:
                body["timeout"] = timeout
            return await api.post(f"/api/stations/RAWF/functions/{name}", json=body)

        # a CALLERROR is 502 with the station's words
        pending = asyncio.create_task(post("unlock_connector", {"evse_number": 1}))
        sent = await _answer_next(
            station, [4, "InternalError", "motor jammed", {}], len(station.server_calls)
        )
        assert sent[2] == "UnlockConnector"
        response = await pending
        assert response.status_code == 502 and "motor jammed" in response.json()["detail"]

        # an answer that breaks the schema is 502 too
        pending = asyncio.create_task(post("reset", {"type": "Hard"}))
        await _answer_next(station, [3, {"status": "Maybe"}], len(station.server_calls))
        response = await pending
        assert response.status_code == 502 and "invalid Reset reply" in response.json()["detail"]

        # silence: 504 after the caller's timeout; the late answer does not shift the next call
        calls = len(station.server_calls)
        response = await post("clear_cache", {}, timeout=0.3)
        assert response.status_code == 504, response.text
        late = station.server_calls[calls]
        await station.ws.send(json.dumps([3, late[1], {"status": "Rejected"}]))
        pending = asyncio.create_task(post("clear_cache", {}))
        await _answer_next(station, [3, {"status": "Accepted"}], calls + 1)
        response = await pending
        assert response.status_code == 200 and response.json()["status"] == "Accepted"


@pytest.fixture
async def as_role(server: Stekker) -> AsyncIterator[Any]:
    """An API client whose caller has the given role (authentication itself is tested elsewhere)."""
    app = create_http_app(server.ctx)
    clients: list[httpx.AsyncClient] = []

    def client(role: deps.Role) -> httpx.AsyncClient:
        async def caller() -> deps.Caller:
            return deps.Caller(f"user:{role.value}", role)

        app.dependency_overrides[deps.authenticate] = caller
        made = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        clients.append(made)
        return made

    yield client
    for made in clients:
        await made.aclose()


async def test_each_function_states_its_roles(api: httpx.AsyncClient, as_role: Any) -> None:
    await api.post("/api/stations", json={"authentication": "none", "id": "ROLE1"})
    cases = [
        (deps.Role.HELPDESK, "unlock_connector", {"evse_number": 1}, 409),  # allowed; station offline
        (deps.Role.HELPDESK, "reset", {"type": "Hard"}, 409),
        (deps.Role.HELPDESK, "update_firmware", {"location": "https://x.example/f.bin"}, 403),
        (deps.Role.HELPDESK, "set_charging_profile", {}, 403),
        (deps.Role.MUNICIPALITY, "get_composite_schedule", {}, 409),
        (deps.Role.MUNICIPALITY, "change_availability", {"operative": False}, 403),
        (deps.Role.READ_ONLY, "reset", {}, 403),
        (deps.Role.OPERATOR, "update_firmware", {"location": "https://x.example/f.bin"}, 409),
        (deps.Role.OPERATOR, "raw", {"action": "Reset", "payload": {"type": "Hard"}}, 403),
        (deps.Role.ADMIN, "raw", {"action": "Reset", "payload": {"type": "Hard"}}, 409),
    ]
    for role, name, args, expected in cases:
        response = await as_role(role).post(f"/api/stations/ROLE1/functions/{name}", json={"args": args})
        assert response.status_code == expected, (role, name, response.text)
        if expected == 403:
            assert f"may not run {name}" in response.json()["detail"]
            assert "allowed: admin" in response.json()["detail"]
    listing = await as_role(deps.Role.READ_ONLY).get("/api/stations/functions")
    assert listing.status_code == 200
