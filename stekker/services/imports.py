"""Bulk import of stations and tokens from CSV or JSON, with a dry run that reports what
would change, row by row, before anything does.

A file is parsed into rows, every row is checked against the database as it is, and the
report says per row: create, update (each changed field old → new), unchanged, or error
(with the line and what is wrong). Applying re-plans inside one transaction and writes
everything or nothing; a file with any error applies nothing.

An empty cell means "leave as it is": an import never clears a field.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.db.models import (
    ChargingStation,
    Connector,
    Evse,
    Location,
    StationGroup,
    StationGroupMember,
    Token,
    TokenStatus,
)
from stekker.domain import inventory_rules as rules
from stekker.domain.identifiers import evse_emi3_id
from stekker.domain.passwords import hash_password, verify_password
from stekker.domain.station_auth import NO_AUTHENTICATION_PROFILE
from stekker.services import users
from stekker.services.audit import audit
from stekker.services.context import ServiceContext
from stekker.services.inventory import (
    InvalidSecurityProfile,
    audit_no_authentication,
    credentials_of,
    group_name_problem,
    jsonable,
)
from stekker.services.stations import ensure_connector, ensure_evse
from stekker.services.tokens import energy_contract_problem, next_list_version

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000

STATION_COLUMNS = {
    "id": "the station's OCPP identity (required)",
    "location_id": "id of an existing location",
    "location": "name of an existing location (instead of location_id)",
    "evse_count": "EVSEs 1..n to register (0-64; never fewer than it has)",
    "security_profile": "0-3, the lowest OCPP security profile it may connect at",
    "registration_status": "Accepted, Pending or Rejected",
    "groups": "group names separated by ';': the station's groups become exactly these (new ones are made)",
    "password": "Basic-auth password, 16-40 characters (stored hashed, never shown)",
    "authentication": "none: connects without credentials (profile 0; anyone knowing its id can connect "
    "as it); a new station needs this, a password or security_profile 3",
    "notes": "free text for the operator",
}
TOKEN_COLUMNS = {
    "uid": "what the station sends as idTag / idToken (required)",
    "country_code": "ISO 3166 alpha-2 of the issuer, default NL",
    "party_id": "the issuer's party id, default STK",
    "type": "RFID, APP_USER, AD_HOC_USER or OTHER",
    "status": "active, blocked or retired",
    "expires_at": "ISO 8601 with an offset (2027-01-01T00:00:00Z) or a date (midnight UTC)",
    "group_id": "1.6 parentIdTag, up to 20 characters",
    "contract_id": "eMA id of the driver's contract",
    "visual_number": "the number printed on the card",
    "issuer": "who issued the token",
    "allow_concurrent": "true or false",
    "energy_supplier": "the driver's electricity supplier, up to 64 characters",
    "energy_contract_id": "the driver's contract id at that supplier, up to 64 characters",
}
_ALIASES = {
    "station_id": "id",
    "station": "id",
    "location_name": "location",
    "token_uid": "uid",
    "id_tag": "uid",
}
_FORMULA = re.compile(r"^[=+@\t\r]|^-(?![0-9.,]*$)")
_BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "ja": True,
    "false": False,
    "0": False,
    "no": False,
    "nee": False,
}


class ImportRejected(ValueError):
    """The file as a whole cannot be read: encoding, shape, header."""


class ImportTooLarge(ValueError):
    """The file is over the size or row limit."""


class ImportHasErrors(ValueError):
    """An apply was asked of a file with row errors; nothing was applied."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{report.totals['error']} row(s) have errors; nothing was applied")
        self.report = report


