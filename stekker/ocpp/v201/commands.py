"""Version-neutral station commands, spelled in OCPP 2.0.1 (and 2.1), replies made neutral."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from stekker.domain.timeutil import format_timestamp
from stekker.ocpp.charging_schedule import schedule_payload
from stekker.ocpp.outbound import Outbound, raw_call, status_of
from stekker.ocpp.v201 import logs
from stekker.ocpp.v201.tokens import id_token
from stekker.services.device_model import OCPP16_COMPONENT, VariableRef, VariableResult, VariableValue
from stekker.services.ports import CommandNotSupported, StationCommand
from stekker.services.tokens import LocalListEntry, LocalListUpdate


def _remote_start(args: dict[str, Any]) -> Outbound:
    remote_start_id = args.get("remote_start_id")
    payload: dict[str, Any] = {
        "idToken": id_token(args["id_tag"], args.get("token_type")),
        # the id the station echoes in its TransactionEvent; required by 2.0.1
        "remoteStartId": remote_start_id if remote_start_id is not None else random.randrange(1, 2**31),
    }
    if args.get("evse_number"):
        payload["evseId"] = args["evse_number"]
    if args.get("profile") is not None:
        payload["chargingProfile"] = _profile(args["profile"])

    def read(reply: dict[str, Any]) -> dict[str, Any]:
        return {"status": reply["status"], "transaction_id": reply.get("transactionId")}

    return Outbound("RequestStartTransaction", payload, read)


def _remote_stop(args: dict[str, Any]) -> Outbound:
    return Outbound("RequestStopTransaction", {"transactionId": str(args["transaction_id"])}, status_of)


def _get_local_list_version(args: dict[str, Any]) -> Outbound:
    return Outbound("GetLocalListVersion", {}, lambda r: {"version": r["versionNumber"]})


def _local_entry(entry: LocalListEntry) -> dict[str, Any]:
    item: dict[str, Any] = {"idToken": id_token(entry.uid, entry.token_type)}
    if entry.status is not None:
        info: dict[str, Any] = {"status": entry.status}
        if entry.expires_at is not None:
            info["cacheExpiryDateTime"] = format_timestamp(entry.expires_at)
        if entry.group_id:
            info["groupIdToken"] = id_token(entry.group_id, "Central")
        item["idTokenInfo"] = info
    return item


def _send_local_list(args: dict[str, Any]) -> Outbound:
    update: LocalListUpdate = args["update"]
    payload: dict[str, Any] = {
        "versionNumber": update.version,
        "updateType": "Full" if update.full else "Differential",
    }
    if update.entries:  # the schema wants at least one entry when the list is given
        payload["localAuthorizationList"] = [_local_entry(e) for e in update.entries]
    return Outbound("SendLocalList", payload, status_of)


# ---- device model -----------------------------------------------------------------------------


def _component(ref: VariableRef) -> dict[str, Any]:
    if ref.component in ("", OCPP16_COMPONENT):
        raise CommandNotSupported(f"{ref.label}: a 2.0.1 station needs a component, e.g. AuthCtrlr")
    component: dict[str, Any] = {"name": ref.component}
    if ref.component_instance:
        component["instance"] = ref.component_instance
    if ref.evse_number:
        evse: dict[str, Any] = {"id": ref.evse_number}
        if ref.connector_number:
            evse["connectorId"] = ref.connector_number
        component["evse"] = evse
    return component


def _variable(ref: VariableRef) -> dict[str, Any]:
    variable: dict[str, Any] = {"name": ref.variable}
    if ref.variable_instance:
        variable["instance"] = ref.variable_instance
    return variable


def ref_from(component: dict[str, Any], variable: dict[str, Any], attribute_type: str | None) -> VariableRef:
    """The neutral reference of a component/variable pair as a 2.0.1 message spells it."""
    evse = component.get("evse") or {}
    return VariableRef(
        component=component["name"],
        variable=variable["name"],
        component_instance=component.get("instance", ""),
        variable_instance=variable.get("instance", ""),
        evse_number=evse.get("id", 0),
        connector_number=evse.get("connectorId", 0),
        attribute_type=attribute_type or "Actual",
    )


def _status_reason(result: dict[str, Any]) -> str | None:
    info = result.get("attributeStatusInfo") or {}
    parts = [info.get("reasonCode"), info.get("additionalInfo")]
    return ": ".join(p for p in parts if p) or None


def _get_variables(args: dict[str, Any]) -> Outbound:
    refs: list[VariableRef] = args["items"]
    if not refs:
        raise CommandNotSupported("name at least one component and variable (or ask for a report)")
    data = [
        {"component": _component(r), "variable": _variable(r), "attributeType": r.attribute_type}
        for r in refs
    ]

    def read(reply: dict[str, Any]) -> dict[str, Any]:
        results = [
            VariableResult(
                ref_from(r["component"], r["variable"], r.get("attributeType")),
                r["attributeStatus"],
                r.get("attributeValue"),
                _status_reason(r),
            )
            for r in reply["getVariableResult"]
        ]
        return {"results": results}

    return Outbound("GetVariables", {"getVariableData": data}, read)


def _set_variables(args: dict[str, Any]) -> Outbound:
    changes: list[tuple[VariableRef, str]] = args["items"]
    if not changes:
        raise CommandNotSupported("name at least one variable to set")
    data: list[dict[str, Any]] = [
        {
            "component": _component(ref),
            "variable": _variable(ref),
            "attributeType": ref.attribute_type,
            "attributeValue": value,
        }
        for ref, value in changes
    ]
    sent = {ref_from(d["component"], d["variable"], d["attributeType"]): d["attributeValue"] for d in data}

    def read(reply: dict[str, Any]) -> dict[str, Any]:
        results = []
        for r in reply["setVariableResult"]:
            ref = ref_from(r["component"], r["variable"], r.get("attributeType"))
            status = r["attributeStatus"]
            results.append(
                VariableResult(
                    ref, status, sent.get(ref) if status == "Accepted" else None, _status_reason(r)
                )
            )
        return {"results": results}

    return Outbound("SetVariables", {"setVariableData": data}, read)


def _get_base_report(args: dict[str, Any]) -> Outbound:
    payload = {"requestId": args["request_id"], "reportBase": args.get("report_base", "FullInventory")}
    return Outbound("GetBaseReport", payload, status_of)


def _limit(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except InvalidOperation:
        return None


def report_values(report_data: list[dict[str, Any]]) -> list[VariableValue]:
    """NotifyReport's reportData as neutral values: one per variable attribute."""
    values: list[VariableValue] = []
    for item in report_data:
        characteristics = item.get("variableCharacteristics") or {}
        for attribute in item["variableAttribute"]:
            values.append(
                VariableValue(
                    ref_from(item["component"], item["variable"], attribute.get("type")),
                    attribute.get("value"),
                    mutability=attribute.get("mutability", "ReadWrite"),
                    data_type=characteristics.get("dataType"),
                    unit=characteristics.get("unit"),
                    min_limit=_limit(characteristics.get("minLimit")),
                    max_limit=_limit(characteristics.get("maxLimit")),
                    values_list=characteristics.get("valuesList"),
                )
            )
    return values


