"""Importing stations and tokens: a dry run that reports exactly and changes nothing, an apply
that is all or nothing, errors per line, and hostile files refused with a clear 4xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from stekker.app import Stekker
from stekker.db.models import AuditEntry
from stekker.services import imports
from tests.observe import eventually
from tests.peers import ocpp_station

CSV = {"Content-Type": "text/csv"}
CAFE = "Caf\u00e9 \u2019t Hoekje"  # é and the curly apostrophe are in Windows-1252
JSON = {"Content-Type": "application/json"}

# What an operator exports from a spreadsheet: a BOM, quoted fields with the delimiter and
# quotes inside, blank lines, columns in any order and case.
STATIONS_CSV = (
    "\ufeffID,Location,EVSE count,security_profile,groups,password,notes,authentication\r\n"
    'IMP-1,Dam,2,1,"west;pilot",secret-password-0001,"Parkeergarage, niveau -1",\r\n'
    'IMP-2,Dam,1,,west,,"says ""hi""",none\r\n'
    "\r\n"
    "IMP-3,,0,,,,,none\r\n"
).encode()


async def post(
    api: httpx.AsyncClient, kind: str, body: bytes, headers: dict[str, str], **params: str
) -> httpx.Response:
    return await api.post(f"/api/import/{kind}", content=body, headers=headers, params=params)


async def location(api: httpx.AsyncClient, name: str = "Dam") -> int:
    body = {"name": name, "address": "Dam 1", "city": "Amsterdam", "latitude": 52.37, "longitude": 4.89}
    response = await api.post("/api/locations", json=body)
    assert response.status_code == 201, response.text
    lid: int = response.json()["id"]
    return lid


async def audit_actions(server: Stekker) -> list[tuple[str, dict[str, Any]]]:
    async with server.ctx.db() as db:
        rows = (await db.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [(a.action, a.detail) for a in rows]


async def test_station_import_dry_run_apply_and_rerun(api: httpx.AsyncClient, server: Stekker) -> None:
    lid = await location(api)
    await api.post("/api/stations", json={"authentication": "none", "id": "IMP-2", "evse_count": 1})

    response = await post(api, "stations", STATIONS_CSV, CSV)  # dry run is the default
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] is True and report["applied"] is False
    assert report["totals"] == {"rows": 3, "create": 2, "update": 1, "unchanged": 0, "error": 0}
    assert report["new_groups"] == ["pilot", "west"]
    one, two, three = report["rows"]
    assert (one["line"], one["key"], one["action"]) == (2, "IMP-1", "create")
    assert one["changes"] == {
        "location_id": [None, lid],
        "security_profile": [None, 1],
        "notes": [None, "Parkeergarage, niveau -1"],
        "evse_count": [0, 2],
        "groups": ["", "pilot;west"],
        "password": [None, "(changed)"],
    }
    assert "secret-password-0001" not in response.text  # never echoed
    assert (two["line"], two["action"]) == (3, "update")
    assert two["changes"] == {
        "location_id": [None, lid],
        "notes": [None, 'says "hi"'],
        "groups": ["", "west"],
    }
    # the blank line counts; authentication none is security profile 0
    assert (three["line"], three["action"], three["changes"]) == (
        5,
        "create",
        {"security_profile": [None, 0]},
    )
    # nothing changed
    assert [s["id"] for s in (await api.get("/api/stations")).json()] == ["IMP-2"]
    assert (await api.get("/api/groups")).json() == []

    response = await post(api, "stations", STATIONS_CSV, CSV, dry_run="false")
    assert response.status_code == 200, response.text
    assert response.json()["applied"] is True and response.json()["totals"] == report["totals"]
    stations = {s["id"]: s for s in (await api.get("/api/stations")).json()}
    assert set(stations) == {"IMP-1", "IMP-2", "IMP-3"}
    assert stations["IMP-1"]["groups"] == ["pilot", "west"] and stations["IMP-2"]["groups"] == ["west"]
    assert [e["evse_id"] for e in stations["IMP-1"]["evses"]] == ["NL*STK*EIMP1*1", "NL*STK*EIMP1*2"]
    assert stations["IMP-1"]["security_profile"] == 1 and stations["IMP-1"]["location_id"] == lid
    assert stations["IMP-2"]["notes"] == 'says "hi"'
    assert [stations[s]["authentication"] for s in ("IMP-1", "IMP-2", "IMP-3")] == [
        "password",
        "none",
        "none",
    ]

    # the same file again: nothing to do (the password is compared with the stored hash)
    again = (await post(api, "stations", STATIONS_CSV, CSV)).json()
    assert again["totals"] == {"rows": 3, "create": 0, "update": 0, "unchanged": 3, "error": 0}

    [(action, detail)] = [(a, d) for a, d in await audit_actions(server) if a.startswith("import.")]
    assert action == "import.stations.applied"
    assert (
        detail["totals"]["create"] == 2
        and detail["created"] == ["IMP-1", "IMP-3"]
        and detail["updated"] == ["IMP-2"]
    )
    assert "secret-password-0001" not in json.dumps(await audit_actions(server))
    chosen = [d for a, d in await audit_actions(server) if a == "station.authentication_none"]
    assert len(chosen) == 2  # IMP-2 through the API, IMP-3 by the import's authentication column


