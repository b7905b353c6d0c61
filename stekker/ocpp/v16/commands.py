"""Version-neutral station commands, spelled in OCPP 1.6, and their replies made neutral."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from stekker.domain.timeutil import format_timestamp
from stekker.ocpp.charging_schedule import schedule_payload
from stekker.ocpp.outbound import Outbound, OutboundSeries, raw_call, status_of
from stekker.ocpp.protocol import OCPP16
from stekker.ocpp.v16 import logs
from stekker.services.device_model import OCPP16_COMPONENT, VariableRef, VariableResult, VariableValue
from stekker.services.ports import CommandNotSupported, StationCallError, StationCommand
from stekker.services.tokens import LocalListEntry, LocalListUpdate

_MAX_ID_TAG = 20


def _local_entry(entry: LocalListEntry) -> dict[str, Any]:
    item: dict[str, Any] = {"idTag": entry.uid}
    if entry.status is not None:
        info: dict[str, Any] = {"status": entry.status}
        if entry.expires_at is not None:
            info["expiryDate"] = format_timestamp(entry.expires_at)
        if entry.group_id:
            info["parentIdTag"] = entry.group_id
        item["idTagInfo"] = info
    return item


def _remote_start(args: dict[str, Any]) -> Outbound:
    payload: dict[str, Any] = {"idTag": args["id_tag"]}
    if args.get("evse_number"):
        payload["connectorId"] = args["evse_number"]
    if args.get("profile") is not None:
        payload["chargingProfile"] = _profile(args["profile"])
    return Outbound("RemoteStartTransaction", payload, status_of)


def _remote_stop(args: dict[str, Any]) -> Outbound:
    try:
        transaction_id = int(args["transaction_id"])
    except ValueError:
        raise CommandNotSupported("OCPP 1.6 transaction ids are integers") from None
    return Outbound("RemoteStopTransaction", {"transactionId": transaction_id}, status_of)


def _change_configuration(args: dict[str, Any]) -> Outbound:
    return Outbound("ChangeConfiguration", {"key": args["key"], "value": str(args["value"])}, status_of)


def _get_local_list_version(args: dict[str, Any]) -> Outbound:
    return Outbound("GetLocalListVersion", {}, lambda r: {"version": r["listVersion"]})


def _send_local_list(args: dict[str, Any]) -> Outbound:
    update: LocalListUpdate = args["update"]
    payload = {
        "listVersion": update.version,
        "updateType": "Full" if update.full else "Differential",
        # 1.6 idTags are at most 20 characters: longer (2.0.1) tokens cannot be presented here
        "localAuthorizationList": [_local_entry(e) for e in update.entries if len(e.uid) <= _MAX_ID_TAG],
    }
    return Outbound("SendLocalList", payload, status_of)


# ---- configuration keys as the neutral device model ----------------------------------------


def _key_ref(key: str) -> VariableRef:
    return VariableRef(OCPP16_COMPONENT, key)


def _configuration_values(reply: dict[str, Any]) -> list[VariableValue]:
    return [
        VariableValue(
            _key_ref(entry["key"]),
            entry.get("value"),
            mutability="ReadOnly" if entry["readonly"] else "ReadWrite",
        )
        for entry in reply.get("configurationKey", [])
    ]


def _check_component(refs: list[VariableRef]) -> None:
    for ref in refs:
        if ref.component not in ("", OCPP16_COMPONENT):
            raise CommandNotSupported(
                f"{ref.label}: an OCPP 1.6 station has configuration keys, not components "
                f"(use component {OCPP16_COMPONENT!r} or none)"
            )


def _get_variables(args: dict[str, Any]) -> Outbound:
    refs: list[VariableRef] = args["items"]
    _check_component(refs)
    keys = [ref.variable for ref in refs]

    def read(reply: dict[str, Any]) -> dict[str, Any]:
        values = {v.ref.variable: v.value for v in _configuration_values(reply)}
        unknown = set(reply.get("unknownKey", []))
        if not keys:
            return {"results": [VariableResult(_key_ref(k), "Accepted", v) for k, v in values.items()]}
        results = []
        for key in keys:
            if key in values:
                results.append(VariableResult(_key_ref(key), "Accepted", values[key]))
            else:
                reason = "unknown key" if key in unknown else "not in the station's answer"
                results.append(VariableResult(_key_ref(key), "UnknownVariable", reason=reason))
        return {"results": results}

    return Outbound("GetConfiguration", {"key": keys} if keys else {}, read)


def _set_variables(args: dict[str, Any]) -> OutboundSeries:
    """1.6 changes one key per call: a series, one ChangeConfiguration each."""
    changes: list[tuple[VariableRef, str]] = args["items"]
    _check_component([ref for ref, _ in changes])

    def step(ref: VariableRef, value: str) -> Outbound:
        def read(reply: dict[str, Any]) -> dict[str, Any]:
            status = reply["status"]
            return {
                "result": VariableResult(
                    _key_ref(ref.variable), status, value if status == "Accepted" else None
                )
            }

        def refused(exc: StationCallError) -> dict[str, Any]:
            return {"result": VariableResult(_key_ref(ref.variable), "Rejected", reason=str(exc))}

        return Outbound("ChangeConfiguration", {"key": ref.variable, "value": value}, read, refused)

    return OutboundSeries(
        [step(ref, value) for ref, value in changes],
        lambda replies: {"results": [r["result"] for r in replies]},
    )


def _get_base_report(args: dict[str, Any]) -> Outbound:
    """1.6 has no reports: the full GetConfiguration answer is the report."""
    return Outbound(
        "GetConfiguration", {}, lambda r: {"status": "Accepted", "variables": _configuration_values(r)}
    )


# ---- station functions ----------------------------------------------------------------------


def _one_connector(args: dict[str, Any], what: str) -> None:
    if args.get("connector_number") not in (None, 1):
        raise CommandNotSupported(
            f"{what}: an OCPP 1.6 connector is one plug: give evse_number (its connectorId) only"
        )


def _reset(args: dict[str, Any]) -> Outbound:
    if args.get("evse_number") is not None:
        raise CommandNotSupported("OCPP 1.6 resets the whole station only: leave evse_number out")
    return Outbound("Reset", {"type": args["type"]}, status_of)


def _change_availability(args: dict[str, Any]) -> Outbound:
    _one_connector(args, "change_availability")
    payload = {
        "connectorId": args.get("evse_number") or 0,  # 0: the station as a whole
        "type": "Operative" if args["operative"] else "Inoperative",
    }
    return Outbound("ChangeAvailability", payload, status_of)


def _unlock_connector(args: dict[str, Any]) -> Outbound:
    _one_connector(args, "unlock_connector")
    return Outbound("UnlockConnector", {"connectorId": args["evse_number"]}, status_of)


def _trigger_message(args: dict[str, Any]) -> Outbound:
    message = args["message"]
    if message == "TransactionEvent":
        raise CommandNotSupported(
            "OCPP 1.6 has no TransactionEvent: trigger MeterValues for a running transaction"
        )
    # the upload status is DiagnosticsStatusNotification in 1.6
    requested = "DiagnosticsStatusNotification" if message == "LogStatusNotification" else message
    payload: dict[str, Any] = {"requestedMessage": requested}
    if args.get("evse_number") is not None:
        payload["connectorId"] = args["evse_number"]
    return Outbound("TriggerMessage", payload, status_of)


def _data_transfer(args: dict[str, Any]) -> Outbound:
    payload: dict[str, Any] = {"vendorId": args["vendor_id"]}
    if args.get("message_id") is not None:
        payload["messageId"] = args["message_id"]
    data = args.get("data")
    if data is not None:
        # 1.6 data is text: structured data travels as JSON text
        payload["data"] = data if isinstance(data, str) else orjson.dumps(data).decode()
    return Outbound("DataTransfer", payload, lambda r: {"status": r["status"], "data": r.get("data")})


def _retries(args: dict[str, Any], payload: dict[str, Any]) -> None:
    if args.get("retries") is not None:
        payload["retries"] = args["retries"]
    if args.get("retry_interval") is not None:
        payload["retryInterval"] = args["retry_interval"]


def _update_firmware(args: dict[str, Any]) -> Outbound:
    if args.get("signature") is not None:
        # the security extension's signed update carries the requestId we track it by
        firmware: dict[str, Any] = {
            "location": args["location"],
            "retrieveDateTime": format_timestamp(args["retrieve_at"]),
            "signingCertificate": args["signing_certificate"],
            "signature": args["signature"],
        }
        if args.get("install_at") is not None:
            firmware["installDateTime"] = format_timestamp(args["install_at"])
        payload: dict[str, Any] = {"requestId": args["request_id"], "firmware": firmware}
        _retries(args, payload)
        return Outbound("SignedUpdateFirmware", payload, status_of)
    if args.get("install_at") is not None:
        raise CommandNotSupported("an OCPP 1.6 UpdateFirmware has no install time (only a signed update)")
    payload = {"location": args["location"], "retrieveDate": format_timestamp(args["retrieve_at"])}
    _retries(args, payload)
    # an UpdateFirmware reply is empty: the station took the request
    return Outbound("UpdateFirmware", payload, lambda r: {"status": "Accepted"})


def _reserve_now(args: dict[str, Any]) -> Outbound:
    if len(args["token_uid"]) > _MAX_ID_TAG:
        raise CommandNotSupported(f"OCPP 1.6 idTags are at most {_MAX_ID_TAG} characters")
    payload = {
        "connectorId": args.get("evse_number") or 0,  # 0: any connector
        "expiryDate": format_timestamp(args["expires_at"]),
        "idTag": args["token_uid"],
        "reservationId": args["reservation_id"],
    }
    return Outbound("ReserveNow", payload, status_of)


def _cancel_reservation(args: dict[str, Any]) -> Outbound:
    return Outbound("CancelReservation", {"reservationId": args["reservation_id"]}, status_of)


_PURPOSE = {"ChargingStationMaxProfile": "ChargePointMaxProfile"}


def _profile(p: dict[str, Any]) -> dict[str, Any]:
    """csChargingProfiles (SetChargingProfile) and chargingProfile (RemoteStartTransaction)."""
    profile: dict[str, Any] = {
        "chargingProfileId": p["id"],
        "stackLevel": p["stack_level"],
        "chargingProfilePurpose": _PURPOSE.get(p["purpose"], p["purpose"]),
        "chargingProfileKind": p["kind"],
        "chargingSchedule": schedule_payload(p["schedule"]),
    }
    if p.get("recurrency") is not None:
        profile["recurrencyKind"] = p["recurrency"]
    for key, wire in (("valid_from", "validFrom"), ("valid_to", "validTo")):
        if p.get(key) is not None:
            profile[wire] = format_timestamp(p[key])
    if p.get("transaction_id") is not None:
        try:
            profile["transactionId"] = int(p["transaction_id"])
        except ValueError:
            raise CommandNotSupported("OCPP 1.6 transaction ids are integers") from None
    return profile


def _set_charging_profile(args: dict[str, Any]) -> Outbound:
    payload = {"connectorId": args["evse_number"], "csChargingProfiles": _profile(args["profile"])}
    return Outbound("SetChargingProfile", payload, status_of)


def _clear_charging_profile(args: dict[str, Any]) -> Outbound:
    payload: dict[str, Any] = {}
    if args.get("profile_id") is not None:
        payload["id"] = args["profile_id"]
    if args.get("evse_number") is not None:
        payload["connectorId"] = args["evse_number"]
    if args.get("purpose") is not None:
        payload["chargingProfilePurpose"] = _PURPOSE.get(args["purpose"], args["purpose"])
    if args.get("stack_level") is not None:
        payload["stackLevel"] = args["stack_level"]
    return Outbound("ClearChargingProfile", payload, status_of)


def _composite(reply: dict[str, Any]) -> dict[str, Any]:
    schedule = reply.get("chargingSchedule") or {}
    return {
        "status": reply["status"],
        "evse_number": reply.get("connectorId"),
        "start_at": reply.get("scheduleStart") or schedule.get("startSchedule"),
        "unit": schedule.get("chargingRateUnit"),
        "duration": schedule.get("duration"),
        "periods": [
            {"start": p["startPeriod"], "limit": p["limit"], "phases": p.get("numberPhases")}
            for p in schedule.get("chargingSchedulePeriod", [])
        ],
    }


def _get_composite_schedule(args: dict[str, Any]) -> Outbound:
    payload: dict[str, Any] = {"connectorId": args["evse_number"], "duration": args["duration"]}
    if args.get("unit") is not None:
        payload["chargingRateUnit"] = args["unit"]
    return Outbound("GetCompositeSchedule", payload, _composite)


_TRANSLATIONS: dict[str, Callable[[dict[str, Any]], Outbound | OutboundSeries]] = {
    "remote_start": _remote_start,
    "remote_stop": _remote_stop,
    "change_configuration": _change_configuration,
    "get_local_list_version": _get_local_list_version,
    "send_local_list": _send_local_list,
    "get_variables": _get_variables,
    "set_variables": _set_variables,
    "get_base_report": _get_base_report,
    "get_diagnostics": logs.get_diagnostics,
    "reset": _reset,
    "change_availability": _change_availability,
    "unlock_connector": _unlock_connector,
    "trigger_message": _trigger_message,
    "clear_cache": lambda args: Outbound("ClearCache", {}, status_of),
    "data_transfer": _data_transfer,
    "update_firmware": _update_firmware,
    "reserve_now": _reserve_now,
    "cancel_reservation": _cancel_reservation,
    "set_charging_profile": _set_charging_profile,
    "clear_charging_profile": _clear_charging_profile,
    "get_composite_schedule": _get_composite_schedule,
    "raw": lambda args: raw_call(OCPP16, args),
}


def translate(command: StationCommand) -> Outbound | OutboundSeries:
    build = _TRANSLATIONS.get(command.name)
    if build is None:
        raise CommandNotSupported(f"{command.name} is not available for OCPP 1.6 stations")
    return build(command.args)
