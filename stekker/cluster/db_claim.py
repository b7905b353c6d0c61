"""Who may use a database: one process alone, or the processes of one cluster.

Without Redis a Stekker process keeps live truth in its own memory (which station's socket it
holds, its bus, its leases), so a second process on the same database would contradict it: it
used to mark every station of the first one offline. Each process therefore claims the database
at start, after binding its ports and before it writes anything:

- PostgreSQL: a session-level advisory lock on a connection held for the life of the process;
  a single process takes it exclusively, a cluster node shared. A second single process, or a
  cluster node next to a single process (or the reverse), is refused with one line.
- SQLite: an exclusive `flock` on the database file (SQLite itself uses POSIX record locks,
  which `flock` does not touch), so a second process on the same file is refused. A cluster on
  SQLite is refused earlier, by `check_cluster_settings`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stekker.cluster.node import ALL_ROLES, Role

# "STEKKER" in ASCII: the advisory lock key every Stekker process on a database uses
LOCK_KEY = 0x5354454B4B4552
# held only while migrating, so processes starting together migrate one after the other
MIGRATION_LOCK_KEY = LOCK_KEY + 1


class ClusterConfigError(ValueError):
    """Settings that cannot run as asked (roles without Redis, a cluster on SQLite): one line."""


class DatabaseInUse(RuntimeError):
    """Another process's claim on the database excludes ours: one line saying what to do."""


def check_cluster_settings(database_url: str, redis_url: str | None, roles: frozenset[Role]) -> None:
    """Refuse, before any I/O, what cannot work: a role split without Redis, Redis with SQLite."""
    if redis_url is None and roles != ALL_ROLES:
        named = ",".join(sorted(r.value for r in roles))
        raise ClusterConfigError(
            f"--role {named} needs STEKKER_REDIS_URL: the processes of a cluster share stations, events "
            "and work through Redis (without it, run `stekker serve` with every role)"
        )
    if redis_url is not None and database_url.startswith("sqlite"):
        raise ClusterConfigError(
            "STEKKER_REDIS_URL (cluster mode) needs PostgreSQL: SQLite serves one process; set "
            "STEKKER_DATABASE_URL=postgresql+asyncpg://user:password@host/db, or unset STEKKER_REDIS_URL"
        )


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class DatabaseClaim:
    """This process's claim on its database, held until `release`."""

    def __init__(self, engine: AsyncEngine, url: str, clustered: bool) -> None:
        self._engine = engine
        self._url = url
        self._clustered = clustered
        self._connection: AsyncConnection | None = None
        self._fd: int | None = None

    async def take(self) -> None:
        if self._url.startswith("sqlite"):
            self._take_file()
        elif self._url.startswith("postgresql"):
            await self._take_advisory()

    def _take_file(self) -> None:
        path = _sqlite_file(self._url)
        if path is None:
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseInUse(
                f"another stekker process uses the SQLite database {path}: one process per SQLite "
                "database (stop the other one, or give this one its own STEKKER_DATABASE_URL)"
            ) from None
        self._fd = fd

    async def _take_advisory(self) -> None:
        # a connection of our own for the life of the process: the session-level lock lives and
        # dies with it (a killed process's lock ends with its connection)
        connection = await self._engine.connect()
        try:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            function = "pg_try_advisory_lock_shared" if self._clustered else "pg_try_advisory_lock"
            granted = (await connection.execute(text(f"SELECT {function}(:key)"), {"key": LOCK_KEY})).scalar()
        except BaseException:
            await connection.close()
            raise
        if not granted:
            await connection.close()
            if self._clustered:
                raise DatabaseInUse(
                    "a stekker process without STEKKER_REDIS_URL uses this database: stop it, or give it "
                    "the cluster's STEKKER_REDIS_URL too, before starting cluster nodes"
                )
            raise DatabaseInUse(
                "another stekker process uses this database: without STEKKER_REDIS_URL only one may; set the "
                "same STEKKER_REDIS_URL on every process to run them as a cluster"
            )
        self._connection = connection

    async def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None
        if self._connection is not None:
            # invalidated, not given back to the pool: a pooled connection would keep the lock
            with contextlib.suppress(Exception):
                await self._connection.invalidate()
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None