@dataclass
class RowReport:
    """The verdict on one row. `line` is the file line the row starts on (CSV, header is line 1)
    or the item's position (JSON, from 1)."""

    line: int
    key: str
    action: str = "unchanged"  # create | update | unchanged | error
    changes: dict[str, list[Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    kind: str
    dry_run: bool
    applied: bool = False
    rows: list[RowReport] = field(default_factory=list)
    new_groups: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        counts = {"rows": len(self.rows), "create": 0, "update": 0, "unchanged": 0, "error": 0}
        for row in self.rows:
            counts[row.action] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dry_run": self.dry_run,
            "applied": self.applied,
            "totals": self.totals,
            "new_groups": self.new_groups,
            "rows": [
                {"line": r.line, "key": r.key, "action": r.action, "changes": r.changes, "errors": r.errors}
                for r in self.rows
            ],
        }


# --- reading the file -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    values: dict[str, str]  # column → stripped text; empty cells are left out
    problems: tuple[str, ...] = ()


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError:
        # Excel's plain "CSV" is Windows-1252 in Western Europe; every byte decodes, and the
        # field checks below catch anything that is not what it should be.
        return body.decode("cp1252", errors="replace")


def _column(name: str, known: dict[str, str]) -> str:
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in known:
        raise ImportRejected(f"unknown column {name.strip()!r}; the columns are: {', '.join(known)}")
    return key


def _cells(line: int, pairs: Iterable[tuple[str, str]]) -> Row:
    values: dict[str, str] = {}
    problems: list[str] = []
    for column, raw in pairs:
        value = raw.strip()
        if not value:
            continue
        if _FORMULA.match(value) or any(ord(c) < 32 for c in value):
            problems.append(
                f"{column}: {value[:40]!r} looks like a spreadsheet formula or holds control characters"
            )
            continue
        values[column] = value
    return Row(line, values, tuple(problems))


def _delimiter(header: str) -> str:
    # Dutch (and most continental) Excel exports separate with ';' since ',' is the decimal mark.
    counts = {d: header.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def parse_csv(body: bytes, known: dict[str, str]) -> list[Row]:
    text = _decode(body)
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRejected("the file is empty: give a header line and rows") from None
    except csv.Error as exc:
        raise ImportRejected(f"line 1: {exc}") from None
    columns = [_column(h, known) for h in header]
    doubled = sorted({c for c in columns if columns.count(c) > 1})
    if doubled:
        raise ImportRejected(f"column(s) given twice: {', '.join(doubled)}")
    rows: list[Row] = []
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ImportRejected(f"line {line}: {exc} (check the quotes)") from None
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise ImportTooLarge(f"more than {MAX_ROWS} rows: split the file")
        row = _cells(line, zip(columns, cells, strict=False))
        if len(cells) > len(columns):
            row = Row(line, row.values, (*row.problems, f"{len(cells)} values but {len(columns)} columns"))
        rows.append(row)
    return rows


def parse_json(body: bytes, known: dict[str, str]) -> list[Row]:
    try:
        items = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportRejected(f"not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise ImportRejected("the JSON must be an array of objects, one per row")
    if len(items) > MAX_ROWS:
        raise ImportTooLarge(f"more than {MAX_ROWS} rows: split the file")
    rows: list[Row] = []
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            rows.append(Row(position, {}, ("each item must be an object",)))
            continue
        pairs: list[tuple[str, str]] = []
        problems: list[str] = []
        for name, value in item.items():
            column = _column(str(name), known)
            if isinstance(value, bool):
                pairs.append((column, "true" if value else "false"))
            elif value is None or isinstance(value, (str, int, float)):
                pairs.append((column, "" if value is None else str(value)))
            elif isinstance(value, list) and all(isinstance(v, str) for v in value) and column == "groups":
                pairs.append((column, ";".join(value)))
            else:
                problems.append(f"{column}: must be a text or a number")
        row = _cells(position, pairs)
        rows.append(Row(position, row.values, (*row.problems, *problems)))
    return rows


def parse(body: bytes, media_type: str, known: dict[str, str]) -> list[Row]:
    if len(body) > MAX_BYTES:
        raise ImportTooLarge(f"the file is over {MAX_BYTES // (1024 * 1024)} MB: split it")
    if media_type == "json":
        return parse_json(body, known)
    return parse_csv(body, known)


def _integer(row: RowReport, name: str, text: str, low: int, high: int) -> int | None:
    try:
        number = int(text)
    except ValueError:
        row.errors.append(f"{name} must be a whole number, not {text!r}")
        return None
    if not low <= number <= high:
        row.errors.append(f"{name} must be from {low} to {high}, not {number}")
        return None
    return number


def _note_changes(row: RowReport, current: Any | None, wanted: dict[str, Any]) -> None:
    for name, new in wanted.items():
        old = None if current is None else getattr(current, name)
        if old != new:
            row.changes[name] = [jsonable(old), jsonable(new)]


def _duplicates(rows: list[Row], key: Callable[[Row], str | None], what: str) -> dict[int, str]:
    """Line → message for every row whose key appeared on an earlier line."""
    seen: dict[str, int] = {}
    found: dict[int, str] = {}
    for row in rows:
        k = key(row)
        if k is None:
            continue
        if k in seen:
            found[row.line] = f"duplicate of line {seen[k]}: one row per {what}"
        else:
            seen[k] = row.line
    return found


async def _in_chunks(db: AsyncSession, query: Callable[[list[Any]], Any], keys: list[Any]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(keys), 1000):  # stay far below the databases' bound-parameter limits
        out.extend((await db.execute(query(keys[start : start + 1000]))).all())
    return out


# --- stations ---------------------------------------------------------------------------------


@dataclass
class _StationPlan:
    row: RowReport
    station_id: str
    fields: dict[str, Any]  # column values for ChargingStation
    evse_count: int | None
    groups: list[str] | None
    password: str | None


@dataclass
class _StationState:
    stations: dict[str, ChargingStation]
    evse_counts: dict[str, int]
    locations: dict[int, Location]
    groups: dict[str, int]
    memberships: dict[str, list[str]]


async def _station_state(db: AsyncSession, ids: list[str]) -> _StationState:
    stations = {
        s.id: s
        for (s,) in await _in_chunks(
            db, lambda k: select(ChargingStation).where(ChargingStation.id.in_(k)), ids
        )
    }
    counts = dict(
        await _in_chunks(
            db,
            lambda k: (
                select(Evse.station_id, func.count()).where(Evse.station_id.in_(k)).group_by(Evse.station_id)
            ),
            ids,
        )
    )
    locations = {loc.id: loc for loc in (await db.execute(select(Location))).scalars()}
    groups = {g.name: g.id for g in (await db.execute(select(StationGroup))).scalars()}
    memberships: dict[str, list[str]] = {}
    for station_id, name in await _in_chunks(
        db,
        lambda k: (
            select(StationGroupMember.station_id, StationGroup.name)
            .join(StationGroup, StationGroup.id == StationGroupMember.group_id)
            .where(StationGroupMember.station_id.in_(k))
        ),
        ids,
    ):
        memberships.setdefault(station_id, []).append(name)
    return _StationState(stations, counts, locations, groups, memberships)


def _plan_station(
    row: Row, state: _StationState, password_same: dict[str, bool], duplicate: str | None
) -> _StationPlan:
    v = row.values
    station_id = v.get("id", "")
    report = RowReport(row.line, station_id, errors=list(row.problems))
    if duplicate:
        report.errors.append(duplicate)
    if not station_id:
        report.errors.append("id is required")
    elif not re.match(rules.STATION_ID, station_id):
        report.errors.append(
            f"id {station_id[:60]!r} is not a station id (letters, digits, . _ : * -; up to 48)"
        )
    current = state.stations.get(station_id)
    if current is not None and current.retired_at is not None:
        report.errors.append(f"station {station_id} is retired: bring it back first (POST .../unretire)")
    fields: dict[str, Any] = {}
    location_id: int | None = None
    if "location_id" in v:
        location_id = _integer(report, "location_id", v["location_id"], 1, 2**31 - 1)
        if location_id is not None and location_id not in state.locations:
            report.errors.append(f"no location {location_id}")
            location_id = None
    if "location" in v:
        named = [
            loc.id for loc in state.locations.values() if loc.name == v["location"] and loc.retired_at is None
        ]
        if not named:
            report.errors.append(f"no location named {v['location']!r}")
        elif len(named) > 1:
            report.errors.append(f"{len(named)} locations are named {v['location']!r}: use location_id")
        elif location_id is not None and location_id != named[0]:
            report.errors.append(f"location {v['location']!r} is not location_id {location_id}")
        else:
            location_id = named[0]
    if location_id is not None:
        if state.locations[location_id].retired_at is not None:
            report.errors.append(f"location {location_id} is retired")
        fields["location_id"] = location_id
    if "security_profile" in v:
        fields["security_profile"] = _integer(report, "security_profile", v["security_profile"], 0, 3)
    if "registration_status" in v:
        status = v["registration_status"].capitalize()
        if status not in ("Accepted", "Pending", "Rejected"):
            report.errors.append(
                f"registration_status must be Accepted, Pending or Rejected, not {v['registration_status']!r}"
            )
        fields["registration_status"] = status
    if "notes" in v:
        if len(v["notes"]) > 2000:
            report.errors.append("notes has more than 2000 characters")
        fields["notes"] = v["notes"]
    evse_count = None
    if "evse_count" in v:
        evse_count = _integer(report, "evse_count", v["evse_count"], 0, 64)
        have = state.evse_counts.get(station_id, 0)
        if evse_count is not None and evse_count < have:
            report.errors.append(
                f"evse_count {evse_count} is below the {have} EVSEs registered: remove EVSEs through the API"
            )
    groups = None
    if "groups" in v:
        groups = sorted({g.strip() for g in v["groups"].split(";") if g.strip()})
        for name in groups:
            problem = group_name_problem(name)
            if problem is not None:
                report.errors.append(f"group {name[:40]!r}: {problem}")
    password = v.get("password")
    if password is not None and not 16 <= len(password) <= 40:
        report.errors.append("password must have 16 to 40 characters")
    no_authentication = False
    if "authentication" in v:
        no_authentication = v["authentication"].strip().lower() == "none"
        if not no_authentication:
            report.errors.append(
                f"authentication can only be none (empty: leave it), not {v['authentication'][:20]!r}"
            )
    has_password = password is not None or (current is not None and current.password_hash is not None)
    profile = fields.get("security_profile", None if current is None else current.security_profile)
    if current is None or {"password", "security_profile", "authentication"} & v.keys():
        try:  # a new station needs credentials, or the explicit "none"; so does a change of them
            profile = credentials_of(profile, has_password, no_authentication)
        except InvalidSecurityProfile as exc:
            report.errors.append(str(exc))
        else:
            if no_authentication:
                fields["security_profile"] = profile
    if report.errors:
        report.action = "error"
        return _StationPlan(report, station_id, fields, evse_count, groups, password)
    _note_changes(report, current, fields)
    if evse_count is not None and evse_count != state.evse_counts.get(station_id, 0):
        report.changes["evse_count"] = [state.evse_counts.get(station_id, 0), evse_count]
    if groups is not None and groups != sorted(state.memberships.get(station_id, [])):
        report.changes["groups"] = [";".join(sorted(state.memberships.get(station_id, []))), ";".join(groups)]
    if password is not None and not password_same.get(station_id, False):
        report.changes["password"] = ["(set)" if current and current.password_hash else None, "(changed)"]
    report.action = "create" if current is None else ("update" if report.changes else "unchanged")
    return _StationPlan(report, station_id, fields, evse_count, groups, password)


async def _check_new_evse_ids(
    db: AsyncSession, prefix: str, plans: list[_StationPlan], state: _StationState
) -> None:
    """The generated eMI3 ids of EVSEs an import would add must be free (ids like CP-1 and
    CP1 make the same one): a row error, not a failed transaction."""
    new: dict[str, _StationPlan] = {}
    for p in plans:
        if p.row.action == "error" or not p.evse_count:
            continue
        for number in range(state.evse_counts.get(p.station_id, 0) + 1, p.evse_count + 1):
            evse_id = evse_emi3_id(prefix, p.station_id, number)
            other = new.setdefault(evse_id, p)
            if other is not p:
                _fail(
                    p,
                    f"its EVSE id {evse_id} is also that of {other.station_id} (line {other.row.line})",
                )
    if not new:
        return
    taken = await _in_chunks(
        db, lambda k: select(Evse.evse_id, Evse.station_id).where(Evse.evse_id.in_(k)), list(new)
    )
    for evse_id, holder in taken:
        if holder != new[evse_id].station_id:
            _fail(new[evse_id], f"EVSE id {evse_id} is already used by station {holder}")


def _fail(plan: _StationPlan, message: str) -> None:
    plan.row.errors.append(message)
    plan.row.action = "error"
    plan.row.changes = {}


# Every key a new station row has, so one executemany covers rows that set different columns.
_NEW_STATION: dict[str, Any] = {
    "location_id": None,
    "registration_status": "Accepted",
    "security_profile": None,
    "notes": None,
    "password_hash": None,
}


async def _insert_stations(
    db: AsyncSession, prefix: str, stations: list[dict[str, Any]], plans: list[_StationPlan], now: datetime
) -> None:
    """New stations, their EVSEs and each EVSE's default connector, in three executemany
    statements (measured: the ORM one object at a time took over a minute for 10,000)."""
    if not stations:
        return
    await db.execute(insert(ChargingStation), stations)
    new = {s["id"] for s in stations}
    evses = [
        {
            "station_id": p.station_id,
            "evse_number": n,
            "evse_id": evse_emi3_id(prefix, p.station_id, n),
            "created_at": now,
        }
        for p in plans
        if p.station_id in new
        for n in range(1, (p.evse_count or 0) + 1)
    ]
    if not evses:
        return
    await db.execute(insert(Evse), evses)
    keys = await _in_chunks(db, lambda k: select(Evse.id).where(Evse.station_id.in_(k)), sorted(new))
    await db.execute(insert(Connector), [{"evse_id": pk, "connector_number": 1} for (pk,) in keys])


async def _password_checks(ctx: ServiceContext, rows: list[Row]) -> dict[str, bool]:
    """Which given passwords equal the stored ones (so a re-import is "unchanged"), and
    hashes for the rest. scrypt is slow on purpose: run it in threads, a few at a time."""
    given = {
        r.values["id"]: r.values["password"] for r in rows if "id" in r.values and "password" in r.values
    }
    if not given:
        return {}
    async with ctx.db() as db:
        stored = dict(
            await _in_chunks(
                db,
                lambda k: select(ChargingStation.id, ChargingStation.password_hash).where(
                    ChargingStation.id.in_(k)
                ),
                list(given),
            )
        )
    limit = asyncio.Semaphore(os.cpu_count() or 2)

    async def check(station_id: str, password: str) -> tuple[str, bool]:
        digest = stored.get(station_id)
        if digest is None:
            return station_id, False
        if ctx.credentials.known(station_id, digest, password):
            return station_id, True
        async with limit:
            return station_id, await asyncio.to_thread(verify_password, password, digest)

    return dict(await asyncio.gather(*(check(s, p) for s, p in given.items())))


async def _hashes(passwords: dict[str, str]) -> dict[str, str]:
    limit = asyncio.Semaphore(os.cpu_count() or 2)

    async def one(station_id: str, password: str) -> tuple[str, str]:
        async with limit:
            return station_id, await asyncio.to_thread(hash_password, password)

    return dict(await asyncio.gather(*(one(s, p) for s, p in passwords.items())))


def _station_key(row: Row) -> str | None:
    return row.values.get("id")


#: Changes after which a station's cached (verified) credentials are dropped everywhere.
_CREDENTIALS = frozenset({"password", "security_profile"})


async def import_stations(ctx: ServiceContext, actor: str, rows: list[Row], dry_run: bool) -> ImportReport:
    """Plan (and unless `dry_run`, apply) a stations import."""
    same = await _password_checks(ctx, rows)
    duplicates = _duplicates(rows, _station_key, "station id")
    ids = [r.values["id"] for r in rows if "id" in r.values]

    async def plan(db: AsyncSession) -> tuple[ImportReport, list[_StationPlan], _StationState]:
        state = await _station_state(db, ids)
        plans = [_plan_station(r, state, same, duplicates.get(r.line)) for r in rows]
        await _check_new_evse_ids(db, ctx.settings.evse_id_prefix, plans, state)
        report = ImportReport("stations", dry_run, rows=[p.row for p in plans])
        wanted = {g for p in plans if p.groups for g in p.groups}
        report.new_groups = sorted(wanted - set(state.groups))
        return report, plans, state

    if dry_run:
        async with ctx.db() as db:
            report, _, _ = await plan(db)
        return report
    async with ctx.db() as db:
        report, plans, _ = await plan(db)
    if report.totals["error"]:
        raise ImportHasErrors(report)
    hashes = await _hashes(
        {p.station_id: p.password for p in plans if p.password and not same.get(p.station_id)}
    )

    async def job(db: AsyncSession) -> ImportReport:
        report, plans, state = await plan(db)  # again, on the state this transaction sees
        if report.totals["error"]:
            raise ImportHasErrors(report)
        now = ctx.now()
        for name in report.new_groups:
            group = StationGroup(name=name, created_at=now)
            db.add(group)
            await db.flush()
            state.groups[name] = group.id
        joins: list[dict[str, Any]] = []
        leaves: dict[int, list[str]] = {}
        created: list[dict[str, Any]] = []
        for p in plans:
            if p.row.action == "unchanged":
                continue
            station = state.stations.get(p.station_id)
            if station is None:  # new stations go in with executemany below, not one by one
                created.append({**_NEW_STATION, **p.fields, "id": p.station_id, "created_at": now})
                created[-1]["password_hash"] = hashes.get(p.station_id)
            else:
                for name, value in p.fields.items():
                    setattr(station, name, value)
                if p.station_id in hashes:
                    station.password_hash = hashes[p.station_id]
            if p.groups is not None and "groups" in p.row.changes:
                want = {state.groups[g] for g in p.groups}
                have = {state.groups[g] for g in state.memberships.get(p.station_id, [])}
                joins.extend({"group_id": g, "station_id": p.station_id} for g in want - have)
                for g in have - want:
                    leaves.setdefault(g, []).append(p.station_id)
        await db.flush()
        await _insert_stations(db, ctx.settings.evse_id_prefix, created, plans, now)
        for p in plans:
            if p.row.action != "unchanged" and p.station_id in state.stations and p.evse_count:
                for number in range(1, p.evse_count + 1):
                    await ensure_connector(db, await ensure_evse(db, ctx, p.station_id, number), 1)
        for group_id, station_ids in leaves.items():
            await db.execute(
                delete(StationGroupMember).where(
                    StationGroupMember.group_id == group_id, StationGroupMember.station_id.in_(station_ids)
                )
            )
        if joins:
            await db.execute(insert(StationGroupMember), joins)
        totals = report.totals
        audit(
            db,
            actor=actor,
            action="import.stations.applied",
            object_type="import",
            object_id="stations",
            at=now,
            totals=totals,
            created=[r.key for r in report.rows if r.action == "create"],
            updated=[r.key for r in report.rows if r.action == "update"],
            new_groups=report.new_groups,
        )
        for p in plans:  # the choice of no authentication gets an entry per station, as in the API
            chosen = p.fields.get("security_profile") == NO_AUTHENTICATION_PROFILE
            if chosen and (p.row.action == "create" or "security_profile" in p.row.changes):
                audit_no_authentication(db, ctx, actor, p.station_id)
        report.applied = True
        return report

    report = await ctx.write(job)
    for row in report.rows:
        if row.action != "unchanged":
            ctx.directory.forget(row.key)
    # a station's cached credentials must not outlive a new password or security profile, in
    # any process: one station is named, several empty every process's whole cache
    renewed = [r.key for r in report.rows if r.action == "update" and _CREDENTIALS & r.changes.keys()]
    if len(renewed) == 1:
        await users.auth_changed(ctx, "station", station_id=renewed[0])
    elif renewed:
        await users.auth_changed(ctx, "station")
    await ctx.bus.publish(Event("inventory.imported", {"kind": "stations", "totals": report.totals}))
    return report


# --- tokens -----------------------------------------------------------------------------------


def _token_key(row: Row) -> str | None:
    uid = row.values.get("uid")
    if uid is None:
        return None
    return f"{row.values.get('country_code', 'NL')}|{row.values.get('party_id', 'STK')}|{uid}"


def _expiry(report: RowReport, text: str) -> datetime | None:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        report.errors.append(f"expires_at must be ISO 8601, e.g. 2027-01-01T00:00:00Z, not {text[:40]!r}")
        return None
    if moment.tzinfo is None:
        report.errors.append(f"expires_at needs a UTC offset, e.g. {text}Z")
        return None
    return moment.astimezone(UTC)


def _plan_token(
    row: Row, tokens: dict[tuple[str, str, str], Token], duplicate: str | None
) -> tuple[RowReport, dict[str, Any]]:
    v = row.values
    uid = v.get("uid", "")
    country, party = v.get("country_code", "NL"), v.get("party_id", "STK")
    report = RowReport(row.line, uid, errors=list(row.problems))
    if duplicate:
        report.errors.append(duplicate)
    if not uid:
        report.errors.append("uid is required")
    elif not re.match(rules.TOKEN_UID, uid):
        report.errors.append(f"uid {uid[:40]!r} must be 1-36 printable characters without spaces")
    if not re.fullmatch(r"[A-Z]{2}", country):
        report.errors.append(f"country_code must be two capital letters, not {country[:10]!r}")
    if not re.fullmatch(r"[A-Z0-9]{3}", party):
        report.errors.append(f"party_id must be three capital letters or digits, not {party[:10]!r}")
    fields: dict[str, Any] = {}
    if "type" in v:
        kind = v["type"].upper()
        if kind not in ("RFID", "APP_USER", "AD_HOC_USER", "OTHER"):
            report.errors.append(f"type must be RFID, APP_USER, AD_HOC_USER or OTHER, not {v['type'][:20]!r}")
        fields["type"] = kind
    if "status" in v:
        status = v["status"].lower()
        if status not in {s.value for s in TokenStatus}:
            report.errors.append(f"status must be active, blocked or retired, not {v['status'][:20]!r}")
        fields["status"] = status
    if "expires_at" in v:
        fields["expires_at"] = _expiry(report, v["expires_at"])
    for name, limit in (("group_id", 20), ("contract_id", 36), ("visual_number", 64), ("issuer", 64)):
        if name in v:
            if len(v[name]) > limit:
                report.errors.append(f"{name} has more than {limit} characters")
            fields[name] = v[name]
    if "allow_concurrent" in v:
        flag = _BOOLEANS.get(v["allow_concurrent"].lower())
        if flag is None:
            report.errors.append(
                f"allow_concurrent must be true or false, not {v['allow_concurrent'][:20]!r}"
            )
        fields["allow_concurrent"] = flag
    current = tokens.get((country, party, uid))
    for name in ("energy_supplier", "energy_contract_id"):
        if name in v:
            problem = energy_contract_problem(name, v[name])
            if problem:
                report.errors.append(problem)
            fields[name] = v[name]
    if "energy_contract_id" in v and not v.get("energy_supplier", current and current.energy_supplier):
        report.errors.append("energy_contract_id needs an energy_supplier (whose contract is it?)")
    if report.errors:
        report.action = "error"
        return report, fields
    _note_changes(report, current, fields)
    report.action = "create" if current is None else ("update" if report.changes else "unchanged")
    return report, fields


async def import_tokens(ctx: ServiceContext, actor: str, rows: list[Row], dry_run: bool) -> ImportReport:
    """Plan (and unless `dry_run`, apply) a tokens import. Applied changes share one new
    local-list version, so connected stations get one differential SendLocalList."""
    duplicates = _duplicates(rows, _token_key, "token (country_code, party_id, uid)")
    uids = sorted({r.values["uid"] for r in rows if "uid" in r.values})

    async def plan(
        db: AsyncSession,
    ) -> tuple[ImportReport, list[dict[str, Any]], dict[tuple[str, str, str], Token]]:
        found = await _in_chunks(db, lambda k: select(Token).where(Token.uid.in_(k)), uids)
        tokens = {(t.country_code, t.party_id, t.uid): t for (t,) in found}
        planned = [_plan_token(r, tokens, duplicates.get(r.line)) for r in rows]
        report = ImportReport("tokens", dry_run, rows=[p[0] for p in planned])
        return report, [p[1] for p in planned], tokens

    if dry_run:
        async with ctx.db() as db:
            report, _, _ = await plan(db)
        return report
    async with ctx.db() as db:
        report, _, _ = await plan(db)
    if report.totals["error"]:
        raise ImportHasErrors(report)

    async def job(db: AsyncSession) -> ImportReport:
        report, fields, tokens = await plan(db)
        if report.totals["error"]:
            raise ImportHasErrors(report)
        changed = [
            (r, f, row)
            for r, f, row in zip(report.rows, fields, rows, strict=True)
            if r.action != "unchanged"
        ]
        if changed:
            version = await next_list_version(db)
            for _report, values, row in changed:
                key = (
                    row.values.get("country_code", "NL"),
                    row.values.get("party_id", "STK"),
                    row.values["uid"],
                )
                token = tokens.get(key)
                if token is None:
                    token = Token(uid=key[2], country_code=key[0], party_id=key[1], status=TokenStatus.ACTIVE)
                    db.add(token)
                for name, value in values.items():
                    setattr(token, name, value)
                token.list_version = version
        audit(
            db,
            actor=actor,
            action="import.tokens.applied",
            object_type="import",
            object_id="tokens",
            at=ctx.now(),
            totals=report.totals,
            created=[r.key for r in report.rows if r.action == "create"],
            updated=[r.key for r in report.rows if r.action == "update"],
        )
        report.applied = True
        return report

    report = await ctx.write(job)
    if report.totals["create"] or report.totals["update"]:
        await ctx.bus.publish(Event("token.changed", {"import": True, "totals": report.totals}))
    return report
