"""Version-neutral station commands, spelled in OCPP 1.6, and their replies made neutral."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stekker.domain.timeutil import format_timestamp
from stekker.ocpp.protocol import OCPP16, OcppError
from stekker.ocpp.schemas import known_actions, validate
from stekker.services.ports import CommandNotSupported, StationCallError, StationCommand
from stekker.services.tokens import LocalListEntry, LocalListUpdate


@dataclass(frozen=True, slots=True)
class Outbound:
    """A CALL to send, and how to read its reply."""

    action: str
    payload: dict[str, Any]
    read: Callable[[dict[str, Any]], dict[str, Any]]


def _status(reply: dict[str, Any]) -> dict[str, Any]:
    return {"status": reply["status"]}


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
    return Outbound("RemoteStartTransaction", payload, _status)


def _remote_stop(args: dict[str, Any]) -> Outbound:
    try:
        transaction_id = int(args["transaction_id"])
    except ValueError:
        raise CommandNotSupported("OCPP 1.6 transaction ids are integers") from None
    return Outbound("RemoteStopTransaction", {"transactionId": transaction_id}, _status)


def _change_configuration(args: dict[str, Any]) -> Outbound:
    return Outbound("ChangeConfiguration", {"key": args["key"], "value": str(args["value"])}, _status)


def _get_local_list_version(args: dict[str, Any]) -> Outbound:
    return Outbound("GetLocalListVersion", {}, lambda r: {"version": r["listVersion"]})


def _send_local_list(args: dict[str, Any]) -> Outbound:
    update: LocalListUpdate = args["update"]
    payload = {
        "listVersion": update.version,
        "updateType": "Full" if update.full else "Differential",
        "localAuthorizationList": [_local_entry(e) for e in update.entries],
    }
    return Outbound("SendLocalList", payload, _status)


def _raw(args: dict[str, Any]) -> Outbound:
    """Any 1.6 action by name, checked against the schema before it leaves (operator tooling)."""
    action, payload = args["action"], args.get("payload", {})
    if action not in known_actions(OCPP16):
        raise CommandNotSupported(f"OCPP 1.6 has no action {action!r}")
    try:
        validate(OCPP16, action, payload)
    except OcppError as exc:
        raise StationCallError("NotSent", f"payload rejected before sending: {exc.description}") from None
    return Outbound(action, payload, lambda r: r)


_TRANSLATIONS: dict[str, Callable[[dict[str, Any]], Outbound]] = {
    "remote_start": _remote_start,
    "remote_stop": _remote_stop,
    "change_configuration": _change_configuration,
    "get_local_list_version": _get_local_list_version,
    "send_local_list": _send_local_list,
    "raw": _raw,
}


def translate(command: StationCommand) -> Outbound:
    build = _TRANSLATIONS.get(command.name)
    if build is None:
        raise CommandNotSupported(f"{command.name} is not available for OCPP 1.6 stations")
    return build(command.args)
