"""Baseline central system: the `ocpp` package's documented ChargePoint style, no database.

This is what a newcomer writes after reading the `ocpp` README: one `ocpp.v16.ChargePoint`
subclass with `@on(Action...)` handlers, served by `websockets.serve` with the `ocpp1.6`
subprotocol, one ChargePoint object per connection. Every message is validated with
jsonschema by the `ocpp` package; that cost is part of what the benchmark compares against.

Run: `.venv/bin/python bench/baseline_ocpp_cs.py --port 9000` (listens on 127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp
from ocpp.v16 import call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import ServerConnection

LOGGER = logging.getLogger("baseline")
HEARTBEAT_INTERVAL_S = 300
_transaction_ids = itertools.count(1)


def _now() -> str:
    """Current UTC time in the ISO 8601 form OCPP expects."""
    return datetime.now(UTC).isoformat()


class CentralSystemChargePoint(Cp):
    """Server-side view of one station: answers the station-initiated core profile calls."""

    @on(Action.boot_notification)
    async def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any):
        """Accept every station."""
        return call_result.BootNotification(
            current_time=_now(), interval=HEARTBEAT_INTERVAL_S, status=RegistrationStatus.accepted
        )

    @on(Action.status_notification)
    async def on_status_notification(self, connector_id: int, error_code: str, status: str, **kwargs: Any):
        """Acknowledge a connector status change."""
        return call_result.StatusNotification()

    @on(Action.heartbeat)
    async def on_heartbeat(self):
        """Answer with the current time."""
        return call_result.Heartbeat(current_time=_now())

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any):
        """Acknowledge meter values (not stored)."""
        return call_result.MeterValues()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str):
        """Accept every idTag."""
        return call_result.Authorize(id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted))

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs: Any
    ):
        """Accept and hand out a process-wide increasing transaction id."""
        return call_result.StartTransaction(
            transaction_id=next(_transaction_ids),
            id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted),
        )

    @on(Action.stop_transaction)
    async def on_stop_transaction(self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any):
        """Acknowledge the end of a transaction."""
        return call_result.StopTransaction(id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted))


async def on_connect(websocket: ServerConnection) -> None:
    """Create a ChargePoint for the connection and run it until the station disconnects."""
    if websocket.subprotocol != "ocpp1.6":
        await websocket.close(code=1002, reason="subprotocol ocpp1.6 required")
        return
    charge_point_id = websocket.request.path.rstrip("/").split("/")[-1] if websocket.request else "unknown"
    cp = CentralSystemChargePoint(charge_point_id, websocket)
    try:
        await cp.start()
    except websockets.exceptions.ConnectionClosed:
        pass


async def serve(port: int) -> None:
    """Listen on 127.0.0.1:port until SIGINT or SIGTERM."""
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with websockets.serve(on_connect, "127.0.0.1", port, subprotocols=["ocpp1.6"]):
        LOGGER.warning("baseline central system listening on ws://127.0.0.1:%d/ocpp/<id>", port)
        await stop


def main() -> None:
    """Parse arguments and run the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's loop")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level)
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.port))
    else:
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