# ---- station functions ----------------------------------------------------------------------


def _reset(args: dict[str, Any]) -> Outbound:
    # Soft waits for idle (never cuts a driver off); Hard is now, as 1.6 Hard.
    payload: dict[str, Any] = {"type": "OnIdle" if args["type"] == "Soft" else "Immediate"}
    if args.get("evse_number") is not None:
        payload["evseId"] = args["evse_number"]
    return Outbound("Reset", payload, status_of)


def _evse(args: dict[str, Any]) -> dict[str, Any]:
    evse: dict[str, Any] = {"id": args["evse_number"]}
    if args.get("connector_number") is not None:
        evse["connectorId"] = args["connector_number"]
    return evse


def _change_availability(args: dict[str, Any]) -> Outbound:
    payload: dict[str, Any] = {"operationalStatus": "Operative" if args["operative"] else "Inoperative"}
    if args.get("evse_number") is not None:
        payload["evse"] = _evse(args)
    return Outbound("ChangeAvailability", payload, status_of)


def _unlock_connector(args: dict[str, Any]) -> Outbound:
    payload = {"evseId": args["evse_number"], "connectorId": args.get("connector_number", 1)}
    return Outbound("UnlockConnector", payload, status_of)


def _trigger_message(args: dict[str, Any]) -> Outbound:
    message = args["message"]
    # the upload status is LogStatusNotification in 2.0.1
    requested = "LogStatusNotification" if message == "DiagnosticsStatusNotification" else message
    payload: dict[str, Any] = {"requestedMessage": requested}
    if args.get("evse_number") is not None:
        payload["evse"] = _evse(args)
    return Outbound("TriggerMessage", payload, status_of)


