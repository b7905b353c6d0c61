"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from stekker.app import Stekker
from stekker.cli import app as cli_app
from stekker.db.base import Base


async def test_migrations_match_the_models(server: Stekker) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with server.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


def test_cli_lists_every_command() -> None:
    result = CliRunner().invoke(cli_app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "migrate", "simulate", "demo", "station", "token", "session"):
        assert command in result.output
    result = CliRunner().invoke(cli_app, ["session", "--help"])
    assert all(word in result.output for word in ("list", "start", "stop"))
