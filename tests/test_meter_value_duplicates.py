"""A meter value is stored once: retransmitted 1.6 MeterValues and StopTransaction
transactionData add nothing, and the migration that brings this removes the duplicates
already stored (on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory
from ocpp.v16 import call
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from stekker.app import Stekker
from stekker.db.engine import make_engine
from stekker.db.migrate import alembic_config, upgrade
from stekker.db.models import MeterValue
from tests.conftest import PG_ADMIN_URL
from tests.peers import ocpp_station, raw_station

T0 = "2026-12-07T10:00:00Z"


def sampled(wh: int, **extra: Any) -> dict[str, Any]:
    return {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh", **extra}


def three_phases(ts: str) -> list[dict[str, Any]]:
    """One meter value: the register (no phase, no context: NULLs in the row) and the current
    of each phase."""
    return [
        {
            "timestamp": ts,
            "sampledValue": [
                {"value": "5001000"},  # every optional field left out
                *(
                    {"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": phase}
                    for phase in ("L1", "L2", "L3")
                ),
            ],
        }
    ]


async def stored(server: Stekker) -> list[tuple[Any, ...]]:
    async with server.ctx.db() as db:
        rows = await db.execute(
            select(MeterValue.timestamp, MeterValue.measurand, MeterValue.phase, MeterValue.value).order_by(
                MeterValue.id
            )
        )
        return [tuple(r) for r in rows]


async def test_a_retransmitted_meter_values_is_stored_once(
    api: httpx.AsyncClient, server: Stekker, ocpp_url: str
) -> None:
    await api.put("/api/tokens", json={"uid": "CARD-1"})
    async with ocpp_station(ocpp_url, "CP-MV") as cp:
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-1", meter_start=5_000_000, timestamp=T0)
        )
        tx = started.transaction_id
        sent = three_phases(T0[:-3] + "15Z")
        values = call.MeterValues(connector_id=1, transaction_id=tx, meter_value=sent)
        await cp.call(values)
        await cp.call(values)  # our acknowledgement was lost: the same values, a new message id
        session_less = call.MeterValues(connector_id=0, meter_value=three_phases(T0[:-3] + "20Z"))
        await cp.call(session_less)
        await cp.call(session_less)
        end = sampled(5_002_000, context="Transaction.End")
        data = [{"timestamp": T0[:-3] + "30Z", "sampledValue": [end]}]
        stop = call.StopTransaction(
            meter_stop=5_002_000, timestamp=T0[:-3] + "30Z", transaction_id=tx, transaction_data=data
        )
        await cp.call(stop)
        await cp.call(stop)
    # the same message id again, as a station that never saw our answer resends it
    async with raw_station(ocpp_url, "CP-MV") as raw:
        payload = {"connectorId": 1, "transactionId": tx, "meterValue": three_phases(T0[:-3] + "25Z")}
        await raw.call("MeterValues", payload, msg_id="resent-1")
        await raw.call("MeterValues", payload, msg_id="resent-1")

    rows = await stored(server)
    assert len(rows) == len(set(rows)) == 4 + 4 + 1 + 4, rows
    session_values = (await api.get(f"/api/sessions/{tx}/meter-values")).json()
    assert len(session_values) == 4 + 4 + 1
    assert [v["phase"] for v in session_values[:4]] == [None, "L1", "L2", "L3"]
    [session] = (await api.get("/api/sessions")).json()
    assert session["energy_wh"] == 2_000


async def _database_at(database_url: str, tmp_path: Path) -> tuple[str, str | None]:
    """A fresh database URL (and the PostgreSQL database's name, to drop afterwards)."""
    if database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", None
    name = f"stekker_mig_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url.rsplit("/", 1)[0] + f"/{name}", name


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_migration_removes_stored_duplicates(backend: str, tmp_path: Path) -> None:
    database_url = (
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
        if backend == "sqlite"
        else PG_ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://")
    )
    url, pg_name = await _database_at(database_url, tmp_path)
    script = ScriptDirectory.from_config(alembic_config(url))
    before = script.get_revision("0016").down_revision
    assert isinstance(before, str)
    engine = make_engine(url)
    try:
        await upgrade(engine, before)
        at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
        row = {"station_id": "OLD", "evse": 1, "connector": 1, "at": at, "measurand": "Current.Import"}
        samples = [
            {**row, "phase": "L1", "context": None, "value": "16.0"},
            {**row, "phase": "L1", "context": None, "value": "16.0"},  # a duplicate, NULL context
            {**row, "phase": None, "context": None, "value": "48.0"},
            {**row, "phase": None, "context": None, "value": "48.0"},  # a duplicate, all NULLs
            {**row, "phase": None, "context": None, "value": "48.0"},
            {**row, "phase": "L2", "context": None, "value": "16.0"},  # another phase: kept
            {**row, "phase": "L1", "context": "Trigger", "value": "16.0"},  # another context: kept
            {**row, "station_id": "OTHER", "phase": "L1", "context": None, "value": "16.0"},  # kept
        ]
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO meter_values (station_id, evse_number, connector_number, timestamp, "
                    "measurand, phase, context, value) VALUES (:station_id, :evse, :connector, :at, "
                    ":measurand, :phase, :context, :value)"
                ),
                samples,
            )
        await upgrade(engine)
        async with engine.connect() as conn:
            ids = (await conn.execute(text("SELECT id FROM meter_values ORDER BY id"))).scalars().all()
            assert list(ids) == [1, 3, 6, 7, 8]  # the first copy of each stays
            # and from now on the database itself refuses a second copy
            with pytest.raises(IntegrityError, match=r"(?i)unique"):
                await conn.execute(
                    text(
                        "INSERT INTO meter_values (station_id, evse_number, connector_number, timestamp, "
                        "measurand, phase, context, value) VALUES ('OLD', 1, 1, :at, 'Current.Import', "
                        "NULL, NULL, '48.0')"
                    ),
                    {"at": at},
                )
            await conn.rollback()
            count = await conn.scalar(select(func.count()).select_from(MeterValue))
            assert count == 5
    finally:
        await engine.dispose()
        if pg_name is not None:
            conn = await asyncpg.connect(PG_ADMIN_URL)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            finally:
                await conn.close()
