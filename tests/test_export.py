"""Export of all historical data (requirement 169), as a user sees it: every record kind in CSV,
JSON lines and Parquet through `GET /api/exports/{kind}` and `stekker export`, on SQLite and
PostgreSQL.

The history comes from what makes it in production where that is practical: a simulated OCPP
1.6 station charges (statuses, authorization, meter values, a session, its CDR), tokens and
stations are made through the API (audit entries). Rows whose time or shape a station cannot
choose freely (a status at an exact boundary, signed meter data, a partner's token) are
inserted directly.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ocpp.v16 import call
from sqlalchemy import func, insert, select

from stekker.app import Stekker
from stekker.db.models import (
    AuditEntry,
    AuthorizationRequest,
    ChargingSession,
    MeterValue,
    StationEvent,
    StatusHistory,
    Token,
)
from stekker.db.models_ocpi import OcpiPartner
from stekker.db.models_secrets import InstallationSecret
from stekker.db.models_tariffs import Cdr
from stekker.export import pseudonym
from stekker.export.formats import CsvWriter, JsonLinesWriter, ParquetWriter, csv_cell
from stekker.export.records import KINDS, ColumnType, Personal
from stekker.export.service import parse_request
from stekker.export.stream import ExportFilter, export_bytes
from stekker.services.errors import Invalid, Missing
from tests.observe import add_token, eventually
from tests.peers import ocpp_station
from tests.test_cdrs import TARIFF, add_tariff, base_time, cdrs_of, session_16

FORMATS = ("csv", "jsonl", "parquet")
MODELS: dict[str, Any] = {
    "sessions": ChargingSession,
    "cdrs": Cdr,
    "meter_values": MeterValue,
    "authorization_requests": AuthorizationRequest,
    "status_history": StatusHistory,
    "station_events": StationEvent,
    "audit_log": AuditEntry,
}
CARD = "04A2B3C4D5E6F7"  # the driver's RFID uid: must never reach the municipality
CONTRACT = "NL-STK-C12345678-X"
PASSWORD = "correct horse battery"


# --- helpers ------------------------------------------------------------------------------------


async def login(api: httpx.AsyncClient, admin: dict[str, str], name: str, role: str) -> dict[str, str]:
    """A user with `role` (the first, on the open API, is the admin): its bearer header."""
    created = await api.post(
        "/api/users", json={"username": name, "password": PASSWORD, "role": role}, headers=admin
    )
    assert created.status_code == 201, created.text
    response = await api.post("/api/auth/token", json={"username": name, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def download(
    api: httpx.AsyncClient, kind: str, headers: dict[str, str], **params: Any
) -> httpx.Response:
    response = await api.get(f"/api/exports/{kind}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response


def parse(fmt: str, content: bytes) -> list[dict[str, Any]]:
    """The records of an export, read the way a user's tools read them."""
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(content.decode("utf-8"), newline="")))
    if fmt == "jsonl":
        return [json.loads(line) for line in content.decode("utf-8").splitlines()]
    rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(content)).to_pylist()
    return rows


