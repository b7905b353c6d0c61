"""Whether a station booted since a moment: how a reset whose answer was lost is known to be done.

A station that takes Reset Hard often drops its connection without answering; its
BootNotification afterwards is the only sign that the reset happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from sqlalchemy import select

from stekker.bus import Event
from stekker.db.models import ChargingStation
from stekker.services.context import ServiceContext

# The boot event wakes us; the poll is only for a boot handled by another process.
_POLL = 1.0


async def booted_since(ctx: ServiceContext, station_id: str, since: datetime) -> bool:
    """Whether the station sent a BootNotification at or after `since`."""
    async with ctx.db() as db:
        booted = await db.scalar(select(ChargingStation.last_boot_at).where(ChargingStation.id == station_id))
    return booted is not None and booted >= since


async def wait_for_boot(ctx: ServiceContext, station_id: str, since: datetime, seconds: float) -> bool:
    """Wait at most `seconds` for the station to boot (at or after `since`)."""
    woke = asyncio.Event()

    async def on_booted(event: Event) -> None:
        if event.data.get("station_id") == station_id:
            woke.set()

    unsubscribe = ctx.bus.subscribe("station.booted", on_booted)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        while True:
            woke.clear()
            if await booted_since(ctx, station_id, since):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woke.wait(), min(remaining, _POLL))
    finally:
        unsubscribe()