async def test_a_new_station_row_without_credentials_is_an_error(api: httpx.AsyncClient) -> None:
    body = (
        b"id,password,security_profile,authentication\nNO-1,,,\nNO-2,,,password\nCERT-1,,3,\nOPEN-1,,,none\n"
    )
    report = (await post(api, "stations", body, CSV)).json()
    rows = {r["key"]: r for r in report["rows"]}
    assert rows["NO-1"]["action"] == "error" and "a station needs credentials" in rows["NO-1"]["errors"][0]
    assert "authentication can only be none" in " ".join(rows["NO-2"]["errors"])
    assert rows["CERT-1"]["action"] == rows["OPEN-1"]["action"] == "create"


async def test_semicolon_excel_export_updates_with_old_and_new(api: httpx.AsyncClient, ocpp_url: str) -> None:
    """Dutch Excel saves 'CSV' with ';' and Windows-1252; groups then need quotes or one name."""
    await location(api, "Stadhuis")
    await api.post(
        "/api/stations",
        json={"authentication": "none", "id": "NL-1", "evse_count": 1, "registration_status": "Pending"},
    )
    body = f'id;location;registration_status;notes;groups\r\nNL-1;Stadhuis;accepted;{CAFE};"zuid;oost"\r\n'
    report = (
        await post(api, "stations", body.encode("cp1252"), {"Content-Type": "text/csv; charset=windows-1252"})
    ).json()
    [row] = report["rows"]
    assert row["action"] == "update", report
    assert row["changes"]["registration_status"] == ["Pending", "Accepted"]
    assert row["changes"]["notes"] == [None, CAFE]
    assert row["changes"]["groups"] == ["", "oost;zuid"]
    response = await post(api, "stations", body.encode("cp1252"), CSV, dry_run="false")
    assert response.status_code == 200, response.text
    station = (await api.get("/api/stations/NL-1")).json()
    assert station["registration_status"] == "Accepted" and station["notes"] == CAFE
    async with ocpp_station(ocpp_url, "NL-1", boot=False) as cp:
        assert (await cp.boot()).status == "Accepted"