def texts(value: Any) -> list[str]:
    """Every text inside a decoded record (JSON text in CSV and Parquet cells included)."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in texts(v)]
    if isinstance(value, str):
        found = [value]
        if value[:1] in "{[":
            try:
                found += texts(json.loads(value))
            except ValueError:
                pass
        return found
    return []


async def table_count(server: Stekker, kind: str) -> int:
    async with server.ctx.db() as db:
        return int(await db.scalar(select(func.count()).select_from(MODELS[kind])) or 0)


async def history(server: Stekker, api: httpx.AsyncClient, ocpp_url: str) -> int:
    """A token (audited with its uid), a station that reports statuses with hostile free text,
    charges once (CDR) and stops; one signed meter value carrying the uid. The session id."""
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    await add_token(api, CARD, contract_id=CONTRACT)
    session_id = await session_16(ocpp_url, "EXP-1", CARD, base)
    await cdrs_of(api, "EXP-1")
    async with ocpp_station(ocpp_url, "EXP-1") as cp:
        for info in ('=HYPERLINK("http://evil")', "-12.5", "+31 20 555"):
            await cp.call(
                call.StatusNotification(
                    connector_id=2, error_code="OtherError", status="Faulted", info=info, timestamp=iso(base)
                )
            )
        await cp.call(call.Authorize(id_tag=CARD))
    ocmf = f'OCMF|{{"ID":"{CARD}","RD":[{{"RV":1.022}}]}}|{{"SD":"3045"}}'
    async with server.ctx.db() as db, db.begin():
        db.add(
            MeterValue(
                station_id="EXP-1", session_id=session_id, evse_number=1, connector_number=1,
                timestamp=base + timedelta(minutes=120), measurand="Energy.Active.Import.Register",
                unit="kWh", format="SignedData", value=ocmf,
            )
        )  # fmt: skip
    return session_id


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- every kind, every format -------------------------------------------------------------------


async def test_every_kind_round_trips_in_every_format(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await history(server, api, ocpp_url)
    listed = await api.get("/api/exports")
    assert listed.status_code == 200, listed.text
    documented = {k["kind"]: k for k in listed.json()}
    assert list(documented) == list(KINDS)
    for kind in KINDS.values():
        columns = documented[kind.name]["columns"]
        assert [c["name"] for c in columns] == kind.names
        assert all(c["description"] and c["type"] in {t.value for t in ColumnType} for c in columns)

    for name in KINDS:
        expected = await table_count(server, name)
        assert expected > 0, f"the scenario made no {name}"
        counted = await api.get(f"/api/exports/{name}/count")
        assert counted.json() == {"kind": name, "rows": expected}
        for fmt in FORMATS:
            response = await download(api, name, {}, format=fmt)
            records = parse(fmt, response.content)
            # the export's own audit entries come after the first audit_log export began
            assert len(records) == expected or (name == "audit_log" and len(records) >= expected), (name, fmt)
            assert list(records[0]) == KINDS[name].names, (name, fmt)
            disposition = response.headers["content-disposition"]
            # named by what it holds: everything up to the moment it was taken
            assert re.fullmatch(
                rf'attachment; filename="stekker-{name}-all-to-\d{{8}}T\d{{6}}Z\.{fmt}"', disposition
            )
            assert response.headers["x-pseudonymised"] == "false"  # the open API's caller is admin
            ids = [int(r["id"]) for r in records]
            assert ids == sorted(set(ids))

    # Parquet: typed columns a researcher can compute with
    table = pq.read_table(io.BytesIO((await download(api, "cdrs", {}, format="parquet")).content))
    assert table.schema.field("total_cost_incl_vat").type == pa.decimal128(14, 4)
    assert table.schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("total_energy_wh").type == pa.int64()
    assert table.schema.field("total_energy_wh").metadata[b"description"] == b"Energy billed (Wh)."
    assert table.schema.metadata[b"stekker.kind"] == b"cdrs"
    [cdr] = table.to_pylist()
    assert str(cdr["total_cost_incl_vat"]) == "10.4100" and cdr["total_energy_wh"] == 22_000
    assert json.loads(cdr["ocpi_cdr"])["cdr_token"]["uid"] == CARD
    sessions = pq.read_table(io.BytesIO((await download(api, "sessions", {}, format="parquet")).content))
    assert sessions.schema.field("offline").type == pa.bool_()
    assert sessions.to_pylist()[0]["start_time"].tzinfo is not None

    # JSON lines keep exact amounts as text and nested JSON as objects; CSV as text
    [line] = parse("jsonl", (await download(api, "cdrs", {}, format="jsonl")).content)
    assert line["total_cost_incl_vat"] == "10.4100" and line["ocpi_cdr"]["cdr_token"]["uid"] == CARD
    assert line["start_time"].endswith("Z")
    [row] = parse("csv", (await download(api, "cdrs", {}, format="csv")).content)
    assert row["total_cost_incl_vat"] == "10.4100" and json.loads(row["ocpi_cdr"])["total_energy"] == 22


async def test_csv_cells_never_run_as_spreadsheet_formulas(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    await history(server, api, ocpp_url)
    response = await download(
        api, "status_history", {}, format="csv", station="EXP-1", **{"from": "2026-01-01", "to": "2027-01-01"}
    )
    # named by what it holds: the kind, the station, the period
    assert response.headers["content-disposition"] == (
        'attachment; filename="stekker-status_history-station-EXP-1-20260101-to-20270101.csv"'
    )
    rows = parse("csv", response.content)
    infos = {r["info"] for r in rows if r["info"]}
    assert infos == {'\'=HYPERLINK("http://evil")', "-12.5", "'+31 20 555"}  # a number stays a number
    lines = parse("jsonl", (await download(api, "status_history", {}, format="jsonl")).content)
    assert '=HYPERLINK("http://evil")' in {r["info"] for r in lines}  # JSON lines: unchanged
    assert [csv_cell(t) for t in ("@SUM(A1)", "\tx", "-", "1e5", "-0.5", "ok")] == [
        "'@SUM(A1)",
        "'\tx",
        "'-",
        "1e5",
        "-0.5",
        "ok",
    ]


# --- pseudonymisation and roles -----------------------------------------------------------------


async def test_the_municipality_never_sees_a_token_uid(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    session_id = await history(server, api, ocpp_url)
    admin = await login(api, {}, "root", "admin")
    municipality = await login(api, admin, "gemeente", "municipality")
    operator = await login(api, admin, "ops", "operator")

    pseudonyms: set[str] = set()
    for name in KINDS:
        for fmt in FORMATS:
            response = await download(api, name, municipality, format=fmt)
            assert response.headers["x-pseudonymised"] == "true"
            assert CARD.encode() not in response.content and CONTRACT.encode() not in response.content
            for record in parse(fmt, response.content):
                values = texts(record)
                assert not any(CARD in v or CONTRACT in v for v in values), (name, fmt, record)
                pseudonyms |= {v for v in values if v.startswith(pseudonym.PREFIX)}
    # one card, one contract: one pseudonym each, the same in every kind and format
    hashed = pseudonym.Pseudonymiser(await pseudonym.installation_key(server.ctx))
    card, contract = hashed(CARD), hashed(CONTRACT)
    assert pseudonyms == {card, contract}

    [session] = parse("jsonl", (await download(api, "sessions", municipality, format="jsonl")).content)
    assert session["id"] == session_id and session["token_uid"] == card and session["token_id"] is None
    assert session["energy_wh"] == 22_000  # everything that is not about the driver is there
    [cdr] = parse("jsonl", (await download(api, "cdrs", municipality, format="jsonl")).content)
    assert cdr["token_uid"] == card and cdr["ocpi_cdr"]["cdr_token"] == {
        "uid": card,
        "type": "RFID",
        "contract_id": contract,
    }
    requests = parse(
        "jsonl", (await download(api, "authorization_requests", municipality, format="jsonl")).content
    )
    assert {r["token_uid"] for r in requests} == {card} and {r["kind"] for r in requests} >= {"Authorize"}
    signed = [
        m for m in parse("jsonl", (await download(api, "meter_values", municipality, format="jsonl")).content)
        if m["format"] == "SignedData"
    ]  # fmt: skip
    assert [m["value"] for m in signed] == [None]  # its signature covers the uid: withheld
    audit = parse("jsonl", (await download(api, "audit_log", municipality, format="jsonl")).content)
    [created] = [a for a in audit if a["action"] == "token.created"]
    assert created["detail"]["uid"] == card

    # the operator sees the uids, or pseudonyms when asked; the municipality cannot ask for uids
    raw = await download(api, "sessions", operator, format="csv")
    assert raw.headers["x-pseudonymised"] == "false" and CARD.encode() in raw.content
    hidden = await download(api, "sessions", operator, format="csv", pseudonymise="true")
    assert CARD.encode() not in hidden.content and card.encode() in hidden.content
    refused = await api.get("/api/exports/sessions", params={"pseudonymise": "false"}, headers=municipality)
    assert refused.status_code == 403 and "pseudonyms" in refused.json()["detail"]

    # the key was made once and kept: a restart or another process gives the same pseudonyms
    async with server.ctx.db() as db:
        assert len((await db.execute(select(InstallationSecret))).all()) == 1
    again = pseudonym.Pseudonymiser(await pseudonym.installation_key(server.ctx))
    assert again(CARD) == card


async def test_who_may_export_and_every_export_is_audited(server: Stekker, api: httpx.AsyncClient) -> None:
    admin = await login(api, {}, "root", "admin")
    municipality = await login(api, admin, "gemeente", "municipality")
    for role in ("helpdesk", "read-only"):
        other = await login(api, admin, role.replace("-", ""), role)
        for path in ("/api/exports", "/api/exports/sessions", "/api/exports/sessions/count"):
            response = await api.get(path, headers=other)
            assert response.status_code == 403 and f"role {role}" in response.json()["detail"]
    assert (await api.get("/api/exports/sessions")).status_code == 401
    operation = (await api.get("/openapi.json")).json()["paths"]["/api/exports/{kind}"]["get"]
    assert operation["x-roles"] == ["admin", "operator", "municipality"]
    assert set(operation["responses"]["200"]["content"]) >= {
        "text/csv; charset=utf-8",
        "application/x-ndjson",
    }

    response = await download(
        api, "audit_log", municipality, format="parquet", **{"from": "2020-01-01", "to": "2100-01-01"}
    )
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert response.headers["cache-control"] == "no-store"
    async with server.ctx.db() as db:
        entries = (
            (
                await db.execute(
                    select(AuditEntry).where(AuditEntry.action.like("export.%")).order_by(AuditEntry.id)
                )
            )
            .scalars()
            .all()
        )
    assert [(e.actor, e.action, e.result, e.object_id) for e in entries] == [
        ("user:gemeente", "export.started", "ok", "audit_log"),
        ("user:gemeente", "export.finished", "ok", "audit_log"),
    ]
    started, finished = entries[0].detail, entries[1].detail
    assert started == {
        "kind": "audit_log",
        "format": "parquet",
        "from": "2020-01-01T00:00:00+00:00",
        "to": "2100-01-01T00:00:00+00:00",
        "station": None,
        "location": None,
        "partner": None,
        "pseudonymised": True,
    }
    assert finished["rows"] == len(parse("parquet", response.content)) and finished["bytes"] == len(
        response.content
    )


async def test_a_download_broken_off_is_audited_as_aborted(server: Stekker, api: httpx.AsyncClient) -> None:
    """100,000 statuses (some 25 MB of JSON lines: more than the sockets buffer); the client
    reads the first bytes and hangs up."""
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    rows = [
        {"station_id": "AB", "evse_number": 1, "connector_number": 1, "status": "Available",
         "timestamp": t0 + timedelta(seconds=n), "received_at": t0}
        for n in range(100_000)
    ]  # fmt: skip
    async with server.ctx.db() as db, db.begin():
        await db.execute(insert(StatusHistory), rows)
    async with api.stream("GET", "/api/exports/status_history", params={"format": "jsonl"}) as response:
        assert response.status_code == 200
        async for _chunk in response.aiter_bytes():
            break

    async def finished() -> AuditEntry | None:
        async with server.ctx.db() as db:
            found: AuditEntry | None = await db.scalar(
                select(AuditEntry).where(AuditEntry.action == "export.finished")
            )
            return found

    entry = await eventually(finished)
    assert entry.result == "aborted" and entry.actor == "operator"
    assert 0 < entry.detail["rows"] < 100_000 and entry.detail["kind"] == "status_history"


# --- filters --------------------------------------------------------------------------------------


async def test_period_station_location_and_partner_filters(server: Stekker, api: httpx.AsyncClient) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    place = {
        "name": "Dam",
        "address": "Dam 1",
        "city": "Amsterdam",
        "latitude": "52.373169",
        "longitude": "4.892426",
    }
    created = await api.post("/api/locations", json=place)
    assert created.status_code == 201, created.text
    lid = created.json()["id"]
    for station, location in (("F-A", lid), ("F-B", lid), ("F-C", None)):
        made = await api.post(
            "/api/stations",
            json={"authentication": "none", "id": station, "location_id": location, "evse_count": 1},
        )
        assert made.status_code == 201, made.text
    async with server.ctx.db() as db, db.begin():
        partner = OcpiPartner(
            name="eMSP", status="registered", country_code="NL", party_id="ABC",
            incoming_token_sha256="0" * 64, created_by="test",
        )  # fmt: skip
        db.add(partner)
        await db.flush()
        roaming = Token(uid="ROAM-1", ocpi_partner_id=partner.id, country_code="NL", party_id="ABC")
        own = Token(uid="OWN-1")
        db.add_all([roaming, own])
        await db.flush()
        # statuses at the edges of March: [from, to) keeps the first, drops the last
        for station in ("F-A", "F-B", "F-C"):
            for moment in (
                t0 - timedelta(microseconds=1),
                t0,
                t0 + timedelta(days=30, hours=23, minutes=59),
                t0 + timedelta(days=31),
            ):
                db.add(
                    StatusHistory(
                        station_id=station,
                        evse_number=1,
                        connector_number=1,
                        status="Available",
                        timestamp=moment,
                    )
                )
        for n, (station, token) in enumerate((("F-A", roaming), ("F-B", own), ("F-C", roaming))):
            db.add(
                ChargingSession(
                    station_id=station,
                    evse_number=1,
                    connector_number=1,
                    start_key=f"k{n}",
                    token_uid=token.uid,
                    token_id=token.id,
                    auth_status="Accepted",
                    start_time=t0 + timedelta(days=n),
                )
            )
            db.add(
                AuthorizationRequest(
                    station_id=station,
                    token_uid=token.uid,
                    token_id=token.id,
                    kind="Authorize",
                    result="Accepted",
                    reason="known token",
                    requested_at=t0,
                )
            )
        partner_id = partner.id

    async def ids(kind: str, column: str, **params: Any) -> list[Any]:
        rows = parse("jsonl", (await download(api, kind, {}, format="jsonl", **params)).content)
        counted = (await api.get(f"/api/exports/{kind}/count", params=params)).json()["rows"]
        assert counted == len(rows), (kind, params)
        return sorted(r[column] for r in rows)

    march = {"from": "2026-03-01", "to": "2026-04-01"}
    assert await ids("status_history", "timestamp", **march, station="F-A") == [
        "2026-03-01T00:00:00Z",
        "2026-03-31T23:59:00Z",
    ]
    assert await ids(
        "status_history", "timestamp", station="F-A", **{"from": "2026-02-28T23:59:59.999999Z"}
    ) == [
        "2026-02-28T23:59:59.999999Z",
        "2026-03-01T00:00:00Z",
        "2026-03-31T23:59:00Z",
        "2026-04-01T00:00:00Z",
    ]
    # a time without an offset is UTC; an offset is converted
    assert (
        len(
            await ids(
                "status_history", "id", **{"from": "2026-03-01T01:00:00+01:00", "to": "2026-03-01T00:00:01"}
            )
        )
        == 3
    )
    assert await ids("status_history", "station_id", **march, location=lid) == ["F-A", "F-A", "F-B", "F-B"]
    assert await ids("sessions", "station_id", location=lid) == ["F-A", "F-B"]
    assert await ids("sessions", "station_id", partner=partner_id) == ["F-A", "F-C"]
    assert await ids("sessions", "station_id", partner=partner_id, location=lid) == ["F-A"]
    assert await ids("authorization_requests", "station_id", partner=partner_id) == ["F-A", "F-C"]
    sessions = parse("jsonl", (await download(api, "sessions", {}, format="jsonl")).content)
    assert {s["station_id"]: (s["partner_id"], s["location_id"]) for s in sessions} == {
        "F-A": (partner_id, lid),
        "F-B": (None, lid),
        "F-C": (partner_id, None),
    }
    assert await ids("sessions", "start_time", **{"from": "2026-03-02", "to": "2026-03-03"}) == [
        "2026-03-02T00:00:00Z"
    ]
    # the audit log by station: what was done to that station (here: its registration)
    audit = parse("jsonl", (await download(api, "audit_log", {}, format="jsonl", station="F-C")).content)
    assert audit and {(a["object_type"], a["object_id"]) for a in audit} == {("station", "F-C")}
    located = parse("jsonl", (await download(api, "audit_log", {}, format="jsonl", location=lid)).content)
    assert {a["object_id"] for a in located} == {str(lid), "F-A", "F-B"}


async def test_keyset_batches_read_every_row_once(server: Stekker) -> None:
    async with server.ctx.db() as db, db.begin():
        for n in range(23):
            db.add(StationEvent(station_id=f"S{n % 3}", kind="booted", detail={"n": n}))
    kind = KINDS["station_events"]
    writer = CsvWriter(kind.columns)
    body = b"".join(
        [c async for c in export_bytes(server.ctx.db, kind, ExportFilter(), writer, None, batch_size=5)]
    )
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [json.loads(r["detail"])["n"] for r in rows] == list(range(23))
    only = ExportFilter(station="S1")
    body = b"".join(
        [
            c
            async for c in export_bytes(
                server.ctx.db, kind, only, CsvWriter(kind.columns), None, batch_size=2
            )
        ]
    )
    assert [json.loads(r["detail"])["n"] for r in csv.DictReader(io.StringIO(body.decode()))] == list(
        range(1, 23, 3)
    )


# --- hostile and mistaken requests ----------------------------------------------------------------

HOSTILE: list[tuple[str, dict[str, Any], int, str]] = [
    ("bogus", {}, 404, "no export kind 'bogus'; the kinds are: sessions, cdrs"),
    ("x" * 64, {}, 404, "no export kind"),
    ("x" * 65, {}, 422, ""),
    ("sessions", {"format": "xml"}, 422, "format must be one of csv, jsonl, parquet, not 'xml'"),
    ("sessions", {"format": "x" * 17}, 422, ""),
    ("sessions", {"from": "yesterday"}, 422, "from must be a date (2026-01-01) or a time"),
    ("sessions", {"from": "2026-13-01"}, 422, "from must be a date"),
    ("sessions", {"to": "2026-02-30"}, 422, "to must be a date"),
    ("sessions", {"from": "2026-02-01", "to": "2026-01-01"}, 422, "must be before to"),
    ("sessions", {"from": "2026-02-01", "to": "2026-02-01"}, 422, "must be before to"),
    ("sessions", {"from": "0001-01-01T00:00:00+01:00"}, 422, "from must be a date"),
    ("sessions", {"to": "9999-12-31T23:59:59-01:00"}, 422, "to must be a date"),
    ("sessions", {"from": "9" * 41}, 422, ""),
    ("sessions", {"from": "2026-01-01\x00"}, 422, "from must be a date"),
    ("sessions", {"location": "-1"}, 422, "location must be an id from 1 to 2147483647"),
    ("sessions", {"location": "0"}, 422, "location must be an id"),
    ("sessions", {"location": "99999999999999999999999"}, 422, "location must be an id"),
    ("sessions", {"location": "one"}, 422, ""),
    ("sessions", {"partner": str(2**63)}, 422, "partner must be an id"),
    ("sessions", {"location": "7"}, 404, "no location 7"),
    ("sessions", {"partner": "7"}, 404, "no OCPI partner 7"),
    ("sessions", {"station": "NOPE"}, 404, "no station 'NOPE'"),
    ("sessions", {"station": "../etc/passwd"}, 422, "station must be a station id"),
    ("sessions", {"station": "A B"}, 422, "station must be a station id"),
    ("sessions", {"station": "<script>"}, 422, "station must be a station id"),
    ("sessions", {"station": "x" * 101}, 422, ""),
    ("sessions", {"pseudonymise": "maybe"}, 422, ""),
    (
        "meter_values",
        {"partner": "1"},
        422,
        "the partner filter applies to sessions, cdrs, authorization_requests",
    ),
    ("status_history", {"partner": "1"}, 422, "not to status_history"),
]


async def test_hostile_and_mistaken_requests_get_a_clear_4xx(api: httpx.AsyncClient) -> None:
    for kind, params, status, message in HOSTILE:
        for path in (f"/api/exports/{kind}", f"/api/exports/{kind}/count"):
            if "format" in params or "pseudonymise" in params:
                if path.endswith("/count"):
                    continue
            response = await api.get(path, params=params)
            assert response.status_code == status, (path, params, response.text)
            detail = response.json()["detail"]
            assert detail and (message in str(detail)), (path, params, detail)


def test_requests_are_checked_in_the_service() -> None:
    request = parse_request(
        "meter_values", start="2026-01-01", end="2026-01-01T12:00:00+01:00", format="PARQUET"
    )
    assert request.wanted.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert request.wanted.end == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert request.format.value == "parquet"
    with pytest.raises(Missing):
        parse_request("passwords")
    with pytest.raises(Invalid, match="location"):
        parse_request("sessions", location=2**31)


# --- pseudonyms ------------------------------------------------------------------------------------


def test_pseudonyms_are_keyed_stable_and_found_in_any_shape() -> None:
    one, same, other = (pseudonym.Pseudonymiser(k) for k in (b"k" * 32, b"k" * 32, b"q" * 32))
    assert one("04A2") == same("04A2") != other("04A2")
    assert one("04A2").startswith("p:") and len(one("04A2")) == 2 + pseudonym.HEX_DIGITS
    assert one("04A2") != one("04a2")  # uids are compared exactly, as stations send them
    detail = {
        "args": {"token_uid": "CARD-1", "evse_number": 1},
        "idToken": {"idToken": "EMA-2", "type": "eMAID"},
        "token": {"uid": "CARD-3", "contract_id": "NL-X-1", "visual_number": "1234-5678"},
        "additionalInfo": [{"additionalIdToken": "ADD-4", "type": "x"}],
        "parentIdTag": "GROUP-5",
        "reason": "token CARD-1 is blocked; CARD-3 too",
        "count": 3,
        "uid": 42,  # not text: not an identifier
    }
    found: dict[str, str] = {}
    one.collect(detail, found)
    assert set(found) == {"CARD-1", "EMA-2", "CARD-3", "NL-X-1", "1234-5678", "ADD-4", "GROUP-5"}
    clean = one.scrub(detail, found)
    assert clean["args"] == {"token_uid": one("CARD-1"), "evse_number": 1}
    assert clean["idToken"] == {"idToken": one("EMA-2"), "type": "eMAID"}
    assert clean["reason"] == f"token {one('CARD-1')} is blocked; {one('CARD-3')} too"
    assert clean["count"] == 3 and clean["uid"] == 42
    assert not [t for t in texts(clean) if any(raw in t for raw in found)]
    # a short uid is replaced where it is a value, not searched for in text
    assert one.scrub_text("at 1 o'clock", {"1": one("1")}) == "at 1 o'clock"
    # one pass: a pseudonym just written is never searched again, even when another uid is part of it
    inside = one("AB12")[2:6]
    found = {"AB12": one("AB12"), inside: one(inside)}
    assert one.scrub_text(f"AB12 and {inside}", found) == f"{one('AB12')} and {one(inside)}"


def test_every_personal_column_is_marked() -> None:
    """The columns that hold a token uid or contract id are the ones a pseudonymised export replaces."""
    marked = {
        (k.name, c.name) for k in KINDS.values() for c in k.columns if c.personal is Personal.IDENTIFIER
    }
    assert marked == {
        ("sessions", "token_uid"),
        ("sessions", "stop_token_uid"),
        ("sessions", "energy_contract_id"),
        ("cdrs", "token_uid"),
        ("cdrs", "energy_contract_id"),
        ("authorization_requests", "token_uid"),
    }
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Exporting historical data", 1)[1].split("\n## ", 1)[0]
    for kind in KINDS.values():
        assert f"`{kind.name}`" in section
        for column in kind.columns:
            assert f"`{column.name}`" in section, (kind.name, column.name)


# --- the command line -------------------------------------------------------------------------------


async def test_cli_exports_with_pseudonyms_unless_told(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str, cli: Any, tmp_path: Path
) -> None:
    await history(server, api, ocpp_url)
    listed = await cli("export", "columns")
    assert listed.exit_code == 0, listed.output
    assert all(name in listed.output for name in KINDS)
    columns = await cli("export", "columns", "sessions")
    assert columns.exit_code == 0 and "token_uid" in columns.output and "identifier" in columns.output

    out = tmp_path / "sessions.csv"
    done = await cli("export", "sessions", "--from", "2020-01-01", "--format", "csv", "--out", str(out))
    assert done.exit_code == 0, done.output
    assert "1 row" in done.output and "pseudonymised" in done.output
    [row] = list(csv.DictReader(out.open(newline="")))
    assert row["token_uid"].startswith("p:") and CARD not in out.read_text()

    exists = await cli("export", "sessions", "--out", str(out))
    assert exists.exit_code != 0 and "exists" in exists.output
    revealed = await cli("export", "sessions", "--out", str(out), "--reveal-tokens", "--force")
    assert revealed.exit_code == 0, revealed.output
    assert [r["token_uid"] for r in csv.DictReader(out.open(newline=""))] == [CARD]

    parquet = tmp_path / "values.parquet"
    done = await cli(
        "export", "meter_values", "--format", "parquet", "--out", str(parquet), "--station", "EXP-1"
    )
    assert done.exit_code == 0, done.output
    assert pq.read_table(parquet).num_rows == await table_count(server, "meter_values")

    bad = await cli("export", "sessions", "--from", "soon", "--out", str(tmp_path / "x.csv"))
    assert bad.exit_code == 1 and "from must be a date" in bad.output
    assert not (tmp_path / "x.csv").exists()


async def test_an_empty_export_is_a_valid_file_in_every_format(server: Stekker) -> None:
    kind = KINDS["cdrs"]
    nothing = ExportFilter(station="NOBODY")
    for fmt, writer in (("csv", CsvWriter), ("jsonl", JsonLinesWriter), ("parquet", ParquetWriter)):
        body = b"".join(
            [c async for c in export_bytes(server.ctx.db, kind, nothing, writer(kind.columns), None)]
        )
        assert parse(fmt, body) == []
        if fmt == "csv":
            assert body.decode().splitlines() == [",".join(kind.names)]
        if fmt == "parquet":
            table = pq.read_table(io.BytesIO(body))
            assert table.num_rows == 0 and table.schema.names == kind.names
