"""Claims in PostgreSQL for work that several processes may attempt at the same moment.

A transaction-scoped advisory lock serializes the transactions that take the same name, across
every process on the database, and ends with the transaction (commit, rollback, or a dead
connection): nothing to release, nothing left behind by a killed process. SQLite has one
writer at a time already, so there it is a no-op.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

#: The first key of every Stekker claim ("STK1"), so our locks never meet another application's.
NAMESPACE = 0x53544B31


async def lock_for_transaction(db: AsyncSession, name: str) -> None:
    """Wait until no other transaction holds claim `name`, then hold it until this one ends."""
    if db.get_bind().dialect.name != "postgresql":
        return
    await db.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:name))"),
        {"namespace": NAMESPACE, "name": name},
    )
