"""What the handlers of every version share: boot and heartbeat replies, and notifications that
only need to be kept (stored as a station event, acknowledged)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from stekker.domain.timeutil import format_timestamp
from stekker.ocpp.connection import Handler, Reply, StationConnection
from stekker.services import reconcile, station_setup, stations


async def boot(conn: StationConnection, info: stations.BootInfo) -> Reply:
    """Record the boot and answer it; the sessions it had open are reconciled (1.6: closed
    before the answer; later versions: asked about after it); an accepted station is then set
    up (central authorization, local list, first configuration report) once the answer is sent."""
    result = await stations.boot(conn.ctx, conn.station_id, info)
    station_id, ctx = conn.station_id, conn.ctx
    ask_about_sessions = await reconcile.station_booted(ctx, station_id, conn.protocol)
    work: list[Callable[[], Awaitable[None]]] = []
    if result.status == "Accepted":
        if ask_about_sessions is not None:
            work.append(ask_about_sessions)
        if ctx.settings.configure_stations_on_boot:
            work.append(functools.partial(station_setup.after_boot, ctx, station_id))

    async def after_boot() -> None:
        for step in work:
            await step()

    answer = {
        "status": result.status,
        "currentTime": format_timestamp(result.current_time),
        "interval": result.interval,
    }
    return Reply(answer, after_boot if work else None)


async def heartbeat(conn: StationConnection, p: dict[str, Any]) -> Reply:
    return Reply({"currentTime": format_timestamp(conn.ctx.now())})


def recorder(kind: str, answer: dict[str, Any] | None = None) -> Handler:
    """A handler that stores the message as a station event of `kind` and answers `answer`."""

    async def record(conn: StationConnection, p: dict[str, Any]) -> Reply:
        await stations.record_event(conn.ctx, conn.station_id, kind, **p)
        return Reply(dict(answer or {}))

    return record


async def data_transfer(conn: StationConnection, p: dict[str, Any]) -> Reply:
    """Vendor-specific data (the same message in 1.6, 2.0.1 and 2.1)."""
    await stations.record_event(
        conn.ctx,
        conn.station_id,
        "data_transfer",
        vendor_id=p["vendorId"],
        message_id=p.get("messageId"),
        data=p.get("data"),
    )
    # No vendor extensions are registered yet; the spec's answer for that is UnknownVendorId.
    return Reply({"status": "UnknownVendorId"})