def _get_transaction_status(args: dict[str, Any]) -> Outbound:
    payload: dict[str, Any] = {}
    if args.get("transaction_id") is not None:
        payload["transactionId"] = str(args["transaction_id"])

    def read(reply: dict[str, Any]) -> dict[str, Any]:
        return {"ongoing": reply.get("ongoingIndicator"), "messages_in_queue": reply["messagesInQueue"]}

    return Outbound("GetTransactionStatus", payload, read)


def _data_transfer(args: dict[str, Any]) -> Outbound:
    payload: dict[str, Any] = {"vendorId": args["vendor_id"]}
    if args.get("message_id") is not None:
        payload["messageId"] = args["message_id"]
    if args.get("data") is not None:
        payload["data"] = args["data"]
    return Outbound("DataTransfer", payload, lambda r: {"status": r["status"], "data": r.get("data")})


def _update_firmware(args: dict[str, Any]) -> Outbound:
    firmware: dict[str, Any] = {
        "location": args["location"],
        "retrieveDateTime": format_timestamp(args["retrieve_at"]),
    }
    if args.get("install_at") is not None:
        firmware["installDateTime"] = format_timestamp(args["install_at"])
    if args.get("signature") is not None:
        firmware["signingCertificate"] = args["signing_certificate"]
        firmware["signature"] = args["signature"]
    payload: dict[str, Any] = {"requestId": args["request_id"], "firmware": firmware}
    if args.get("retries") is not None:
        payload["retries"] = args["retries"]
    if args.get("retry_interval") is not None:
        payload["retryInterval"] = args["retry_interval"]
    return Outbound("UpdateFirmware", payload, status_of)


def _reserve_now(args: dict[str, Any]) -> Outbound:
    payload: dict[str, Any] = {
        "id": args["reservation_id"],
        "expiryDateTime": format_timestamp(args["expires_at"]),
        "idToken": id_token(args["token_uid"], args.get("token_type")),
    }
    if args.get("evse_number") is not None:
        payload["evseId"] = args["evse_number"]
    return Outbound("ReserveNow", payload, status_of)


def _cancel_reservation(args: dict[str, Any]) -> Outbound:
    return Outbound("CancelReservation", {"reservationId": args["reservation_id"]}, status_of)


def _profile(p: dict[str, Any]) -> dict[str, Any]:
    """chargingProfile of SetChargingProfile and of RequestStartTransaction."""
    profile: dict[str, Any] = {
        "id": p["id"],
        "stackLevel": p["stack_level"],
        "chargingProfilePurpose": p["purpose"],
        "chargingProfileKind": p["kind"],
        # one schedule; its id is the profile's (2.0.1 numbers schedules for ISO 15118)
        "chargingSchedule": [{"id": p["id"], **schedule_payload(p["schedule"])}],
    }
    if p.get("recurrency") is not None:
        profile["recurrencyKind"] = p["recurrency"]
    for key, wire in (("valid_from", "validFrom"), ("valid_to", "validTo")):
        if p.get(key) is not None:
            profile[wire] = format_timestamp(p[key])
    if p.get("transaction_id") is not None:
        profile["transactionId"] = p["transaction_id"]
    return profile


