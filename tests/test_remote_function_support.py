"""What the console offers a station (`stekker.domain.remote_functions`) is what the gateway can
send it: every function and option the table offers a version translates to that version's
OCPP message, and every one it withholds is refused by the gateway (CommandNotSupported). A
function added to the gateway or the catalogue without the table knowing fails here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stekker.domain import remote_functions as support
from stekker.ocpp.v16.commands import translate as translate16
from stekker.ocpp.v201.commands import translations
from stekker.services.device_model import OCPP16_COMPONENT, VariableRef
from stekker.services.functions import FUNCTIONS
from stekker.services.ports import CommandNotSupported, StationCommand

Translate = Callable[[StationCommand], Any]
VERSIONS: dict[str, Translate] = {
    support.OCPP16: translate16,
    support.OCPP201: translations(support.OCPP201),
    support.OCPP21: translations(support.OCPP21),
}
KEY = VariableRef(OCPP16_COMPONENT, "HeartbeatInterval")

# The command(s) each function sends, with arguments it could be given.
SENT: dict[str, list[StationCommand]] = {
    "reset": [StationCommand("reset", {"type": "Soft"})],
    "change_availability": [StationCommand("change_availability", {"operative": False})],
    "unlock_connector": [StationCommand("unlock_connector", {"evse_number": 1})],
    "trigger_message": [StationCommand("trigger_message", {"message": "Heartbeat"})],
    "get_variables": [
        StationCommand("get_variables", {"items": [VariableRef("OCPPCommCtrlr", "HeartbeatInterval")]})
    ],
    "set_variables": [StationCommand("set_variables", {"items": [(VariableRef("OCPPCommCtrlr", "X"), "1")]})],
    # a 1.6 key is read and changed as a variable without a component
    "get_configuration": [StationCommand("get_variables", {"items": [KEY]})],
    "change_configuration": [StationCommand("set_variables", {"items": [(KEY, "60")]})],
    "get_base_report": [StationCommand("get_base_report", {"report_base": "FullInventory", "request_id": 1})],
    "get_local_list_version": [StationCommand("get_local_list_version", {})],
    "clear_cache": [StationCommand("clear_cache", {})],
    "data_transfer": [StationCommand("data_transfer", {"vendor_id": "x"})],
    "cancel_reservation": [StationCommand("cancel_reservation", {"reservation_id": 1})],
    "clear_charging_profile": [StationCommand("clear_charging_profile", {"profile_id": 1})],
    "get_composite_schedule": [StationCommand("get_composite_schedule", {"evse_number": 0, "duration": 60})],
    "get_charging_profiles": [StationCommand("get_charging_profiles", {"request_id": 1})],
    "raw": [StationCommand("raw", {"action": "Heartbeat", "payload": {}})],
}
# 2.x variables are 1.6 keys on a 1.6 station (GetConfiguration, ChangeConfiguration)
ON_16_AS_KEYS = {
    "get_variables": [StationCommand("get_variables", {"items": [KEY]})],
    "set_variables": [StationCommand("set_variables", {"items": [(KEY, "60")]})],
}
# Functions whose messages need more than a sample (a list, a URL, a profile): the gateway
# has them for every version, which the table says too.
EVERY_VERSION = {
    "sync_local_list",
    "update_firmware",
    "reserve_now",
    "set_charging_profile",
    "get_diagnostics",
    "remote_start",
    "remote_stop",
}


def sendable(translate: Translate, command: StationCommand) -> bool:
    try:
        translate(command)
    except CommandNotSupported:
        return False
    return True


def test_every_function_is_in_the_table() -> None:
    assert set(FUNCTIONS) <= set(SENT) | EVERY_VERSION


@pytest.mark.parametrize("version", sorted(VERSIONS))
@pytest.mark.parametrize("name", sorted(SENT))
def test_what_is_offered_is_what_the_gateway_sends(version: str, name: str) -> None:
    translate = VERSIONS[version]
    commands = SENT[name]
    if version == support.OCPP16 and name in ON_16_AS_KEYS:
        commands = ON_16_AS_KEYS[name]
    assert all(sendable(translate, c) for c in commands) is support.offers(version, name)


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_the_options_of_each_version(version: str) -> None:
    translate = VERSIONS[version]
    for name in EVERY_VERSION:
        assert support.offers(version, name)
    every = ("BootNotification", "Heartbeat", "StatusNotification", "MeterValues", "TransactionEvent")
    for message in {*every, "FirmwareStatusNotification", "LogStatusNotification"}:
        command = StationCommand("trigger_message", {"message": message})
        assert sendable(translate, command) is (message in support.trigger_messages(version)), message
    one_evse = StationCommand("reset", {"type": "Hard", "evse_number": 1})
    assert sendable(translate, one_evse) is support.resets_one_evse(version)
    connector = StationCommand(
        "change_availability", {"operative": False, "evse_number": 1, "connector_number": 2}
    )
    assert sendable(translate, connector) is support.addresses_connectors(version)


def test_an_unknown_version_is_offered_what_every_version_has() -> None:
    assert not support.offers(None, "get_configuration") and not support.offers(None, "get_charging_profiles")
    assert support.offers(None, "reset") and not support.resets_one_evse(None)
    assert "TransactionEvent" not in support.trigger_messages(None)
    assert "Heartbeat" in support.trigger_messages(None)


def test_what_a_function_does_to_running_sessions() -> None:
    impact = support.session_impact
    assert impact("remote_stop", {"session_id": 1}, support.OCPP201) == "ends_now"
    assert impact("reset", {"type": "Hard"}, support.OCPP201) == "ends_now"
    assert impact("reset", {"type": "Soft"}, support.OCPP16) == "ends_gracefully"
    assert impact("reset", {"type": "Soft"}, support.OCPP201) == "waits_for_sessions"
    assert impact("reset", {"type": "Soft"}, None) == "ends_gracefully"  # the harsher, unknown version
    assert impact("unlock_connector", {"evse_number": 1}, support.OCPP16) == "ends_now"
    assert impact("unlock_connector", {"evse_number": 1}, support.OCPP201) == "refused_while_charging"
    assert impact("change_availability", {"operative": False}, support.OCPP16) == "waits_for_sessions"
    assert impact("change_availability", {"operative": True}, support.OCPP16) == "none"
    assert impact("get_configuration", {}, support.OCPP16) == "none"
    assert support.where_it_acts("reset", {"type": "Hard", "evse_number": 2}) == 2
    assert support.where_it_acts("reset", {"type": "Hard"}) is None