async def test_errors_are_reported_per_line_and_nothing_is_applied(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    await location(api, "Dam")
    await location(api, "Twin")
    await location(api, "Twin")
    await api.post("/api/stations", json={"authentication": "none", "id": "OLD-1", "evse_count": 3})
    body = (
        b"id,location,evse_count,security_profile,password,groups\n"
        b"OK-1,Dam,1,0,,\n"
        b"bad id,,,,,\n"  # 3
        b"OK-2,Nowhere,,,,\n"  # 4
        b"OK-3,Twin,,,,\n"  # 5
        b"OK-1,,,,,\n"  # 6: duplicate
        b"OK-4,,65,,,\n"  # 7
        b"OK-5,,,2,,\n"  # 8: profile 2 without a password
        b"OK-6,,,,short,\n"  # 9
        b"OLD-1,,1,,,\n"  # 10: fewer EVSEs than it has
        b"OK-7,,x,,,\n"  # 11
        b"OK-8,,,,,1234\n"  # 12: a group name of digits only
        b"OK-9,,1,,,,extra\n"  # 13: more values than columns
        b"E-1,,1,0,,\n"
        b"E1,,1,0,,\n"  # 15: the same generated EVSE id as E-1
        b"OLD1,,1,0,,\n"  # 16: the same generated EVSE id as OLD-1 has
    )
    report = (await post(api, "stations", body, CSV)).json()
    errors = {r["line"]: " ".join(r["errors"]) for r in report["rows"] if r["action"] == "error"}
    assert report["totals"] == {"rows": 15, "create": 2, "update": 0, "unchanged": 0, "error": 13}
    expected = {
        3: "is not a station id",
        4: "no location named 'Nowhere'",
        5: "2 locations are named 'Twin': use location_id",
        6: "duplicate of line 2",
        7: "evse_count must be from 0 to 64",
        8: "security profile 2 authenticates with a password",
        9: "password must have 16 to 40 characters",
        10: "below the 3 EVSEs registered",
        11: "evse_count must be a whole number",
        12: "needs a letter",
        13: "7 values but 6 columns",
        15: "EVSE id NL*STK*EE1*1 is also that of E-1 (line 14)",
        16: "EVSE id NL*STK*EOLD1*1 is already used by station OLD-1",
    }
    for line, message in expected.items():
        assert message in errors[line], (line, errors[line])

    response = await post(api, "stations", body, CSV, dry_run="false")
    assert response.status_code == 422
    answer = response.json()
    assert (
        answer["error"] == "invalid_rows" and "13 row(s) have errors; nothing was applied" == answer["detail"]
    )
    assert answer["report"]["totals"]["error"] == 13
    assert [s["id"] for s in (await api.get("/api/stations")).json()] == ["OLD-1"]  # OK-1 was not made either
    assert not [a for a, _ in await audit_actions(server) if a.startswith("import.")]


async def test_token_import_json_and_csv_reach_the_local_list(api: httpx.AsyncClient, ocpp_url: str) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1", "visual_number": "V1"})
    rows = [
        {"uid": "CARD-1", "status": "blocked", "visual_number": "V1"},
        {
            "uid": "CARD-2",
            "type": "RFID",
            "expires_at": "2030-01-01T00:00:00+01:00",
            "group_id": "FLEET",
            "contract_id": "NL-STK-C12345678-X",
        },
        {
            "uid": "APP-3",
            "type": "app_user",
            "allow_concurrent": True,
            "country_code": "BE",
            "party_id": "ABC",
        },
    ]
    async with ocpp_station(ocpp_url, "TOKIMP") as cp:
        await eventually(lambda: "CARD-1" in cp.local_list)
        report = (await post(api, "tokens", json.dumps(rows).encode(), JSON)).json()
        assert report["totals"] == {"rows": 3, "create": 2, "update": 1, "unchanged": 0, "error": 0}
        assert report["rows"][0]["changes"] == {"status": ["active", "blocked"]}
        assert report["rows"][1]["changes"]["expires_at"] == [None, "2029-12-31T23:00:00+00:00"]
        assert len((await api.get("/api/tokens")).json()) == 1  # dry run

        response = await post(api, "tokens", json.dumps(rows).encode(), JSON, dry_run="false")
        assert response.status_code == 200, response.text
        tokens = {t["uid"]: t for t in (await api.get("/api/tokens")).json()}
        assert tokens["CARD-1"]["status"] == "blocked" and tokens["APP-3"]["type"] == "APP_USER"
        assert tokens["APP-3"]["country_code"] == "BE" and tokens["APP-3"]["allow_concurrent"] is True
        assert (
            tokens["CARD-2"]["list_version"] == tokens["CARD-1"]["list_version"]
        )  # one version for the import
        # connected stations get the change in their local list
        await eventually(lambda: (cp.local_list.get("CARD-1") or {}).get("status") == "Blocked")
        await eventually(lambda: (cp.local_list.get("CARD-2") or {}).get("parent_id_tag") == "FLEET")

    csv_body = b"uid;status;visual_number\nCARD-1;Blocked;V1\nCARD-2;active;V2\n"
    report = (await post(api, "tokens", csv_body, CSV)).json()
    assert [r["action"] for r in report["rows"]] == ["unchanged", "update"]
    assert report["rows"][1]["changes"] == {"visual_number": [None, "V2"]}


async def test_token_import_errors(api: httpx.AsyncClient) -> None:
    body = (
        "uid,type,status,expires_at,group_id,allow_concurrent,country_code\n"
        "A1,CREDIT,,,,,\n"
        "A2,,lost,,,,\n"
        "A3,,,2030-01-01T00:00:00,,,\n"
        "A4,,,next week,,,\n"
        f"A5,,,,{'G' * 21},,\n"
        "A6,,,,,maybe,\n"
        "A7,,,,,,nl\n"
        "has space,,,,,,\n"
        "A1,,,,,,\n"
        "A1,,,,,,BE\n"  # another issuer: not a duplicate
        "A8,,,2030-01-01,,,\n"
    ).encode()
    report = (await post(api, "tokens", body, CSV)).json()
    errors = [(r["line"], " ".join(r["errors"])) for r in report["rows"] if r["errors"]]
    assert [line for line, _ in errors] == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    for (_, text), word in zip(
        errors,
        [
            "type must be",
            "status must be",
            "UTC offset",
            "ISO 8601",
            "group_id has more than 20",
            "allow_concurrent",
            "country_code",
            "printable",
            "duplicate of line 2",
        ],
        strict=True,
    ):
        assert word in text
    assert report["rows"][-1]["changes"]["expires_at"] == [None, "2030-01-01T00:00:00+00:00"]
    assert (await post(api, "tokens", body, CSV, dry_run="false")).status_code == 422
    assert (await api.get("/api/tokens")).json() == []


async def test_hostile_files_get_a_clear_4xx(
    api: httpx.AsyncClient, settings_overrides: dict[str, Any]
) -> None:
    cases: list[tuple[bytes, dict[str, str], int, str]] = [
        (b"id\nX\n", {"Content-Type": "application/xml"}, 415, "send CSV"),
        (b"", CSV, 422, "body is empty"),
        (b"id,colour\nX,red\n", CSV, 422, "unknown column 'colour'"),
        (b"id,id\nX,Y\n", CSV, 422, "given twice"),
        (b"id\n", CSV, 422, "no rows"),
        (b'id,notes\nX,"never closed\n', CSV, 422, ""),
        (b"{not json", JSON, 422, "not valid JSON"),
        (b'{"id": "X"}', JSON, 422, "array of objects"),
        (b"x" * (imports.MAX_BYTES + 1), CSV, 413, "over 5 MB"),
        (("id\n" + "".join(f"S{i}\n" for i in range(imports.MAX_ROWS + 1))).encode(), CSV, 413, "more than"),
        (json.dumps([{"id": f"S{i}"} for i in range(imports.MAX_ROWS + 1)]).encode(), JSON, 413, "more than"),
    ]
    for body, headers, status, message in cases:
        response = await api.post("/api/import/stations", content=body, headers=headers)
        assert response.status_code == status, (body[:40], response.text[:300])
        assert message in response.json()["detail"], (body[:40], response.text[:300])
    assert (
        await api.post("/api/import/stations?dry_run=maybe", content=b"id\nX\n", headers=CSV)
    ).status_code == 422

    # formula injection and odd JSON values are refused per row, with what was found
    body = (
        b"id,authentication,notes\n"
        b'INJ-1,none,"=HYPERLINK(""http://evil"",""click"")"\n'
        b"INJ-2,none,+cmd|' /C calc'!A0\n"
        b"INJ-3,none,@SUM(A1)\n"
        b"INJ-4,none,-2+3\n"
        b"=1+1,none,\n"
        b"INJ-6,none,-12.5\n"
        b"INJ-7,none,'; DROP TABLE charging_stations; --\n"
    )
    rows = (await post(api, "stations", body, CSV)).json()["rows"]
    assert [r["action"] for r in rows] == ["error"] * 5 + ["create", "create"]
    assert all("spreadsheet formula" in r["errors"][0] for r in rows[:5])
    items = [
        {"id": "J-1", "groups": ["a", "b"], "authentication": "none"},
        {"id": "J-2", "notes": {"x": 1}, "authentication": "none"},
        ["J-3"],
        {"id": "J-4", "evse_count": 2, "authentication": "none"},
    ]
    rows = (await post(api, "stations", json.dumps(items).encode(), JSON)).json()["rows"]
    assert [(r["line"], r["action"]) for r in rows] == [
        (1, "create"),
        (2, "error"),
        (3, "error"),
        (4, "create"),
    ]
    assert rows[0]["changes"]["groups"] == ["", "a;b"] and "must be a text" in rows[1]["errors"][0]
    assert (await api.get("/api/stations")).json() == []


async def test_cli_import_dry_run_then_apply(cli: Any, api: httpx.AsyncClient, tmp_path: Path) -> None:
    stations = tmp_path / "stations.csv"
    stations.write_bytes(STATIONS_CSV.replace(b"Dam", b""))
    result = await cli("import", "stations", str(stations))
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "dry run, nothing changed" in flat and "create 3" in flat and "--apply" in flat
    assert (await api.get("/api/stations")).json() == []
    result = await cli("import", "stations", str(stations), "--apply")
    assert result.exit_code == 0, result.output
    assert "applied" in result.output and len((await api.get("/api/stations")).json()) == 3

    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([{"uid": "C1"}, {"uid": "C1"}]))
    result = await cli("import", "tokens", str(tokens), "--apply")
    flat = " ".join(result.output.split())
    assert result.exit_code == 1 and "duplicate of line 1" in flat and "nothing was applied" in flat
    assert (await api.get("/api/tokens")).json() == []
    result = await cli("import", "tokens", str(tmp_path / "missing.csv"))
    assert result.exit_code == 2 and "cannot read" in result.output


