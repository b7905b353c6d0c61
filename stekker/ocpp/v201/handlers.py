"""Inbound OCPP 2.0.1 (and 2.1) messages, translated into the same service calls as 1.6.

No business rules here: a TransactionEvent ends in the transaction service, a StatusNotification
in the station service, exactly where 1.6's messages end.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from stekker.domain.metering import SampledValue
from stekker.domain.report_parts import report_part_problem
from stekker.domain.timeutil import parse_timestamp
from stekker.ocpp import common
from stekker.ocpp.common import data_transfer, heartbeat, recorder
from stekker.ocpp.connection import Handler, Reply, StationConnection
from stekker.ocpp.protocol import ErrorCode, OcppError
from stekker.ocpp.v201 import logs
from stekker.ocpp.v201.commands import report_values
from stekker.ocpp.v201.tokens import id_token_info
from stekker.services import (
    authorization,
    device_model,
    firmware,
    reservations,
    station_setup,
    stations,
    transactions,
)
from stekker.services.transaction_events import TransactionEventReport, apply_event


def _sample_value(value: Any, multiplier: int) -> str:
    """2.0.1 sends numbers with a power-of-ten multiplier; we keep the value it denotes, as text."""
    number = Decimal(str(value))
    if multiplier:
        number = number.scaleb(multiplier)
    return format(number, "f")


def samples(meter_values: list[dict[str, Any]]) -> list[SampledValue]:
    """2.0.1 meterValue objects as neutral samples; signed data is kept as a sample of its own."""
    out: list[SampledValue] = []
    for meter_value in meter_values:
        at = parse_timestamp(meter_value["timestamp"])
        for s in meter_value["sampledValue"]:
            unit = s.get("unitOfMeasure") or {}
            common = {
                "timestamp": at,
                "measurand": s.get("measurand", "Energy.Active.Import.Register"),
                "phase": s.get("phase"),
                "context": s.get("context", "Sample.Periodic"),
                "location": s.get("location", "Outlet"),
            }
            out.append(
                SampledValue(
                    value=_sample_value(s["value"], unit.get("multiplier", 0)),
                    unit=unit.get("unit", "Wh"),
                    format="Raw",
                    **common,
                )
            )
            signed = s.get("signedMeterValue")
            if signed is not None:
                # what an auditor verifies (Eichrecht): stored whole, never computed with
                out.append(SampledValue(value=orjson.dumps(signed).decode(), format="SignedData", **common))
    return out


async def boot_notification(conn: StationConnection, p: dict[str, Any]) -> Reply:
    station = p["chargingStation"]
    modem = station.get("modem") or {}
    info = stations.BootInfo(
        vendor=station["vendorName"],
        model=station["model"],
        serial_number=station.get("serialNumber"),
        firmware_version=station.get("firmwareVersion"),
        iccid=modem.get("iccid"),
        imsi=modem.get("imsi"),
        reason=p["reason"],
    )
    return await common.boot(conn, info)


async def status_notification(conn: StationConnection, p: dict[str, Any]) -> Reply:
    report = stations.StatusReport(
        evse_number=p["evseId"],
        connector_number=p["connectorId"],
        status=p["connectorStatus"],
        timestamp=parse_timestamp(p["timestamp"]),
    )
    await stations.report_status(conn.ctx, conn.station_id, report)
    return Reply({})


async def authorize(conn: StationConnection, p: dict[str, Any]) -> Reply:
    verdict = await authorization.authorize(conn.ctx, conn.station_id, p["idToken"]["idToken"])
    return Reply({"idTokenInfo": id_token_info(verdict)})


# seqNo is stored as a 64-bit integer; JSON readers turn anything beyond 64 bits into a float
_MAX_SEQ_NO = 2**63 - 1


async def transaction_event(conn: StationConnection, p: dict[str, Any]) -> Reply:
    seq_no = p["seqNo"]
    if not 0 <= seq_no <= _MAX_SEQ_NO or seq_no != int(seq_no):
        raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, f"seqNo {seq_no} is out of range")
    info = p["transactionInfo"]
    evse = p.get("evse") or {}
    token = p.get("idToken")
    report = TransactionEventReport(
        event_type=p["eventType"],
        transaction_id=info["transactionId"],
        seq_no=int(seq_no),
        trigger_reason=p["triggerReason"],
        timestamp=parse_timestamp(p["timestamp"]),
        offline=p.get("offline", False),
        evse_number=evse.get("id"),
        connector_number=evse.get("connectorId"),
        token_uid=None if token is None else token["idToken"],
        token_type=None if token is None else token["type"],
        remote_start_id=info.get("remoteStartId"),
        reservation_id=p.get("reservationId"),
        charging_state=info.get("chargingState"),
        stopped_reason=info.get("stoppedReason"),
        samples=samples(p.get("meterValue", [])),
        payload=p,
    )
    result = await apply_event(conn.ctx, conn.station_id, report)
    reply: dict[str, Any] = {}
    if result.verdict is not None:
        reply["idTokenInfo"] = id_token_info(result.verdict)
    after = None
    if result.refused_while_running:
        ctx, session_id = conn.ctx, result.session_id

        async def enforce() -> None:
            await station_setup.stop_if_still_running(ctx, session_id)

        after = enforce
    return Reply(reply, after)


async def meter_values(conn: StationConnection, p: dict[str, Any]) -> Reply:
    evse_id = p["evseId"]
    report = transactions.MeterReport(
        evse_number=evse_id,
        connector_number=1 if evse_id > 0 else 0,
        transaction_id=None,
        samples=samples(p["meterValue"]),
    )
    await transactions.record_meter_values(conn.ctx, conn.station_id, report)
    return Reply({})


async def notify_report(conn: StationConnection, p: dict[str, Any]) -> Reply:
    problem = report_part_problem(p["requestId"], p["seqNo"])
    if problem is not None:  # before anything is stored
        raise OcppError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, f"NotifyReport: {problem}")
    await device_model.store_report(
        conn.ctx,
        conn.station_id,
        p["requestId"],
        p["seqNo"],
        p.get("tbc", False),
        report_values(p.get("reportData", [])),
    )
    return Reply({})


async def sign_certificate(conn: StationConnection, p: dict[str, Any]) -> Reply:
    # No certificate authority is configured: Rejected is the answer the spec allows.
    await stations.record_event(
        conn.ctx, conn.station_id, "certificate_signing_refused", certificate_type=p.get("certificateType")
    )
    return Reply({"status": "Rejected", "statusInfo": {"reasonCode": "NoCA"}})


async def get_15118_ev_certificate(conn: StationConnection, p: dict[str, Any]) -> Reply:
    # Plug & Charge needs a contract certificate pool (a V2G PKI); until then: Failed.
    await stations.record_event(
        conn.ctx,
        conn.station_id,
        "ev_certificate_refused",
        action=p["action"],
        schema=p["iso15118SchemaVersion"],
    )
    return Reply({"status": "Failed", "exiResponse": "", "statusInfo": {"reasonCode": "NotSupported"}})


async def get_certificate_status(conn: StationConnection, p: dict[str, Any]) -> Reply:
    await stations.record_event(conn.ctx, conn.station_id, "certificate_status_refused")
    return Reply({"status": "Failed", "statusInfo": {"reasonCode": "NoOCSPResponder"}})


async def firmware_status(conn: StationConnection, p: dict[str, Any]) -> Reply:
    await firmware.report_status(conn.ctx, conn.station_id, p["status"], p.get("requestId"), p)
    return Reply({})


async def reservation_status_update(conn: StationConnection, p: dict[str, Any]) -> Reply:
    await reservations.report_update(
        conn.ctx, conn.station_id, p["reservationId"], p["reservationUpdateStatus"], p
    )
    return Reply({})


HANDLERS: dict[str, Handler] = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "TransactionEvent": transaction_event,
    "MeterValues": meter_values,
    "NotifyReport": notify_report,
    "DataTransfer": data_transfer,
    "NotifyEvent": recorder("notify_event"),
    "NotifyMonitoringReport": recorder("monitoring_report"),
    "SecurityEventNotification": recorder("security_event"),
    "FirmwareStatusNotification": firmware_status,
    "PublishFirmwareStatusNotification": recorder("publish_firmware_status"),
    "NotifyChargingLimit": recorder("charging_limit"),
    "ClearedChargingLimit": recorder("charging_limit_cleared"),
    "ReportChargingProfiles": recorder("charging_profiles_report"),
    # We compute no ISO 15118 schedules yet: Rejected says so, the EV charges without one.
    "NotifyEVChargingNeeds": recorder("ev_charging_needs", {"status": "Rejected"}),
    "NotifyEVChargingSchedule": recorder("ev_charging_schedule", {"status": "Accepted"}),
    "ReservationStatusUpdate": reservation_status_update,
    "NotifyDisplayMessages": recorder("display_messages"),
    "NotifyCustomerInformation": recorder("customer_information"),
    "SignCertificate": sign_certificate,
    "Get15118EVCertificate": get_15118_ev_certificate,
    "GetCertificateStatus": get_certificate_status,
    **logs.HANDLERS,
}
