"""The remote functions as the console offers them: grouped by what an operator wants to do,
each with a form of proper inputs (choices, numbers, a checkbox, the station's EVSEs, its
running sessions) labelled in words, and only what the station's OCPP version has
(`stekker.domain.remote_functions`).

A form's values are read into the function's arguments here (`read_form`); the service then
checks them as it checks the API's (`services.functions.validate_args`). JSON is typed only
for the few functions whose arguments are nested (a charging profile, a raw OCPP message), in
the "advanced" group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from stekker.domain import remote_functions as support
from stekker.services.functions import DRIVER_SUPPORT, FUNCTIONS
from stekker.web.format import HOME

InputKind = Literal["choice", "evse", "int", "text", "checkbox", "datetime", "session", "json"]
MAX_TEXT = 6000
MAX_JSON = 65_536


class BadInput(ValueError):
    """A form value cannot be used. `problem` is a text key (with `values`); `field` the label
    key of the input it is about, if one; `detail` the service's own words, if any."""

    def __init__(
        self, problem: str, field: str | None = None, detail: str | None = None, **values: object
    ) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.problem = problem
        self.field = field
        self.detail = detail
        self.values = values


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a choice: the value sent and its label's text key."""

    value: str
    label: str


@dataclass(frozen=True, slots=True)
class Input:
    """One field of a function's form. `name` is the form field; `label` and `hint` text keys;
    `evse` lists the station's EVSEs (`required` False adds "the whole station"); `session`
    the sessions running at the station; `only_2x` hides it from 1.6 stations; `empty` is the
    text key of "no choice" for an optional choice or EVSE."""

    name: str
    kind: InputKind
    label: str
    required: bool = False
    choices: tuple[Choice, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = 500
    hint: str | None = None
    default: str = ""
    only_2x: bool = False
    empty: str = "fx_whole_station"


Builder = Callable[[dict[str, Any]], dict[str, Any]]


def _as_is(values: dict[str, Any]) -> dict[str, Any]:
    return values


@dataclass(frozen=True, slots=True)
class ConsoleFunction:
    """A remote function on the functions page: its group, its inputs, who may run it, whether
    it changes the station (then a confirmation comes first) and how its typed form values
    become the function's arguments."""

    name: str
    group: str
    inputs: tuple[Input, ...]
    roles: tuple[str, ...]
    changes: bool
    build: Builder = _as_is

    def inputs_for(self, version: str | None) -> tuple[Input, ...]:
        two = support.family(version) == "2.x"
        return tuple(i for i in self.inputs if two or not i.only_2x)


#: The groups in the order an operator looks for them (text keys fx_group_<name>).
GROUPS = ("restart", "sessions", "availability", "configuration", "diagnostics", "advanced")

_EVSE_OR_STATION = Input("evse_number", "evse", "fx_in_evse")
_ANY_EVSE = Input("evse_number", "evse", "fx_in_evse", empty="fx_any_evse")
_EVSE = Input("evse_number", "evse", "fx_in_evse", required=True)
_CONNECTOR = Input(
    "connector_number",
    "int",
    "fx_in_connector",
    minimum=1,
    maximum=100,
    hint="fx_in_connector_hint",
    only_2x=True,
)
_TOKEN = Input("token_uid", "text", "fx_in_token", required=True, max_length=36, hint="fx_in_token_hint")
_PURPOSES = (
    Choice("ChargingStationMaxProfile", "fx_purpose_station_max"),
    Choice("TxDefaultProfile", "fx_purpose_tx_default"),
    Choice("TxProfile", "fx_purpose_tx"),
)


def _reset(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": v.get("type", "Soft"),
        **({"evse_number": v["evse_number"]} if "evse_number" in v else {}),
    }


def _availability(v: dict[str, Any]) -> dict[str, Any]:
    return {**v, "operative": v.get("operative") == "true"}


def _keys(v: dict[str, Any]) -> dict[str, Any]:
    keys = [k.strip() for k in str(v.get("keys", "")).split(",") if k.strip()]
    return {"keys": keys}


def _variable(v: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"component": v.get("component", ""), "variable": v.get("variable", "")}
    if "evse_number" in v:
        item["evse"] = v["evse_number"]
    if "value" in v:
        item["value"] = v["value"]
    return {"items": [item]}


def _minutes(v: dict[str, Any]) -> dict[str, Any]:
    out = {k: val for k, val in v.items() if k != "minutes"}
    out["duration"] = v.get("minutes", 60) * 60
    out.setdefault("evse_number", 0)
    return out


def _json(v: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = v.get("args", {})
    return parsed


def _raw(v: dict[str, Any]) -> dict[str, Any]:
    return {"action": v.get("action", ""), "payload": v.get("payload", {})}


def _spec(name: str) -> tuple[tuple[str, ...], bool]:
    spec = FUNCTIONS[name]
    return spec.roles, spec.changes


#: a 2.0.1 device-model address, asked by both reading and changing a variable
_COMPONENT_VARIABLE = (
    Input("component", "text", "fx_in_component", required=True, max_length=50, hint="fx_in_component_hint"),
    Input("variable", "text", "fx_in_variable", required=True, max_length=50),
)


def _fn(name: str, group: str, inputs: tuple[Input, ...], build: Builder = _as_is) -> ConsoleFunction:
    roles, changes = _spec(name)
    return ConsoleFunction(name, group, inputs, roles, changes, build)


def _catalogue() -> dict[str, ConsoleFunction]:
    functions = [
        # ---- restart and unlock
        _fn(
            "reset",
            "restart",
            (
                Input(
                    "type",
                    "choice",
                    "fx_in_reset_type",
                    required=True,
                    choices=(Choice("Soft", "fx_reset_soft"), Choice("Hard", "fx_reset_hard")),
                    default="Soft",
                ),
                Input("evse_number", "evse", "fx_in_evse", hint="fx_in_reset_evse_hint", only_2x=True),
            ),
            _reset,
        ),
        _fn("unlock_connector", "restart", (_EVSE, _CONNECTOR)),
        # ---- sessions
        ConsoleFunction("remote_start", "sessions", (_TOKEN, _ANY_EVSE), DRIVER_SUPPORT, changes=True),
        ConsoleFunction(
            "remote_stop",
            "sessions",
            (Input("session_id", "session", "fx_in_session", required=True),),
            DRIVER_SUPPORT,
            changes=True,
        ),
        _fn(
            "reserve_now",
            "sessions",
            (_TOKEN, Input("expires_at", "datetime", "fx_in_until", required=True), _ANY_EVSE),
        ),
        _fn(
            "cancel_reservation",
            "sessions",
            (
                Input(
                    "reservation_id", "int", "fx_in_reservation", required=True, minimum=1, maximum=2**31 - 1
                ),
            ),
        ),
        # ---- availability
        _fn(
            "change_availability",
            "availability",
            (
                Input(
                    "operative",
                    "choice",
                    "fx_in_availability",
                    required=True,
                    choices=(Choice("false", "fx_out_of_service"), Choice("true", "fx_in_service")),
                    default="false",
                ),
                _EVSE_OR_STATION,
                Input(
                    "connector_number",
                    "int",
                    "fx_in_connector",
                    minimum=1,
                    maximum=100,
                    hint="fx_in_connector_all_hint",
                    only_2x=True,
                ),
            ),
            _availability,
        ),
        # ---- configuration (1.6 keys; 2.x components and variables) and the cards it knows
        _fn(
            "get_configuration",
            "configuration",
            (Input("keys", "text", "fx_in_keys", hint="fx_in_keys_hint", max_length=2000),),
            _keys,
        ),
        _fn(
            "change_configuration",
            "configuration",
            (
                Input("key", "text", "fx_in_key", required=True, max_length=50, hint="fx_in_key_hint"),
                Input("value", "text", "fx_in_value", required=True, max_length=500),
            ),
        ),
        _fn(
            "get_variables",
            "configuration",
            (*_COMPONENT_VARIABLE,),
            _variable,
        ),
        _fn(
            "set_variables",
            "configuration",
            (
                *_COMPONENT_VARIABLE,
                Input("value", "text", "fx_in_value", required=True, max_length=1000),
            ),
            _variable,
        ),
        _fn(
            "get_base_report",
            "configuration",
            (
                Input(
                    "report_base",
                    "choice",
                    "fx_in_report",
                    required=True,
                    choices=(
                        Choice("FullInventory", "fx_report_full"),
                        Choice("ConfigurationInventory", "fx_report_configuration"),
                        Choice("SummaryInventory", "fx_report_summary"),
                    ),
                    default="FullInventory",
                    only_2x=True,
                ),
            ),
        ),
        _fn("sync_local_list", "configuration", (Input("full", "checkbox", "fx_in_full_list"),)),
        _fn("get_local_list_version", "configuration", ()),
        _fn("clear_cache", "configuration", ()),
        # ---- diagnostics and firmware
        _fn(
            "trigger_message",
            "diagnostics",
            (Input("message", "choice", "fx_in_message", required=True), _EVSE_OR_STATION),
        ),
        _fn(
            "get_diagnostics",
            "diagnostics",
            (
                Input(
                    "log_type",
                    "choice",
                    "fx_in_log_type",
                    required=True,
                    choices=(
                        Choice("DiagnosticsLog", "fx_log_diagnostics"),
                        Choice("SecurityLog", "fx_log_security"),
                    ),
                    default="DiagnosticsLog",
                ),
                Input("start", "datetime", "fx_in_log_from"),
                Input("stop", "datetime", "fx_in_log_to"),
            ),
        ),
        _fn(
            "update_firmware",
            "diagnostics",
            (
                Input(
                    "location",
                    "text",
                    "fx_in_firmware_url",
                    required=True,
                    max_length=512,
                    hint="fx_in_firmware_url_hint",
                ),
                Input("retrieve_at", "datetime", "fx_in_retrieve_at", hint="fx_in_retrieve_at_hint"),
            ),
        ),
        # ---- advanced: charging profiles, vendor data, raw OCPP
        _fn(
            "get_composite_schedule",
            "advanced",
            (
                Input("evse_number", "evse", "fx_in_evse"),
                Input(
                    "minutes",
                    "int",
                    "fx_in_minutes",
                    required=True,
                    minimum=1,
                    maximum=7 * 24 * 60,
                    default="60",
                ),
                Input(
                    "unit",
                    "choice",
                    "fx_in_unit",
                    choices=(Choice("W", "fx_unit_w"), Choice("A", "fx_unit_a")),
                    empty="fx_unit_station",
                ),
            ),
            _minutes,
        ),
        _fn(
            "get_charging_profiles",
            "advanced",
            (Input("evse_number", "evse", "fx_in_evse", empty="fx_all_evses"),),
        ),
        _fn(
            "clear_charging_profile",
            "advanced",
            (
                Input(
                    "profile_id",
                    "int",
                    "fx_in_profile_id",
                    minimum=1,
                    maximum=2**31 - 1,
                    hint="fx_in_profile_id_hint",
                ),
                Input("evse_number", "evse", "fx_in_evse", empty="fx_all_evses"),
                Input("purpose", "choice", "fx_in_purpose", choices=_PURPOSES, empty="fx_any_purpose"),
            ),
        ),
        _fn(
            "set_charging_profile",
            "advanced",
            (Input("args", "json", "fx_in_json", required=True, hint="fx_in_profile_json_hint"),),
            _json,
        ),
        _fn(
            "data_transfer",
            "advanced",
            (
                Input("vendor_id", "text", "fx_in_vendor", required=True, max_length=255),
                Input("message_id", "text", "fx_in_message_id", max_length=50),
                Input("data", "text", "fx_in_data", max_length=MAX_TEXT),
            ),
        ),
        _fn(
            "raw",
            "advanced",
            (
                Input(
                    "action", "text", "fx_in_action", required=True, max_length=64, hint="fx_in_action_hint"
                ),
                Input("payload", "json", "fx_in_payload", hint="fx_in_payload_hint"),
            ),
            _raw,
        ),
    ]
    return {f.name: f for f in functions}


CATALOGUE: dict[str, ConsoleFunction] = _catalogue()

#: On a 1.6 station its keys are read and changed by name; the 2.x forms (component and
#: variable) would only say the same in a form that fits 1.6 badly.
_NOT_ON_16 = frozenset({"get_variables", "set_variables"})


def shown_for(function: ConsoleFunction, version: str | None) -> bool:
    """Whether the station's OCPP version has the function (and the console shows it there)."""
    if support.family(version) == "1.6" and function.name in _NOT_ON_16:
        return False
    if support.family(version) is None and function.name in _NOT_ON_16:
        return False
    return support.offers(version, function.name)


def choices_of(field: Input, version: str | None) -> tuple[Choice, ...]:
    """A choice's options for this station: the messages its version can send, or the fixed ones."""
    if field.name == "message":
        return tuple(Choice(m, f"fx_trigger_{m}") for m in support.trigger_messages(version))
    return field.choices


@dataclass(frozen=True, slots=True)
class Station:
    """What a form needs to know of the station: its OCPP version, EVSE numbers and the ids of
    its running sessions."""

    version: str | None
    evses: tuple[int, ...]
    sessions: tuple[int, ...]


def _parse_time(text: str, field: Input) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput("fx_err_time", field.label) from None
    if moment.tzinfo is None:  # a datetime-local value: the home time zone
        moment = moment.replace(tzinfo=HOME)
    return moment.isoformat()


def _typed(field: Input, value: str, station: Station) -> Any:
    """One form value in its type, or BadInput saying why not."""
    if field.kind in ("int", "evse", "session"):
        if not value.isascii() or not value.lstrip("-").isdigit() or len(value) > 16:
            raise BadInput("fx_err_whole_number", field.label)
        number = int(value)
        if field.kind == "evse" and station.evses and number not in station.evses:
            raise BadInput("fx_err_no_such_evse", field.label, known=", ".join(map(str, station.evses)))
        if field.kind == "evse" and not 1 <= number <= 1000:
            raise BadInput("fx_err_no_such_evse", field.label, known=", ".join(map(str, station.evses)))
        if field.kind == "session" and number not in station.sessions:
            raise BadInput("fx_err_session_not_running", field.label)
        low, high = field.minimum, field.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            raise BadInput("fx_err_range", field.label, low=low, high=high)
        return number
    if field.kind == "checkbox":
        if value != "true":
            raise BadInput("fx_err_checkbox", field.label)
        return True
    if field.kind == "choice":
        allowed = {c.value for c in choices_of(field, station.version)}
        if value not in allowed:
            raise BadInput("fx_err_choice", field.label)
        return value
    if field.kind == "datetime":
        return _parse_time(value, field)
    if field.kind == "json":
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadInput("fx_err_json", field.label) from None
        if not isinstance(parsed, dict):
            raise BadInput("fx_err_json_object", field.label)
        return parsed
    if not value.isprintable():
        raise BadInput("fx_err_printable", field.label)
    return value


def read_form(
    function: ConsoleFunction, params: Mapping[str, str], station: Station
) -> tuple[dict[str, Any], dict[str, str]]:
    """The function's arguments from a form (typed), and the form values to carry to the next
    step. BadInput names the field and what is wrong with it."""
    values: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for field in function.inputs_for(station.version):
        value = params.get(field.name, "").strip()
        limit = MAX_JSON if field.kind == "json" else min(field.max_length, MAX_TEXT)
        if len(value) > limit:
            raise BadInput("fx_err_too_long", field.label, limit=limit)
        if not value:
            if field.required and not field.default:
                raise BadInput("fx_err_required", field.label)
            if field.required:
                value = field.default
            else:
                continue
        values[field.name] = _typed(field, value, station)
        raw[field.name] = value
    return function.build(values), raw


def shown_value(field: Input, value: str, version: str | None) -> tuple[str, bool]:
    """How a carried form value reads on the confirmation and answer pages: (text, is_key), a
    text key when the value is one of the field's choices or a checkbox."""
    if field.kind == "checkbox":
        return "yes", True
    for choice in choices_of(field, version):
        if choice.value == value:
            return choice.label, True
    return value, False
