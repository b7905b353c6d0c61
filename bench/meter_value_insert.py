"""What storing each meter value once costs: the insert of the OCPP hot path
(`services.transactions.defer_samples`: one executemany per group-commit batch) into a table
with the unique sample index of migration 0016, against the same table with the plain
station_id index it replaced, in the same run.

    .venv/bin/python bench/meter_value_insert.py [--rows 200000] [--batch 256] [--repeat 3]

Each variant gets a fresh database (SQLite file in a temp dir; PostgreSQL: a throw-away
database), the real schema up to the migration before 0016 (`stekker.db.migrate`), and, for the
new variant, the index of 0016 made by hand (the same SQL). Rows are three-phase samples of many stations,
`--batch` rows per transaction, inserted with `ON CONFLICT DO NOTHING` (the new variant) or a
plain INSERT (the old one). Prints rows per second and the ratio new/old.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from alembic.script import ScriptDirectory
from sqlalchemy import Table, insert, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from stekker.db.engine import make_engine
from stekker.db.migrate import alembic_config, upgrade
from stekker.db.models import MeterValue

IDENTITY = (
    "station_id, evse_number, connector_number, timestamp, measurand, "
    "coalesce(phase, ''), coalesce(context, ''), coalesce(location, ''), coalesce(unit, '')"
)
TABLE: Table = MeterValue.__table__  # type: ignore[assignment]


def rows(count: int) -> list[dict[str, Any]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    n = 0
    while len(out) < count:
        station, at = f"CP{n % 1000:04d}", start + timedelta(seconds=60 * (n // 1000))
        for measurand, phase, unit, value in (
            ("Energy.Active.Import.Register", None, "Wh", str(1_000_000 + n)),
            ("Current.Import", "L1", "A", "16.0"),
            ("Current.Import", "L2", "A", "16.1"),
            ("Current.Import", "L3", "A", "15.9"),
        ):
            out.append(
                {
                    "station_id": station, "session_id": None, "evse_number": 1, "connector_number": 1,
                    "timestamp": at, "measurand": measurand, "phase": phase, "unit": unit,
                    "context": "Sample.Periodic", "location": None, "format": None, "value": value,
                }
            )  # fmt: skip
        n += 1
    return out[:count]


def before_0016(url: str) -> str:
    """The revision migration 0016 follows."""
    previous = ScriptDirectory.from_config(alembic_config(url)).get_revision("0016").down_revision
    assert isinstance(previous, str)
    return previous


async def run(engine: AsyncEngine, new: bool, data: list[dict[str, Any]], batch: int) -> float:
    await upgrade(engine, before_0016(engine.url.render_as_string(hide_password=False)))
    dialect = engine.dialect.name
    async with engine.begin() as conn:
        if new:
            index = f"CREATE UNIQUE INDEX ux_meter_values_sample ON meter_values ({IDENTITY})"
            await conn.execute(text(index))
            await conn.execute(text("DROP INDEX ix_meter_values_station_id"))
    if new:
        make = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement: Any = make(TABLE).on_conflict_do_nothing()
    else:
        statement = insert(TABLE)
    began = time.perf_counter()
    for offset in range(0, len(data), batch):
        async with engine.begin() as conn:
            await conn.execute(statement, data[offset : offset + batch])
    return len(data) / (time.perf_counter() - began)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each variant (median).")
    parser.add_argument("--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    data = rows(args.rows)
    print(f"{args.rows:,} meter values, {args.batch} per transaction, median of {args.repeat} runs")
    for backend in ("sqlite", "postgresql"):
        runs: dict[bool, list[float]] = {False: [], True: []}
        for new in [False, True] * args.repeat:
            with tempfile.TemporaryDirectory() as tmp:
                name = f"stekker_bench_{uuid.uuid4().hex[:8]}"
                if backend == "sqlite":
                    url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                else:
                    admin = await asyncpg.connect(args.postgres_admin_url)
                    await admin.execute(f'CREATE DATABASE "{name}"')
                    await admin.close()
                    base = args.postgres_admin_url.rsplit("/", 1)[0]
                    url = base.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
                engine = make_engine(url)
                try:
                    runs[new].append(await run(engine, new, data, args.batch))
                finally:
                    await engine.dispose()
                    if backend == "postgresql":
                        admin = await asyncpg.connect(args.postgres_admin_url)
                        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                        await admin.close()
        rates = {new: statistics.median(rates) for new, rates in runs.items()}
        print(
            f"{backend:10}  old (plain insert, station_id index) {rates[False]:>9,.0f} rows/s   "
            f"new (unique sample index, ON CONFLICT DO NOTHING) {rates[True]:>9,.0f} rows/s   "
            f"new/old {rates[True] / rates[False]:.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
