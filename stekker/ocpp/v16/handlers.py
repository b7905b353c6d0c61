"""Inbound OCPP 1.6 messages, translated into service calls. No business rules here."""

from __future__ import annotations

from typing import Any

from stekker.db.base import utcnow
from stekker.domain.metering import SampledValue
from stekker.domain.timeutil import format_timestamp, parse_timestamp
from stekker.ocpp import common
from stekker.ocpp.common import data_transfer, heartbeat, recorder
from stekker.ocpp.connection import Handler, Reply, StationConnection
from stekker.ocpp.v16 import logs
from stekker.services import authorization, firmware, station_setup, stations, transactions
from stekker.services.authorization import TokenVerdict


def _id_tag_info(verdict: TokenVerdict) -> dict[str, Any]:
    info: dict[str, Any] = {"status": verdict.decision.status.value}
    if verdict.expires_at is not None:
        info["expiryDate"] = format_timestamp(verdict.expires_at)
    if verdict.group_id:
        info["parentIdTag"] = verdict.group_id
    return info


def _samples(meter_values: list[dict[str, Any]]) -> list[SampledValue]:
    out: list[SampledValue] = []
    for meter_value in meter_values:
        at = parse_timestamp(meter_value["timestamp"])
        for s in meter_value["sampledValue"]:
            out.append(
                SampledValue(
                    timestamp=at,
                    value=s["value"],
                    measurand=s.get("measurand", "Energy.Active.Import.Register"),
                    phase=s.get("phase"),
                    unit=s.get("unit", "Wh"),
                    context=s.get("context", "Sample.Periodic"),
                    location=s.get("location", "Outlet"),
                    format=s.get("format", "Raw"),
                )
            )
    return out


async def boot_notification(conn: StationConnection, p: dict[str, Any]) -> Reply:
    info = stations.BootInfo(
        vendor=p["chargePointVendor"],
        model=p["chargePointModel"],
        serial_number=p.get("chargePointSerialNumber") or p.get("chargeBoxSerialNumber"),
        firmware_version=p.get("firmwareVersion"),
        iccid=p.get("iccid"),
        imsi=p.get("imsi"),
        meter_type=p.get("meterType"),
        meter_serial_number=p.get("meterSerialNumber"),
    )
    return await common.boot(conn, info)


async def status_notification(conn: StationConnection, p: dict[str, Any]) -> Reply:
    connector_id = p["connectorId"]
    error_code = p["errorCode"]
    report = stations.StatusReport(
        evse_number=connector_id,
        connector_number=1 if connector_id > 0 else 0,
        status=p["status"],
        timestamp=parse_timestamp(p["timestamp"]) if "timestamp" in p else utcnow(),
        error_code=None if error_code == "NoError" else error_code,
        info=p.get("info"),
        vendor_id=p.get("vendorId"),
        vendor_error_code=p.get("vendorErrorCode"),
    )
    await stations.report_status(conn.ctx, conn.station_id, report)
    return Reply({})


async def authorize(conn: StationConnection, p: dict[str, Any]) -> Reply:
    verdict = await authorization.authorize(conn.ctx, conn.station_id, p["idTag"])
    return Reply({"idTagInfo": _id_tag_info(verdict)})


async def start_transaction(conn: StationConnection, p: dict[str, Any]) -> Reply:
    request = transactions.StartRequest(
        evse_number=p["connectorId"],
        connector_number=1,
        token_uid=p["idTag"],
        timestamp=parse_timestamp(p["timestamp"]),
        meter_start_wh=p["meterStart"],
        reservation_id=p.get("reservationId"),
    )
    result = await transactions.start(conn.ctx, conn.station_id, request)
    after = None
    if not result.decision.accepted and not result.duplicate:
        ctx, session_id = conn.ctx, result.session_id

        async def enforce() -> None:
            await station_setup.stop_if_still_running(ctx, session_id)

        after = enforce
    return Reply({"transactionId": result.session_id, "idTagInfo": _id_tag_info(result.verdict)}, after)


async def stop_transaction(conn: StationConnection, p: dict[str, Any]) -> Reply:
    request = transactions.StopRequest(
        transaction_id=str(p["transactionId"]),
        timestamp=parse_timestamp(p["timestamp"]),
        meter_stop_wh=p["meterStop"],
        reason=p.get("reason", "Local"),
        token_uid=p.get("idTag"),
        samples=_samples(p.get("transactionData", [])),
    )
    result = await transactions.stop(conn.ctx, conn.station_id, request)
    if result.decision is None:
        return Reply({})
    return Reply({"idTagInfo": _id_tag_info(TokenVerdict(result.decision, None, None, None))})


async def meter_values(conn: StationConnection, p: dict[str, Any]) -> Reply:
    connector_id = p["connectorId"]
    tx = p.get("transactionId")
    report = transactions.MeterReport(
        evse_number=connector_id,
        connector_number=1 if connector_id > 0 else 0,
        transaction_id=None if tx is None else str(tx),
        samples=_samples(p["meterValue"]),
    )
    await transactions.record_meter_values(conn.ctx, conn.station_id, report)
    return Reply({})


async def firmware_status(conn: StationConnection, p: dict[str, Any]) -> Reply:
    # plain 1.6 has no requestId (the update is found by station); the signed variant has one
    await firmware.report_status(conn.ctx, conn.station_id, p["status"], p.get("requestId"), p)
    return Reply({})


HANDLERS: dict[str, Handler] = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "StartTransaction": start_transaction,
    "StopTransaction": stop_transaction,
    "MeterValues": meter_values,
    "DataTransfer": data_transfer,
    "FirmwareStatusNotification": firmware_status,
    # 1.6 security extension (white paper edition 2)
    "SecurityEventNotification": recorder("security_event"),
    "SignedFirmwareStatusNotification": firmware_status,
    # No certificate authority is configured: refusing is the answer the spec allows.
    "SignCertificate": recorder("certificate_signing_refused", {"status": "Rejected"}),
    **logs.HANDLERS,
}
