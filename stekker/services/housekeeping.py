"""Periodic upkeep of a running backoffice: retention purges and deadlines that pass without
anyone asking (a diagnostics upload that never arrives)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from stekker.cluster.leases import while_leading
from stekker.services import cdrs, diagnostics, message_log, tariffs
from stekker.services.context import ServiceContext
from stekker.services.outage import OutageLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Chore:
    """Work repeated every `interval(ctx)` seconds, first at start; `work` returns how many
    things it changed (logged when not zero).

    In a cluster each chore runs in one worker at a time, under the Redis lease
    `chore:<name>`, and moves to another worker about one lease (STEKKER_CLUSTER_LEASE_SECONDS)
    after its runner dies. Why a lease and not row claims: a chore is one periodic scan over
    the whole database, not a queue of items, so "who scans" is the only thing to decide; two
    scans at once would only duplicate work (each chore's writes are conditional, so an
    overlap of a few seconds after a lost lease changes nothing twice), and one lease per
    chore spreads the four chores over the workers instead of piling them on one."""

    name: str
    interval: Callable[[ServiceContext], float]
    work: Callable[[ServiceContext], Awaitable[int]]

    @property
    def lease(self) -> str:
        return f"chore:{self.name}"


CHORES = (
    Chore("message-log-purge", lambda ctx: ctx.settings.message_log_purge_interval, message_log.purge),
    Chore(
        "diagnostics-expiry", lambda ctx: ctx.settings.diagnostics_expiry_interval, diagnostics.expire_overdue
    ),
    Chore("tariff-activation", lambda ctx: ctx.settings.tariff_activation_interval, tariffs.activate_due),
    Chore("cdr-sweep", lambda ctx: ctx.settings.cdr_sweep_interval, cdrs.build_missing),
)


async def repeat(ctx: ServiceContext, chore: Chore) -> None:
    outage = OutageLog(chore.name, log)
    while True:
        try:
            changed = await chore.work(ctx)
            outage.ok()
            if changed:
                log.info("%s: %d done", chore.name, changed)
        except Exception as exc:  # the next round may succeed (a database that was briefly away)
            outage.failed_or_log(exc, "%s failed", chore.name)
        await asyncio.sleep(chore.interval(ctx))


async def lead(ctx: ServiceContext, chore: Chore) -> None:
    """Run `chore` while this node holds its lease (always, in one process); returns only
    when cancelled, releasing the lease so another worker takes over at its next try."""

    async def work() -> None:
        await repeat(ctx, chore)

    await while_leading(ctx.leases, chore.lease, work, ttl=ctx.settings.cluster_lease_seconds)


def start(ctx: ServiceContext, chores: Sequence[Chore] = CHORES) -> list[asyncio.Task[None]]:
    """One task per chore; cancel them to stop (each releases its lease)."""
    return [asyncio.create_task(lead(ctx, chore), name=chore.name) for chore in chores]