async def test_a_new_password_or_profile_drops_the_cached_credentials_in_every_process(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    from stekker.bus import Event

    said: list[dict[str, Any]] = []

    async def heard(event: Event) -> None:
        said.append(dict(event.data))

    server.ctx.bus.subscribe("auth.changed", heard)
    first = b"id,evse_count,password\nPW-1,1,first-password-0001\nPW-2,1,first-password-0002\n"
    assert (await post(api, "stations", first, CSV, dry_run="false")).status_code == 200
    assert said == []  # new stations: nobody can have cached them
    # the same passwords again: unchanged, nothing to drop
    assert (await post(api, "stations", first, CSV, dry_run="false")).status_code == 200
    assert said == []
    one = b"id,password\nPW-1,second-password-001\n"
    assert (await post(api, "stations", one, CSV, dry_run="false")).status_code == 200
    assert [(d["what"], d.get("station_id")) for d in said] == [("station", "PW-1")]
    said.clear()
    both = b"id,security_profile,password\nPW-1,2,third-password-0001\nPW-2,2,\n"
    response = await post(api, "stations", both, CSV, dry_run="false")
    assert response.status_code == 200, response.text
    assert [(d["what"], d.get("station_id")) for d in said] == [("station", None)]  # every cache emptied
    said.clear()
    # a dry run and a refused import change nothing, so drop nothing
    assert (await post(api, "stations", b"id,password\nPW-1,fourth-password-001\n", CSV)).status_code == 200
    bad = b"id,password\nPW-1,short\n"
    assert (await post(api, "stations", bad, CSV, dry_run="false")).status_code == 422
    assert said == []
