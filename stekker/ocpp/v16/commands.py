"""Version-neutral station commands, spelled in OCPP 1.6, and their replies made neutral."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stekker.domain.timeutil import format_timestamp
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
    "raw": lambda args: raw_call(OCPP16, args),
}


def translate(command: StationCommand) -> Outbound | OutboundSeries:
    build = _TRANSLATIONS.get(command.name)
    if build is None:
        raise CommandNotSupported(f"{command.name} is not available for OCPP 1.6 stations")
    return build(command.args)
