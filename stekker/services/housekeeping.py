"""Periodic upkeep of a running backoffice: retention purges and deadlines that pass without
anyone asking (a diagnostics upload that never arrives)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from stekker.services import cdrs, diagnostics, message_log, tariffs
from stekker.services.context import ServiceContext
from stekker.services.outage import OutageLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Chore:
    """Work repeated every `interval(ctx)` seconds, first at start; `work` returns how many
    things it changed (logged when not zero)."""

    name: str
    interval: Callable[[ServiceContext], float]
    work: Callable[[ServiceContext], Awaitable[int]]


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


def start(ctx: ServiceContext) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(repeat(ctx, chore), name=chore.name) for chore in CHORES]
