"""Apply the Alembic migrations to a database, from the CLI, `serve` and the tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stekker.cluster.db_claim import MIGRATION_LOCK_KEY

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision` using an existing engine (no second connection pool)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))

    def _upgrade(connection: object) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # processes of a cluster start together: one migrates, the others wait and then find
            # the schema up to date (the lock ends with this transaction)
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await connection.run_sync(_upgrade)


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Blocking variant for the CLI."""
    from stekker.db.engine import make_engine

    async def _go() -> None:
        engine = make_engine(url)
        try:
            await upgrade(engine, revision)
        finally:
            await engine.dispose()

    asyncio.run(_go())
