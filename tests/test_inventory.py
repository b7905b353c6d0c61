"""Inventory: locations, station changes and retirement, EVSEs and connectors, token changes
and groups, through the API and the CLI, each change audited; bad input gets a clear 4xx."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy import select
from websockets.exceptions import InvalidStatus

from stekker.app import Stekker
from stekker.db.models import AuditEntry
from tests.observe import eventually
from tests.peers import now_iso, ocpp_station, raw_station

DAM: dict[str, Any] = {
    "name": "Dam",
    "address": "Dam 1",
    "city": "Amsterdam",
    "postal_code": "1012 JS",
    "latitude": 52.373169,
    "longitude": "4.892426",
    "opening_times": {
        "twentyfourseven": False,
        "regular_hours": [
            {"weekday": d, "period_begin": "07:00", "period_end": "23:00"} for d in range(1, 8)
        ],
        "exceptional_closings": [
            {"period_begin": "2026-12-25T00:00:00Z", "period_end": "2026-12-26T00:00:00Z"}
        ],
    },
}


async def audit_log(server: Stekker) -> list[tuple[str, str, str, dict[str, Any]]]:
    async with server.ctx.db() as db:
        rows = (await db.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [(a.actor, a.action, a.object_id, a.detail) for a in rows]


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


# --- locations --------------------------------------------------------------------------------


async def test_location_round_trip_and_retirement(api: httpx.AsyncClient, server: Stekker) -> None:
    created = await ok(await api.post("/api/locations", json=DAM), 201)
    assert created["country"] == "NLD" and created["time_zone"] == "Europe/Amsterdam"
    assert created["latitude"] == "52.373169" and created["longitude"] == "4.892426"
    assert created["opening_times"] == DAM["opening_times"] and created["retired_at"] is None
    lid = created["id"]

    changed = await ok(
        await api.patch(f"/api/locations/{lid}", json={"city": "Amsterdam-Centrum", "opening_times": None})
    )
    assert changed["city"] == "Amsterdam-Centrum" and changed["opening_times"] is None
    assert changed["name"] == "Dam"  # untouched

    await ok(
        await api.post("/api/stations", json={"authentication": "none", "id": "LOC-1", "location_id": lid}),
        201,
    )
    assert (await ok(await api.get(f"/api/locations/{lid}")))["station_ids"] == ["LOC-1"]
    refused = await api.post(f"/api/locations/{lid}/retire")
    assert refused.status_code == 409 and "1 station(s) in service" in refused.json()["detail"]

    await ok(await api.patch("/api/stations/LOC-1", json={"location_id": None}))
    retired = await ok(await api.post(f"/api/locations/{lid}/retire"))
    assert retired["retired_at"] is not None
    assert await ok(await api.get("/api/locations")) == []
    assert [loc["id"] for loc in await ok(await api.get("/api/locations?include_retired=true"))] == [lid]
    # a retired location takes no stations
    moved = await api.patch("/api/stations/LOC-1", json={"location_id": lid})
    assert moved.status_code == 409 and "retired" in moved.json()["detail"]
    assert (
        await api.post("/api/stations", json={"authentication": "none", "id": "LOC-2", "location_id": lid})
    ).status_code == 409

    back = await ok(await api.post(f"/api/locations/{lid}/unretire"))
    assert back["retired_at"] is None

    actions = [(actor, action, obj) for actor, action, obj, _ in await audit_log(server)]
    assert ("operator", "location.created", str(lid)) in actions
    assert ("operator", "location.retired", str(lid)) in actions
    assert ("operator", "location.unretired", str(lid)) in actions
    [update] = [d for _, a, _, d in await audit_log(server) if a == "location.updated"]
    assert update["changes"]["city"] == ["Amsterdam", "Amsterdam-Centrum"]


BAD_LOCATIONS: list[tuple[dict[str, Any], str]] = [
    ({"latitude": 91}, "latitude must be between -90 and 90"),
    ({"longitude": -180.5}, "longitude must be between -180 and 180"),
    ({"latitude": "52.1234567"}, "more than 6 decimals"),
    ({"latitude": "north"}, "latitude"),
    ({"country": "NL"}, "ISO 3166-1 alpha-3"),
    ({"country": "XYZ"}, "ISO 3166-1 alpha-3"),
    ({"time_zone": "Mars/Olympus_Mons"}, "IANA time zone"),
    ({"time_zone": "../../etc/passwd"}, "IANA time zone"),
    ({"opening_times": {"twentyfourseven": "yes"}}, "twentyfourseven is required"),
    ({"opening_times": {"twentyfourseven": False}}, "give regular_hours"),
    (
        {
            "opening_times": {
                "twentyfourseven": False,
                "regular_hours": [{"weekday": 8, "period_begin": "07:00", "period_end": "08:00"}],
            }
        },
        "weekday must be 1",
    ),
    (
        {
            "opening_times": {
                "twentyfourseven": False,
                "regular_hours": [{"weekday": 1, "period_begin": "7am", "period_end": "08:00"}],
            }
        },
        "period_begin must be HH:MM",
    ),
    (
        {
            "opening_times": {
                "twentyfourseven": False,
                "regular_hours": [{"weekday": 1, "period_begin": "09:00", "period_end": "08:00"}],
            }
        },
        "after period_begin",
    ),
    ({"opening_times": {"twentyfourseven": True, "sometimes": 1}}, "unknown fields"),
    (
        {
            "opening_times": {
                "twentyfourseven": True,
                "exceptional_closings": [{"period_begin": "x", "period_end": "y"}],
            }
        },
        "ISO 8601",
    ),
    ({"name": ""}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"surprise": 1}, "surprise"),
]


async def test_bad_location_is_422_with_a_clear_message(api: httpx.AsyncClient) -> None:
    for change, message in BAD_LOCATIONS:
        response = await api.post("/api/locations", json={**DAM, **change})
        assert response.status_code == 422, (change, response.text)
        assert message in response.text, (change, response.text)
    assert await ok(await api.get("/api/locations?include_retired=true")) == []


async def test_location_patch_and_ids_are_checked(api: httpx.AsyncClient) -> None:
    lid = (await ok(await api.post("/api/locations", json=DAM), 201))["id"]
    for body, message in (
        ({"latitude": 100}, "latitude"),
        ({"country": None}, "country cannot be null"),
        ({"time_zone": "Nowhere/Town"}, "IANA"),
        ({"id": 5}, "id"),
    ):
        response = await api.patch(f"/api/locations/{lid}", json=body)
        assert response.status_code == 422 and message in response.text, response.text
    assert (await api.get("/api/locations/999")).status_code == 404
    assert (await api.patch("/api/locations/999", json={"city": "X"})).status_code == 404
    assert (await api.post("/api/locations/999/retire")).status_code == 404
    assert (await api.get("/api/locations/abc")).status_code == 422
    huge = "99999999999999999999"  # beyond every database's INTEGER: a 4xx, not a driver error
    for method, path, body in (
        ("GET", f"/api/locations/{huge}", None),
        ("POST", f"/api/locations/{huge}/retire", None),
        ("GET", f"/api/groups/{huge}", None),
        ("GET", f"/api/tokens/{huge}", None),
        ("PATCH", f"/api/tokens/{huge}", {"status": "blocked"}),
        ("DELETE", f"/api/stations/X/evses/{huge}", None),
        ("DELETE", f"/api/stations/X/evses/1/connectors/{huge}", None),
        ("POST", "/api/stations", {"id": "HUGE", "location_id": int(huge)}),
        ("PATCH", "/api/stations/HUGE", {"location_id": int(huge)}),
    ):
        response = await api.request(method, path, json=body)
        assert response.status_code in (404, 422), (path, response.text)
    assert (await api.get("/api/locations?limit=0")).status_code == 422
    # injection strings are data, stored and returned verbatim
    nasty = "'; DROP TABLE locations; -- <script>alert(1)</script>"
    changed = await ok(await api.patch(f"/api/locations/{lid}", json={"name": nasty}))
    assert changed["name"] == nasty
    assert (await ok(await api.get(f"/api/locations/{lid}")))["name"] == nasty


# --- stations ---------------------------------------------------------------------------------


async def test_station_patch_rotates_password_and_checks_profile(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    old, new = "old-password-0123456", "new-password-6543210"
    await ok(
        await api.post("/api/stations", json={"id": "PW-1", "password": old, "security_profile": 1}), 201
    )
    lid = (await ok(await api.post("/api/locations", json=DAM), 201))["id"]
    station = await ok(
        await api.patch(
            "/api/stations/PW-1",
            json={
                "password": new,
                "location_id": lid,
                "notes": "key at the desk",
                "registration_status": "Pending",
            },
        )
    )
    assert station["location_id"] == lid and station["notes"] == "key at the desk"
    assert station["registration_status"] == "Pending" and "password" not in station
    with pytest.raises(InvalidStatus) as refused:
        async with ocpp_station(ocpp_url, "PW-1", password=old, boot=False):
            pass
    assert refused.value.response.status_code == 401
    async with ocpp_station(ocpp_url, "PW-1", password=new, boot=False) as cp:
        booted = await cp.boot()
        assert booted.status == "Pending"  # the registration status we set

    for body, status, message in (
        ({"password": None}, 422, "authenticates with a password"),  # profile 1 needs one
        ({"security_profile": 0}, 422, "no authentication"),  # but a password is set
        ({"password": "short"}, 422, "password"),
        ({"location_id": 999}, 404, "no location 999"),
        ({"registration_status": "Maybe"}, 422, "registration_status"),
        ({"registration_status": None}, 422, "cannot be null"),
        ({"security_profile": 7}, 422, "security_profile"),
        ({"vendor": "Hacker"}, 422, "vendor"),
        ({"notes": "x" * 2001}, 422, "notes"),
    ):
        response = await api.patch("/api/stations/PW-1", json=body)
        assert response.status_code == status and message in response.text, (body, response.text)
    assert (await api.patch("/api/stations/NOPE", json={"notes": "x"})).status_code == 404
    # moving down to no authentication: remove the password and the profile together
    station = await ok(await api.patch("/api/stations/PW-1", json={"password": None, "security_profile": 0}))
    assert station["security_profile"] == 0

    [rotation] = [
        d for _, a, o, d in await audit_log(server) if a == "station.updated" and "password" in d["changes"]
    ][:1]
    assert rotation["changes"]["password"] == ["(set)", "(changed)"]
    assert new not in str(await audit_log(server))  # the secret is never written down


async def test_retired_station_is_refused_at_connect_and_can_come_back(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    await ok(
        await api.post("/api/stations", json={"authentication": "none", "id": "RET-1", "evse_count": 1}), 201
    )
    retired = await ok(await api.post("/api/stations/RET-1/retire"))
    assert retired["retired_at"] is not None
    assert await ok(await api.get("/api/stations")) == []
    assert [s["id"] for s in await ok(await api.get("/api/stations?include_retired=true"))] == ["RET-1"]
    assert (await ok(await api.get("/api/stations/RET-1")))["retired_at"] is not None

    with pytest.raises(InvalidStatus) as refused:
        async with raw_station(ocpp_url, "RET-1"):
            pass
    assert refused.value.response.status_code == 403
    assert b"retired" in (refused.value.response.body or b"")
    events = await ok(await api.get("/api/stations/RET-1/events"))
    assert events[0]["kind"] == "connection_refused" and events[0]["detail"]["reason"] == "station is retired"

    await ok(await api.post("/api/stations/RET-1/unretire"))
    async with raw_station(ocpp_url, "RET-1") as station:
        assert (await station.ok("Heartbeat", {}))["currentTime"]
        # retiring a station that is connected drops it at once, not at its next connect
        await ok(await api.post("/api/stations/RET-1/retire"))
        await asyncio.wait_for(station.ws.wait_closed(), 5)
        assert station.ws.close_code == 1008 and station.ws.close_reason == "station retired"
    actions = [a for _, a, o, _ in await audit_log(server) if o == "RET-1"]
    assert actions == [
        "station.registered",
        "station.authentication_none",
        "station.retired",
        "station.unretired",
        "station.retired",
    ]
    assert (await api.post("/api/stations/NOPE/retire")).status_code == 404


async def test_evses_and_connectors_are_managed_under_a_station(
    api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await ok(await api.post("/api/stations", json={"authentication": "none", "id": "EV-1"}), 201)
    station = await ok(
        await api.post(
            "/api/stations/EV-1/evses",
            json={
                "evse_number": 1,
                "evse_id": "nl*stk*e0001*1",
                "connectors": [
                    {
                        "connector_number": 1,
                        "standard": "IEC_62196_T2_COMBO",
                        "format": "CABLE",
                        "power_type": "DC",
                        "max_voltage": 920,
                        "max_amperage": 200,
                        "max_electric_power": 150000,
                    },
                    {
                        "connector_number": 2,
                        "standard": "CHADEMO",
                        "format": "CABLE",
                        "power_type": "DC",
                        "max_voltage": 500,
                        "max_amperage": 125,
                    },
                ],
            },
        ),
        201,
    )
    [evse] = station["evses"]
    assert evse["evse_id"] == "NL*STK*E0001*1"  # eMI3 ids are stored upper-case
    assert [(c["standard"], c["max_electric_power"]) for c in evse["connectors"]] == [
        ("IEC_62196_T2_COMBO", 150000),
        ("CHADEMO", None),
    ]
    station = await ok(await api.post("/api/stations/EV-1/evses", json={"evse_number": 2}), 201)
    assert station["evses"][1]["evse_id"] == "NL*STK*EEV1*2"  # generated, with a default Type 2 socket
    assert station["evses"][1]["connectors"][0] | {"status": None} == {
        "connector_number": 1,
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 230,
        "max_amperage": 32,
        "max_electric_power": None,
        "status": None,
        "error_code": None,
        "status_at": None,
        "assumed": False,  # the operator added it (the API's defaults), not a placeholder of ours
    }

    for path, body, status, message in (
        ("/api/stations/EV-1/evses", {"evse_number": 3, "evse_id": "NL-STK-1"}, 422, "eMI3"),
        ("/api/stations/EV-1/evses", {"evse_number": 3, "evse_id": "NL*STK*E0001*1"}, 409, "already used"),
        ("/api/stations/EV-1/evses", {"evse_number": 1}, 409, "already has EVSE 1"),
        ("/api/stations/EV-1/evses", {"evse_number": 0}, 422, "evse_number"),
        (
            "/api/stations/EV-1/evses",
            {"evse_number": 3, "connectors": [{"standard": "SCHUKO"}]},
            422,
            "standard must be one of",
        ),
        (
            "/api/stations/EV-1/evses",
            {"evse_number": 3, "connectors": [{"max_voltage": -1}]},
            422,
            "max_voltage",
        ),
        ("/api/stations/EV-1/evses", {"evse_number": 3, "connectors": [{}, {}]}, 422, "given twice"),
        ("/api/stations/NOPE/evses", {"evse_number": 1}, 404, "no station"),
        ("/api/stations/EV-1/evses/9/connectors", {"connector_number": 2}, 404, "no EVSE 9"),
        ("/api/stations/EV-1/evses/1/connectors", {"connector_number": 2}, 409, "already has connector 2"),
    ):
        response = await api.post(path, json=body)
        assert response.status_code == status and message in response.text, (path, body, response.text)

    station = await ok(await api.patch("/api/stations/EV-1/evses/2", json={"evse_id": "NL*STK*E0001*2"}))
    assert station["evses"][1]["evse_id"] == "NL*STK*E0001*2"
    station = await ok(
        await api.post(
            "/api/stations/EV-1/evses/2/connectors",
            json={
                "connector_number": 2,
                "standard": "DOMESTIC_F",
                "power_type": "AC_1_PHASE",
                "max_amperage": 16,
            },
        ),
        201,
    )
    assert [c["standard"] for c in station["evses"][1]["connectors"]] == ["IEC_62196_T2", "DOMESTIC_F"]
    station = await ok(await api.patch("/api/stations/EV-1/evses/2/connectors/2", json={"max_amperage": 10}))
    assert station["evses"][1]["connectors"][1]["max_amperage"] == 10
    bad = await api.patch("/api/stations/EV-1/evses/2/connectors/2", json={"power_type": "AC_4_PHASE"})
    assert bad.status_code == 422 and "power_type" in bad.text
    assert (
        await api.patch("/api/stations/EV-1/evses/2/connectors/7", json={"max_amperage": 10})
    ).status_code == 404
    await ok(await api.delete("/api/stations/EV-1/evses/2/connectors/2"), 204)
    await ok(await api.delete("/api/stations/EV-1/evses/2"), 204)
    assert [e["evse_number"] for e in (await ok(await api.get("/api/stations/EV-1")))["evses"]] == [1]
    assert (await api.delete("/api/stations/EV-1/evses/2")).status_code == 404

    # a connector the station reports that we did not register still appears, with defaults;
    # an EVSE with a session on record is history and stays
    await api.put("/api/tokens", json={"uid": "CARD-EV"})
    async with ocpp_station(ocpp_url, "EV-1") as cp:
        await cp.call(
            call.StatusNotification(
                connector_id=3, error_code="NoError", status="Available", timestamp=now_iso()
            )
        )
        await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-EV", meter_start=0, timestamp=now_iso())
        )

        async def third() -> Any:
            evses = (await ok(await api.get("/api/stations/EV-1")))["evses"]
            return evses if len(evses) == 2 else None

        evses = await eventually(third)
        assert evses[1]["evse_number"] == 3 and evses[1]["connectors"][0]["standard"] == "IEC_62196_T2"
    kept = await api.delete("/api/stations/EV-1/evses/1")
    assert kept.status_code == 409 and "session(s) on record" in kept.json()["detail"]


# --- tokens -----------------------------------------------------------------------------------


async def test_token_patch_and_retire_reach_connected_stations(
    api: httpx.AsyncClient, ocpp_url: str, server: Stekker
) -> None:
    token = await ok(await api.put("/api/tokens", json={"uid": "CARD-T", "visual_number": "0001"}))
    async with ocpp_station(ocpp_url, "TOK-1") as cp:
        await eventually(lambda: "CARD-T" in cp.local_list)
        changed = await ok(
            await api.patch(
                f"/api/tokens/{token['id']}",
                json={
                    "group_id": "FLEET-A",
                    "expires_at": "2030-01-01T00:00:00+01:00",
                    "visual_number": "0002",
                    "type": "APP_USER",
                },
            )
        )
        assert changed["group_id"] == "FLEET-A" and changed["expires_at"] == "2029-12-31T23:00:00Z"
        assert changed["list_version"] > token["list_version"]
        await eventually(lambda: (cp.local_list.get("CARD-T") or {}).get("parent_id_tag") == "FLEET-A")

        retired = await ok(await api.post(f"/api/tokens/{token['id']}/retire"))
        assert retired["status"] == "retired"
        await eventually(lambda: "CARD-T" not in cp.local_list)
        assert cp.calls("SendLocalList")[-1]["type"] == "Differential"

    unchanged = await ok(await api.patch(f"/api/tokens/{token['id']}", json={"visual_number": "0002"}))
    assert unchanged["list_version"] == retired["list_version"]  # nothing changed: no new version
    assert (await ok(await api.get(f"/api/tokens/{token['id']}")))["visual_number"] == "0002"
    [update, *_] = [d for _, a, _, d in await audit_log(server) if a == "token.updated"]
    assert update["changes"]["visual_number"] == ["0001", "0002"]

    for body, message in (
        ({"status": "lost"}, "status"),
        ({"status": None}, "cannot be null"),
        ({"expires_at": "2030-01-01T00:00:00"}, "UTC offset"),
        ({"group_id": "x" * 21}, "group_id"),
        ({"uid": "OTHER"}, "uid"),
        ({"type": "CREDITCARD"}, "type"),
    ):
        response = await api.patch(f"/api/tokens/{token['id']}", json=body)
        assert response.status_code == 422 and message in response.text, (body, response.text)
    assert (await api.patch("/api/tokens/999", json={"status": "blocked"})).status_code == 404
    assert (await api.post("/api/tokens/999/retire")).status_code == 404
    assert (await api.get("/api/tokens/999")).status_code == 404


# --- groups -----------------------------------------------------------------------------------


async def test_groups_and_membership(api: httpx.AsyncClient, server: Stekker) -> None:
    for sid in ("G-1", "G-2", "G-3"):
        await ok(await api.post("/api/stations", json={"authentication": "none", "id": sid}), 201)
    west = await ok(
        await api.post("/api/groups", json={"name": "Amsterdam West", "description": "district"}), 201
    )
    await ok(await api.post("/api/groups", json={"name": "pilot"}), 201)
    assert (await api.post("/api/groups", json={"name": "pilot"})).status_code == 409

    detail = await ok(
        await api.post(f"/api/groups/{west['id']}/members", json={"station_ids": ["G-1", "G-2", "G-1"]})
    )
    assert detail["station_ids"] == ["G-1", "G-2"] and detail["member_count"] == 2
    await ok(await api.post("/api/groups/pilot/members", json={"station_ids": ["G-2"]}))
    missing = await api.post("/api/groups/pilot/members", json={"station_ids": ["G-3", "NOPE"]})
    assert missing.status_code == 404 and "'NOPE'" in missing.json()["detail"]
    assert await ok(await api.get("/api/groups/pilot/members")) == ["G-2"]  # all or nothing

    stations = {s["id"]: s["groups"] for s in await ok(await api.get("/api/stations"))}
    assert stations == {"G-1": ["Amsterdam West"], "G-2": ["Amsterdam West", "pilot"], "G-3": []}
    assert (await ok(await api.get("/api/stations/G-2")))["groups"] == ["Amsterdam West", "pilot"]
    listed = await ok(await api.get("/api/groups"))
    assert [(g["name"], g["member_count"]) for g in listed] == [("Amsterdam West", 2), ("pilot", 1)]

    detail = await ok(
        await api.post("/api/groups/Amsterdam West/members/remove", json={"station_ids": ["G-1"]})
    )
    assert detail["station_ids"] == ["G-2"]
    renamed = await ok(await api.patch("/api/groups/pilot", json={"name": "pilot-2027", "description": "x"}))
    assert renamed["name"] == "pilot-2027" and renamed["station_ids"] == ["G-2"]
    await ok(await api.delete(f"/api/groups/{west['id']}"), 204)
    assert (await ok(await api.get("/api/stations/G-2")))["groups"] == ["pilot-2027"]
    assert (await api.get("/api/groups/Amsterdam West")).status_code == 404

    for method, path, body, status, message in (
        ("post", "/api/groups", {"name": "1234"}, 422, "needs a letter"),
        ("post", "/api/groups", {"name": "a;b"}, 422, "no ';'"),
        ("post", "/api/groups", {"name": ""}, 422, "name"),
        ("post", "/api/groups", {"name": "x" * 101}, 422, "name"),
        ("post", "/api/groups/pilot-2027/members", {"station_ids": []}, 422, "station_ids"),
        ("post", "/api/groups/pilot-2027/members", {"station_ids": ["a b"]}, 422, "station_ids"),
        ("post", "/api/groups/pilot-2027/members", {"station_ids": "G-1"}, 422, "station_ids"),
        ("post", "/api/groups/nope/members", {"station_ids": ["G-1"]}, 404, "no group"),
        ("patch", "/api/groups/999", {"name": "z"}, 404, "no group"),
        ("patch", "/api/groups/pilot-2027", {"name": None}, 422, "cannot be null"),
    ):
        response = await api.request(method.upper(), path, json=body)
        assert response.status_code == status and message in response.text, (path, body, response.text)
    actions = [a for _, a, _, _ in await audit_log(server) if a.startswith("group.")]
    assert actions == [
        "group.created",
        "group.created",
        "group.members_added",
        "group.members_added",
        "group.members_removed",
        "group.updated",
        "group.deleted",
    ]


# --- CLI ----------------------------------------------------------------------------------------


async def test_cli_locations_and_groups(cli: Any, api: httpx.AsyncClient) -> None:
    result = await cli(
        "location",
        "add",
        "Stadhuis",
        "--address",
        "Amstel 1",
        "--city",
        "Amsterdam",
        "--lat",
        "52.367",
        "--lon",
        "4.900",
    )
    assert result.exit_code == 0, result.output
    [location] = await ok(await api.get("/api/locations"))
    assert location["name"] == "Stadhuis" and location["latitude"] == "52.367000"
    result = await cli(
        "location", "add", "Nowhere", "--address", "x", "--city", "y", "--lat", "95", "--lon", "0"
    )
    assert result.exit_code == 1 and "latitude must be between -90 and 90" in " ".join(result.output.split())

    result = await cli("location", "list")
    assert result.exit_code == 0 and "Stadhuis" in result.output
    result = await cli("location", "show", str(location["id"]))
    assert result.exit_code == 0 and "Amstel 1" in result.output

    await ok(await api.post("/api/stations", json={"authentication": "none", "id": "CLI-1"}), 201)
    assert (await cli("group", "add", "zuid", "--description", "Amsterdam-Zuid")).exit_code == 0
    result = await cli("group", "add-stations", "zuid", "CLI-1")
    assert result.exit_code == 0 and "1 station(s)" in result.output
    result = await cli("group", "list")
    assert result.exit_code == 0 and "zuid" in result.output and "Amsterdam-Zuid" in result.output
    assert (await ok(await api.get("/api/stations/CLI-1")))["groups"] == ["zuid"]
    result = await cli("group", "remove-stations", "zuid", "CLI-1")
    assert result.exit_code == 0 and "0 station(s)" in result.output
    result = await cli("group", "add", "[bold]odd[/] name")  # names are data, not console markup
    assert result.exit_code == 0 and "[bold]odd[/] name" in result.output
    result = await cli("group", "add-stations", "zuid", "NOPE")
    assert result.exit_code == 1 and "404" in result.output

    result = await cli("location", "retire", str(location["id"]))
    assert result.exit_code == 0, result.output
    assert await ok(await api.get("/api/locations")) == []


# --- roles --------------------------------------------------------------------------------------


async def _user_token(api: httpx.AsyncClient, name: str, role: str, admin: str | None) -> str:
    headers = {"Authorization": f"Bearer {admin}"} if admin else {}
    body = {"username": name, "password": "correct horse battery", "role": role}
    assert (await api.post("/api/users", json=body, headers=headers)).status_code == 201
    login = await api.post("/api/auth/token", json={"username": name, "password": "correct horse battery"})
    assert login.status_code == 201, login.text
    token: str = login.json()["token"]
    return token


async def test_reads_for_every_role_changes_for_operators(api: httpx.AsyncClient, server: Stekker) -> None:
    admin = await _user_token(api, "root", "admin", None)
    tokens = {
        role: await _user_token(api, role, role, admin)
        for role in ("operator", "helpdesk", "municipality", "read-only")
    }
    as_ = {role: {"Authorization": f"Bearer {t}"} for role, t in tokens.items()}
    created = await api.post("/api/locations", json=DAM, headers=as_["operator"])
    assert created.status_code == 201, created.text
    await api.post("/api/stations", json={"authentication": "none", "id": "ROLE-1"}, headers=as_["operator"])
    lid = created.json()["id"]
    changes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/locations", {"json": DAM}),
        ("PATCH", f"/api/locations/{lid}", {"json": {"city": "X"}}),
        ("POST", f"/api/locations/{lid}/retire", {}),
        ("PATCH", "/api/stations/ROLE-1", {"json": {"notes": "x"}}),
        ("POST", "/api/stations/ROLE-1/retire", {}),
        ("POST", "/api/stations/ROLE-1/evses", {"json": {"evse_number": 1}}),
        ("POST", "/api/groups", {"json": {"name": "g"}}),
        ("POST", "/api/import/stations", {"content": b"id\nX\n"}),
        ("POST", "/api/import/tokens", {"content": b"uid\nX\n"}),
    ]
    for role in ("helpdesk", "municipality", "read-only"):
        for path in ("/api/locations", "/api/groups", "/api/stations/ROLE-1"):
            assert (await api.get(path, headers=as_[role])).status_code == 200, (role, path)
        for method, path, kw in changes:
            headers = {**as_[role], "Content-Type": "text/csv"} if "content" in kw else as_[role]
            response = await api.request(method, path, headers=headers, **kw)
            assert response.status_code == 403, (role, method, path, response.text)
    [(actor, _, _, _)] = [e for e in await audit_log(server) if e[1] == "location.created"]
    assert actor == "user:operator"