def _set_charging_profile(args: dict[str, Any]) -> Outbound:
    payload = {"evseId": args["evse_number"], "chargingProfile": _profile(args["profile"])}
    return Outbound("SetChargingProfile", payload, status_of)


def _clear_charging_profile(args: dict[str, Any]) -> Outbound:
    payload: dict[str, Any] = {}
    if args.get("profile_id") is not None:
        payload["chargingProfileId"] = args["profile_id"]
    criteria: dict[str, Any] = {}
    if args.get("evse_number") is not None:
        criteria["evseId"] = args["evse_number"]
    if args.get("purpose") is not None:
        criteria["chargingProfilePurpose"] = args["purpose"]
    if args.get("stack_level") is not None:
        criteria["stackLevel"] = args["stack_level"]
    if criteria:
        payload["chargingProfileCriteria"] = criteria
    return Outbound("ClearChargingProfile", payload, status_of)


def _composite(reply: dict[str, Any]) -> dict[str, Any]:
    schedule = reply.get("schedule") or {}
    return {
        "status": reply["status"],
        "evse_number": schedule.get("evseId"),
        "start_at": schedule.get("scheduleStart"),
        "unit": schedule.get("chargingRateUnit"),
        "duration": schedule.get("duration"),
        "periods": [
            {"start": p["startPeriod"], "limit": p["limit"], "phases": p.get("numberPhases")}
            for p in schedule.get("chargingSchedulePeriod", [])
        ],
    }


def _get_charging_profiles(args: dict[str, Any]) -> Outbound:
    criterion: dict[str, Any] = {}
    if args.get("purpose") is not None:
        criterion["chargingProfilePurpose"] = args["purpose"]
    if args.get("stack_level") is not None:
        criterion["stackLevel"] = args["stack_level"]
    if args.get("profile_ids"):
        criterion["chargingProfileId"] = args["profile_ids"]
    payload: dict[str, Any] = {"requestId": args["request_id"], "chargingProfile": criterion}
    if args.get("evse_number") is not None:
        payload["evseId"] = args["evse_number"]
    # the profiles follow in ReportChargingProfiles messages, kept on the station's timeline
    return Outbound(
        "GetChargingProfiles", payload, lambda r: {"status": r["status"], "request_id": args["request_id"]}
    )


def _get_composite_schedule(args: dict[str, Any]) -> Outbound:
    payload: dict[str, Any] = {"evseId": args["evse_number"], "duration": args["duration"]}
    if args.get("unit") is not None:
        payload["chargingRateUnit"] = args["unit"]
    return Outbound("GetCompositeSchedule", payload, _composite)


def translations(protocol: str) -> Callable[[StationCommand], Outbound]:
    """The translator for 2.0.1 or 2.1 (the commands used here are spelled alike in both)."""
    table: dict[str, Callable[[dict[str, Any]], Outbound]] = {
        "remote_start": _remote_start,
        "remote_stop": _remote_stop,
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
        "get_transaction_status": _get_transaction_status,
        "clear_cache": lambda args: Outbound("ClearCache", {}, status_of),
        "data_transfer": _data_transfer,
        "update_firmware": _update_firmware,
        "reserve_now": _reserve_now,
        "cancel_reservation": _cancel_reservation,
        "set_charging_profile": _set_charging_profile,
        "clear_charging_profile": _clear_charging_profile,
        "get_composite_schedule": _get_composite_schedule,
        "get_charging_profiles": _get_charging_profiles,
        "raw": lambda args: raw_call(protocol, args),
    }

    def translate(command: StationCommand) -> Outbound:
        build = table.get(command.name)
        if build is None:
            raise CommandNotSupported(f"{command.name} is not available for OCPP {protocol[4:]} stations")
        return build(command.args)

    return translate
