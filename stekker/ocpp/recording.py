"""Handlers for notifications that only need to be kept: stored as a station event, acknowledged."""

from __future__ import annotations

from typing import Any

from stekker.ocpp.connection import Handler, Reply, StationConnection
from stekker.services import stations


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
