"""Diagnostics and log uploads for OCPP 1.6: the request to upload, and the station's upload status.

GetDiagnostics uploads the diagnostics file; a security log goes through GetLog of the 1.6
security extension (stations without it answer NotImplemented).
"""

from __future__ import annotations

from typing import Any

from stekker.domain.timeutil import format_timestamp
from stekker.ocpp.connection import Handler, Reply, StationConnection
from stekker.ocpp.outbound import Outbound
from stekker.services import diagnostics


def _with_retries(payload: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    if args.get("retries") is not None:
        payload["retries"] = args["retries"]
    if args.get("retry_interval") is not None:
        payload["retryInterval"] = args["retry_interval"]
    return payload


def get_log(args: dict[str, Any]) -> Outbound:
    """GetLog, spelled alike in the 1.6 security extension, 2.0.1 and 2.1."""
    log: dict[str, Any] = {"remoteLocation": args["location"]}
    if args.get("start") is not None:
        log["oldestTimestamp"] = format_timestamp(args["start"])
    if args.get("stop") is not None:
        log["latestTimestamp"] = format_timestamp(args["stop"])
    payload = _with_retries(
        {
            "log": log,
            "logType": args.get("log_type", "DiagnosticsLog"),
            "requestId": args.get("request_id", 0),
        },
        args,
    )

    def read(reply: dict[str, Any]) -> dict[str, Any]:
        return {"status": reply["status"], "file_name": reply.get("filename"), "action": "GetLog"}

    return Outbound("GetLog", payload, read)


def get_diagnostics(args: dict[str, Any]) -> Outbound:
    if args.get("log_type") == "SecurityLog":
        return get_log(args)
    payload: dict[str, Any] = {"location": args["location"]}
    if args.get("start") is not None:
        payload["startTime"] = format_timestamp(args["start"])
    if args.get("stop") is not None:
        payload["stopTime"] = format_timestamp(args["stop"])
    _with_retries(payload, args)

    def read(reply: dict[str, Any]) -> dict[str, Any]:
        # 1.6 has no status: a file name means it will upload; none means it has nothing
        file_name = reply.get("fileName")
        if file_name:
            return {"status": "Accepted", "file_name": file_name, "action": "GetDiagnostics"}
        return {
            "status": "Rejected",
            "reason": "the station has no diagnostics information (no fileName)",
            "action": "GetDiagnostics",
        }

    return Outbound("GetDiagnostics", payload, read)


async def diagnostics_status(conn: StationConnection, p: dict[str, Any]) -> Reply:
    await diagnostics.station_status(conn.ctx, conn.station_id, "diagnostics_status", p["status"], None)
    return Reply({})


async def log_status(conn: StationConnection, p: dict[str, Any]) -> Reply:
    await diagnostics.station_status(conn.ctx, conn.station_id, "log_status", p["status"], p.get("requestId"))
    return Reply({})


HANDLERS: dict[str, Handler] = {
    "DiagnosticsStatusNotification": diagnostics_status,
    "LogStatusNotification": log_status,
}
