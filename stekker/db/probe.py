"""Whether the configured database can be opened at all, asked once at start-up.

A wrong host, port, password or database name, or a SQLite path in a folder that does not
exist, is the operator's to fix: one line saying which setting and why, instead of the
hundreds of lines of a driver's traceback."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine


class DatabaseUnreachable(Exception):
    """The database cannot be opened; the message is one line naming STEKKER_DATABASE_URL
    (its password hidden) and the reason."""


def shown(url: str) -> str:
    """The URL as it may be printed and logged: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def _sqlite_folder(url: str) -> Path | None:
    """The folder a file-backed SQLite URL puts its database in; None for anything else."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI filename: leave it to the driver
        return None
    return Path(database).parent


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text_ = str(exc).strip() or type(exc).__name__
    return " ".join(text_.split())  # the drivers' messages span lines


async def check_reachable(engine: AsyncEngine, url: str) -> None:
    """`DatabaseUnreachable` unless one connection opens and answers; nothing is written."""
    folder = _sqlite_folder(url)
    if folder is not None and not folder.is_dir():
        # asked before the driver: aiosqlite's worker thread would print its own traceback
        # when the refused connection races the process's exit
        raise DatabaseUnreachable(
            f"STEKKER_DATABASE_URL={shown(url)} cannot be opened: unable to open database file"
        )
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (OSError, DBAPIError) as exc:
        raise DatabaseUnreachable(
            f"STEKKER_DATABASE_URL={shown(url)} cannot be opened: {_reason(exc)}"
        ) from exc
