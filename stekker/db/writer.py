"""Group commit: the writes of many stations share one transaction.

Every OCPP message is persisted before it is acknowledged (DESIGN rule 4). Committing each
one alone costs a transaction per message (measured on SQLite: ~5 ms, so ~200 msg/s in
all). Here messages queue, a worker takes whatever has gathered while the previous batch
was committing, runs the jobs one after another in a single transaction and commits once;
every caller learns its own result only after that commit. If the batch fails, each job
is run again in a transaction of its own, so one bad message never fails its neighbours.

A job must only touch the database through the session it is given and must be safe to
run twice (its first run may have been rolled back with the batch). A job may `defer` an
INSERT or UPDATE whose result it does not need: the batch runs all deferred rows of one
statement as a single executemany just before its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stekker.metrics import WRITER_BATCH_SIZE, WRITER_QUEUE_DEPTH

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[AsyncSession], Awaitable[T]]


_DEFERRED = "stekker.deferred"


def defer(db: AsyncSession, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """Queue rows for `statement` until the end of the transaction (see the module docstring)."""
    pending: dict[Executable, list[dict[str, Any]]] = db.info.setdefault(_DEFERRED, {})
    pending.setdefault(statement, []).extend(rows)


async def _run_deferred(db: AsyncSession) -> None:
    pending: dict[Executable, list[dict[str, Any]]] = db.info.pop(_DEFERRED, {})
    for statement, rows in pending.items():
        await db.execute(statement, rows)


async def run_in_transaction(factory: async_sessionmaker[AsyncSession], job: Job[T]) -> T:
    """One job in a transaction of its own, deferred rows included."""
    async with factory() as db, db.begin():
        result = await job(db)
        await _run_deferred(db)
        return result


class GroupCommitWriter:
    """Runs write jobs in batched transactions with `workers` connections in parallel."""

    def __init__(
        self, factory: async_sessionmaker[AsyncSession], workers: int = 1, max_batch: int = 256
    ) -> None:
        self.factory = factory
        self._workers = workers
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Job[Any], asyncio.Future[Any]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def depth(self) -> int:
        """Jobs queued and not yet taken into a batch (/metrics reads it before each scrape)."""
        return self._queue.qsize()

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._work(), name=f"writer-{i}") for i in range(self._workers)
            ]

    async def stop(self) -> None:
        """Finish what is queued (for at most 10 s), then stop."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), 10)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def run(self, job: Job[T]) -> T:
        """Run `job` in a committed transaction; its result, or its exception."""
        if not self._tasks:  # not started (tools, migrations): plain transaction
            return await run_in_transaction(self.factory, job)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return await future

    async def _work(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            # once per batch, not per job: what is left behind while this batch commits
            WRITER_BATCH_SIZE.observe(len(batch))
            WRITER_QUEUE_DEPTH.set(self._queue.qsize())
            try:
                await self._run_batch(batch)
            except Exception:  # never let the worker die
                log.exception("writer batch failed")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError("write failed"))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _run_batch(self, batch: list[tuple[Job[Any], asyncio.Future[Any]]]) -> None:
        if len(batch) > 1:
            try:
                async with self.factory() as db, db.begin():
                    results = [await job(db) for job, _ in batch]
                    await _run_deferred(db)
            except Exception as exc:
                log.debug("batch of %d failed (%s); running its jobs one by one", len(batch), exc)
            else:
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                return
        for job, future in batch:
            try:
                result = await run_in_transaction(self.factory, job)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
