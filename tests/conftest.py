"""Fixtures: a real Stekker (gateway + API on loopback) on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from stekker.app import Stekker
from stekker.config import Settings
from stekker.domain import passwords
from tests.redis_server import redis_server, redis_url  # noqa: F401  (fixtures)

# Thousands of throw-away users and stations: a cheap scrypt in this process (each hash names its
# cost, so verification is unaffected; tests/test_passwords.py checks the default cost).
passwords.use_cost(passwords.ScryptCost(n=2**8, r=8, p=1))

PG_ADMIN_URL = os.environ.get("STEKKER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One throw-away PostgreSQL database for the whole run; tables are emptied per test."""
    name = f"stekker_test_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        # a throw-away database: commits need not wait for the disk (nothing survives the run)
        asyncio.run(admin(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is needed for the tests (make test starts it): {exc}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _empty_postgres(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"
        )
        sequences = await conn.fetch("SELECT sequencename FROM pg_sequences WHERE schemaname='public'")
        # DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE makes and syncs new files
        # for every table (most of a test's set-up time); the replica role skips the foreign-key
        # triggers, so the order does not matter
        statements = ["SET session_replication_role = replica"]
        statements += [f'DELETE FROM "{t["tablename"]}"' for t in tables]
        statements += [f'ALTER SEQUENCE "{q["sequencename"]}" RESTART' for q in sequences]
        statements.append("SET session_replication_role = DEFAULT")
        try:
            await conn.execute(";\n".join(statements))
        except asyncpg.InsufficientPrivilegeError:  # not a superuser: the slow, plain way
            if tables:
                names = ", ".join(f'"{t["tablename"]}"' for t in tables)
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once per test process: each test starts from a copy, which
    costs a file copy instead of running every migration again (a third of a second each)."""
    from stekker.db.engine import make_engine
    from stekker.db.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "stekker.db"

    async def migrate() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()

    # in a thread of its own: the first test to ask may already run inside an event loop
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, migrate()).result()
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "stekker.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("pg_database")
    return url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "host": "127.0.0.1",
        "ocpp_port": 0,
        "http_port": 0,
        "unknown_stations": "accept",
        "call_timeout": 3.0,
        # a loaded CI machine can take seconds to admit a station on SQLite; a 503 then is a flake,
        # not behaviour (tests of the storm answer set their own short timeout)
        "ocpp_admission_timeout": 60.0,
        "ocpp_handshake_timeout": 90.0,  # longer than the admission, as the settings require
        "configure_stations_on_boot": False,
        "remote_stop_rejected_after": 0.5,
        # most test stations accept a remote start and never begin the session: don't wait 10 s
        # for it in every such test (tests of the wait set their own)
        "remote_start_session_wait": 0.5,
        "last_seen_flush_interval": 0.2,
        "log_level": "WARNING",
        # the tests' OCPI partners listen on 127.0.0.1; tests of the guard turn this off
        "ocpi_allow_private_urls": True,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change the server's settings."""
    return {}


@pytest.fixture
async def server(
    database_url: str, settings_overrides: dict[str, Any], request: pytest.FixtureRequest
) -> AsyncIterator[Stekker]:
    sqlite_file = Path(database_url.split("///", 1)[1]) if database_url.startswith("sqlite") else None
    if sqlite_file is not None and not sqlite_file.exists():  # a module's own database_url
        shutil.copyfile(request.getfixturevalue("sqlite_template"), sqlite_file)
    if database_url.startswith("postgresql"):
        from stekker.db.engine import make_engine
        from stekker.db.migrate import upgrade

        engine = make_engine(database_url)
        await upgrade(engine)
        await engine.dispose()
        await _empty_postgres(database_url)
    app = Stekker(make_settings(database_url, **settings_overrides))
    await app.start(migrate=False)  # migrated above, or a copy of the migrated SQLite template
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
async def api(server: Stekker) -> AsyncIterator[httpx.AsyncClient]:
    # generous: tests check what is answered, bench/ how fast (a loaded CI machine stalls)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
        yield client


@pytest.fixture
def ocpp_url(server: Stekker) -> str:
    return f"ws://127.0.0.1:{server.ocpp_port}/ocpp"


@pytest.fixture
def cli(server: Stekker, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `stekker ...` operator commands against the test server, as a user would."""
    from typer.testing import CliRunner

    from stekker.cli import app as cli_app

    monkeypatch.setenv("STEKKER_API_URL", f"http://127.0.0.1:{server.http_port}")
    runner = CliRunner()

    async def invoke(*args: str) -> Any:
        return await asyncio.to_thread(runner.invoke, cli_app, list(args))

    return invoke
