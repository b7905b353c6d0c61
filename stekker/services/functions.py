"""Every remote function of a station, by name, for OCPP 1.6 and 2.0.1 alike.

A function is a neutral command with validated arguments. `run_function` checks the
arguments, audits the intent, sends it through the command port and audits the station's
answer. The API, bulk jobs, templates and the helpdesk flow all call functions through here.

Each function states which roles may run it, by role name (the operator API's roles; admin
may always): the service layer knows the names, the API enforces them.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingStation
from stekker.services import device_model, firmware, reboots, reservations, station_setup
from stekker.services.audit import record_audit, station_event
from stekker.services.context import ServiceContext
from stekker.services.device_model import OCPP16_COMPONENT, UnknownStation, VariableRef, VariableResult
from stekker.services.ports import CommandError, OutcomeUnknown, StationCommand, StationOffline
from stekker.services.tokens import local_list_update

# ---- who may run what (role names of the operator API; admin may always) ---------------------

READERS: tuple[str, ...] = ("operator", "helpdesk", "municipality", "read-only")
DRIVER_SUPPORT: tuple[str, ...] = ("operator", "helpdesk")
CONFIGURE: tuple[str, ...] = ("operator",)
ADMIN_ONLY: tuple[str, ...] = ()


class UnknownFunction(LookupError):
    """No remote function by that name."""


class InvalidArguments(ValueError):
    """The arguments do not fit the function; the message says which and why."""


class FunctionArgs(BaseModel):
    """Base of every function's arguments: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class NoArgs(FunctionArgs):
    pass


# A function that is more than one neutral command (it records a request, syncs a list, stores
# what the station answered): (ctx, actor, station_id, validated args, timeout) -> neutral reply.
Runner = Callable[[ServiceContext, str, str, Any, float | None], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A remote function: its arguments, what it does, who may run it and which station
    answers mean yes."""

    name: str
    summary: str
    args: type[FunctionArgs]
    # the neutral command for validated arguments (default: same name, the model's fields)
    command: Callable[[FunctionArgs], StationCommand] | None = None
    # station answers that mean the station will do it
    accepted: frozenset[str] = frozenset({"Accepted"})
    # changes the station (audited as a change) or only reads it
    changes: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
    # role names that may run it (admin always may)
    roles: tuple[str, ...] = CONFIGURE
    # set when the function is more than one command sent as is
    run: Runner | None = None
    # sending it twice does what sending it once does: a call whose outcome is unknown (the
    # connection closed after it was sent) may be sent again; a reset or a firmware update not
    repeatable: bool = True

    def to_command(self, args: FunctionArgs) -> StationCommand:
        if self.command is not None:
            return self.command(args)
        return StationCommand(self.name, args.model_dump(exclude_none=True))

    def schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments (what the API publishes)."""
        return self.args.model_json_schema()


@dataclass(frozen=True, slots=True)
class FunctionResult:
    """The station's answer: `status` as it said it, `accepted` whether that means yes, and the
    whole neutral reply (JSON-safe)."""

    status: str
    accepted: bool
    reply: dict[str, Any]


FUNCTIONS: dict[str, FunctionSpec] = {}


def register(spec: FunctionSpec) -> FunctionSpec:
    FUNCTIONS[spec.name] = spec
    return spec


# ---- argument models ----------------------------------------------------------------------

_EVSE = Field(ge=1, le=1000, description="EVSE number on the station (the 1.6 connectorId).")
_OCPP_INT = 2**31 - 1


class ResetArgs(FunctionArgs):
    type: Literal["Soft", "Hard"] = Field(
        default="Soft",
        description="Soft: restart once nobody is charging (1.6 Soft; 2.0.1 OnIdle, answered Scheduled "
        "while a session runs). Hard: restart now, ending running sessions (1.6 Hard; 2.0.1 Immediate).",
    )
    evse_number: int | None = Field(
        default=None, ge=1, le=1000, description="Reset only this EVSE (2.0.1 only)."
    )


class ChangeAvailabilityArgs(FunctionArgs):
    operative: bool = Field(description="True: may charge again; false: out of service.")
    evse_number: int | None = Field(default=None, ge=1, le=1000, description="Omit for the whole station.")
    connector_number: int | None = Field(
        default=None, ge=1, le=100, description="One connector of the EVSE (2.0.1)."
    )

    @model_validator(mode="after")
    def _connector_needs_evse(self) -> ChangeAvailabilityArgs:
        if self.connector_number is not None and self.evse_number is None:
            raise ValueError("connector_number needs evse_number")
        return self


class UnlockConnectorArgs(FunctionArgs):
    evse_number: int = _EVSE
    connector_number: int = Field(default=1, ge=1, le=100, description="Connector of the EVSE.")


TriggerableMessage = Literal[
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "MeterValues",
    "FirmwareStatusNotification",
    "DiagnosticsStatusNotification",
    "LogStatusNotification",
    "TransactionEvent",
]


class TriggerMessageArgs(FunctionArgs):
    message: TriggerableMessage = Field(
        description="What the station should send now. DiagnosticsStatusNotification (1.6) and "
        "LogStatusNotification (2.0.1) both ask for the upload status; TransactionEvent is 2.0.1 only."
    )
    evse_number: int | None = Field(default=None, ge=1, le=1000, description="Only about this EVSE.")


_KEY = r"^[A-Za-z0-9_.\-*:]{1,50}$"


class VariableArg(FunctionArgs):
    component: str = Field(
        default="",
        max_length=50,
        pattern=r"^[A-Za-z0-9_.\-]*$",
        description=f"2.0.1 component, e.g. AuthCtrlr; empty or {OCPP16_COMPONENT} for a 1.6 key.",
    )
    variable: str = Field(pattern=_KEY, description="2.0.1 variable or 1.6 configuration key.")
    component_instance: str = Field(default="", max_length=50)
    variable_instance: str = Field(default="", max_length=50)
    evse: int = Field(default=0, ge=0, le=1000, description="EVSE of the component; 0: none.")
    connector: int = Field(default=0, ge=0, le=100)
    attribute_type: Literal["Actual", "Target", "MinSet", "MaxSet"] = "Actual"

    def ref(self) -> VariableRef:
        return VariableRef(
            component=self.component or OCPP16_COMPONENT,
            variable=self.variable,
            component_instance=self.component_instance,
            variable_instance=self.variable_instance,
            evse_number=self.evse,
            connector_number=self.connector,
            attribute_type=self.attribute_type,
        )


class VariableSetArg(VariableArg):
    value: str = Field(max_length=1000)


class GetVariablesArgs(FunctionArgs):
    items: list[VariableArg] = Field(
        default_factory=list, max_length=100, description="Empty: every key (1.6 only)."
    )


class SetVariablesArgs(FunctionArgs):
    items: list[VariableSetArg] = Field(min_length=1, max_length=100)


class GetBaseReportArgs(FunctionArgs):
    report_base: Literal["FullInventory", "ConfigurationInventory", "SummaryInventory"] = "FullInventory"


class GetConfigurationArgs(FunctionArgs):
    keys: list[str] = Field(default_factory=list, max_length=100, description="1.6 keys; empty: every key.")

    @field_validator("keys")
    @classmethod
    def _keys_are_names(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not re.fullmatch(_KEY, key):
                raise ValueError(f"{key[:60]!r} is not a configuration key")
        return keys


class ChangeConfigurationArgs(FunctionArgs):
    key: str = Field(pattern=_KEY, description="A 1.6 configuration key, e.g. HeartbeatInterval.")
    value: str = Field(max_length=500)


class SyncLocalListArgs(FunctionArgs):
    full: bool = Field(default=False, description="Send the whole list, whatever version the station holds.")


class UpdateFirmwareArgs(FunctionArgs):
    location: str = Field(
        max_length=512,
        pattern=r"^(https?|ftps?|sftp)://[\x21-\x7e]+$",
        description="Where the station downloads the firmware (http, https, ftp, ftps or sftp URL).",
    )
    retrieve_at: AwareDatetime | None = Field(default=None, description="Download from then on; default now.")
    retries: int | None = Field(default=None, ge=0, le=100)
    retry_interval: int | None = Field(default=None, ge=0, le=86_400, description="Seconds.")
    install_at: AwareDatetime | None = Field(default=None, description="Install then (signed updates).")
    signing_certificate: str | None = Field(default=None, min_length=1, max_length=5500, description="PEM.")
    signature: str | None = Field(default=None, min_length=1, max_length=800, description="Base64.")

    @model_validator(mode="after")
    def _signed_together(self) -> UpdateFirmwareArgs:
        if (self.signature is None) != (self.signing_certificate is None):
            raise ValueError("a signed update needs both signing_certificate and signature")
        return self


class ReserveNowArgs(FunctionArgs):
    token_uid: str = Field(
        min_length=1, max_length=36, pattern=r"^[\x21-\x7e]+$", description="The token it is held for."
    )
    expires_at: AwareDatetime = Field(description="When the reservation ends, in the future.")
    evse_number: int | None = Field(
        default=None, ge=1, le=1000, description="Omit: any EVSE (1.6: connector 0)."
    )
    reservation_id: int | None = Field(
        default=None, ge=1, le=_OCPP_INT, description="Omit and we choose one (recommended)."
    )


class CancelReservationArgs(FunctionArgs):
    reservation_id: int = Field(ge=1, le=_OCPP_INT)


class DataTransferArgs(FunctionArgs):
    vendor_id: str = Field(min_length=1, max_length=255)
    message_id: str | None = Field(default=None, min_length=1, max_length=50)
    data: str | dict[str, Any] | list[Any] | None = Field(
        default=None, description="Text (1.6), or any JSON for 2.0.1 (sent as JSON text to 1.6)."
    )

    @field_validator("data")
    @classmethod
    def _not_huge(cls, data: Any) -> Any:
        if data is not None and len(orjson.dumps(data)) > 65_536:
            raise ValueError("data is larger than 64 KiB")
        return data


class RawArgs(FunctionArgs):
    action: str = Field(pattern=r"^[A-Za-z0-9]{1,64}$", description="An action of the station's version.")
    payload: dict[str, Any] = Field(
        default_factory=dict, description="Sent as is, after a check against the official schema."
    )

    @field_validator("payload")
    @classmethod
    def _not_huge(cls, payload: dict[str, Any]) -> dict[str, Any]:
        if len(orjson.dumps(payload)) > 65_536:
            raise ValueError("payload is larger than 64 KiB")
        return payload


# -- smart charging: one neutral profile shape, translated per version

Purpose = Literal["ChargingStationMaxProfile", "TxDefaultProfile", "TxProfile"]


class SchedulePeriod(FunctionArgs):
    start: int = Field(ge=0, le=10_000_000, description="Seconds from the start of the schedule.")
    limit: Decimal = Field(ge=0, le=1_000_000, decimal_places=1, description="In the schedule's unit.")
    phases: int | None = Field(default=None, ge=1, le=3)


class ChargingSchedule(FunctionArgs):
    unit: Literal["A", "W"] = Field(description="A: current per phase; W: power.")
    periods: list[SchedulePeriod] = Field(min_length=1, max_length=100)
    start_at: AwareDatetime | None = None
    duration: int | None = Field(default=None, ge=0, le=100_000_000, description="Seconds.")
    min_rate: Decimal | None = Field(default=None, ge=0, le=1_000_000, decimal_places=1)

    @model_validator(mode="after")
    def _periods_in_order(self) -> ChargingSchedule:
        starts = [p.start for p in self.periods]
        if starts[0] != 0 or any(b <= a for a, b in pairwise(starts)):
            raise ValueError("periods start at 0 and their starts increase")
        return self


class ChargingProfile(FunctionArgs):
    id: int = Field(ge=1, le=_OCPP_INT)
    stack_level: int = Field(default=0, ge=0, le=100)
    purpose: Purpose = Field(description="ChargingStationMaxProfile (1.6: ChargePointMaxProfile), ...")
    kind: Literal["Absolute", "Recurring", "Relative"] = "Absolute"
    recurrency: Literal["Daily", "Weekly"] | None = None
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    transaction_id: str | None = Field(default=None, min_length=1, max_length=36)
    schedule: ChargingSchedule

    @field_validator("purpose", mode="before")
    @classmethod
    def _v16_name(cls, value: Any) -> Any:
        return "ChargingStationMaxProfile" if value == "ChargePointMaxProfile" else value

    @model_validator(mode="after")
    def _consistent(self) -> ChargingProfile:
        if (self.kind == "Recurring") != (self.recurrency is not None):
            raise ValueError("recurrency is given exactly when kind is Recurring")
        if self.transaction_id is not None and self.purpose != "TxProfile":
            raise ValueError("transaction_id belongs to a TxProfile")
        return self


class SetChargingProfileArgs(FunctionArgs):
    evse_number: int = Field(ge=0, le=1000, description="0: the whole station.")
    profile: ChargingProfile


class ClearChargingProfileArgs(FunctionArgs):
    profile_id: int | None = Field(default=None, ge=1, le=_OCPP_INT)
    evse_number: int | None = Field(default=None, ge=0, le=1000)
    purpose: Purpose | None = None
    stack_level: int | None = Field(default=None, ge=0, le=100)

    @field_validator("purpose", mode="before")
    @classmethod
    def _v16_name(cls, value: Any) -> Any:
        return "ChargingStationMaxProfile" if value == "ChargePointMaxProfile" else value


class GetChargingProfilesArgs(FunctionArgs):
    evse_number: int | None = Field(default=None, ge=0, le=1000, description="0: station-wide profiles.")
    purpose: Purpose | None = None
    stack_level: int | None = Field(default=None, ge=0, le=100)
    profile_ids: list[int] = Field(default_factory=list, max_length=50)

    @field_validator("profile_ids")
    @classmethod
    def _ids_fit(cls, ids: list[int]) -> list[int]:
        if any(not 1 <= i <= _OCPP_INT for i in ids):
            raise ValueError("profile ids are 1 to 2^31-1")
        return ids


def _get_charging_profiles_command(args: FunctionArgs) -> StationCommand:
    # the station's reports carry this id (kept with the station's events)
    request_id = secrets.randbelow(_OCPP_INT) + 1
    return StationCommand(
        "get_charging_profiles", {**args.model_dump(exclude_none=True), "request_id": request_id}
    )


class GetCompositeScheduleArgs(FunctionArgs):
    evse_number: int = Field(default=0, ge=0, le=1000, description="0: the station as a whole.")
    duration: int = Field(default=3600, ge=1, le=7 * 86_400, description="Seconds from now.")
    unit: Literal["A", "W"] | None = None


# ---- functions that are more than one command -------------------------------------------------


def _require_online(ctx: ServiceContext, station_id: str) -> None:
    assert ctx.commands is not None
    if not ctx.commands.is_connected(station_id):
        raise StationOffline(f"station {station_id} is offline")


def _result_json(result: VariableResult) -> dict[str, Any]:
    return {
        "label": result.ref.label,
        "component": result.ref.component,
        "variable": result.ref.variable,
        "status": result.status,
        "value": result.value,
        "reason": result.reason,
    }


def _overall(results: list[VariableResult]) -> str:
    """One word for a set of answers: Accepted when every item was, else the first refusal."""
    statuses = [r.status for r in results]
    if all(s == "Accepted" for s in statuses):
        return "Accepted"
    if all(s in ("Accepted", "RebootRequired") for s in statuses):
        return "RebootRequired"
    return next(s for s in statuses if s not in ("Accepted", "RebootRequired"))


async def _get_variables(
    ctx: ServiceContext, actor: str, station_id: str, args: GetVariablesArgs, timeout: float | None
) -> dict[str, Any]:
    results = await device_model.get_variables(ctx, station_id, [item.ref() for item in args.items])
    return {"status": "Accepted", "results": [_result_json(r) for r in results]}


async def _set_variables(
    ctx: ServiceContext, actor: str, station_id: str, args: SetVariablesArgs, timeout: float | None
) -> dict[str, Any]:
    changes = [(item.ref(), item.value) for item in args.items]
    results = await device_model.set_variables(ctx, actor, station_id, changes)
    return {"status": _overall(results), "results": [_result_json(r) for r in results]}


async def _get_configuration(
    ctx: ServiceContext, actor: str, station_id: str, args: GetConfigurationArgs, timeout: float | None
) -> dict[str, Any]:
    refs = [VariableRef(OCPP16_COMPONENT, key) for key in args.keys]
    results = await device_model.get_variables(ctx, station_id, refs)
    return {"status": "Accepted", "results": [_result_json(r) for r in results]}


async def _change_configuration(
    ctx: ServiceContext, actor: str, station_id: str, args: ChangeConfigurationArgs, timeout: float | None
) -> dict[str, Any]:
    change = (VariableRef(OCPP16_COMPONENT, args.key), args.value)
    [result] = await device_model.set_variables(ctx, actor, station_id, [change])
    return {"status": result.status, "results": [_result_json(result)]}


async def _get_base_report(
    ctx: ServiceContext, actor: str, station_id: str, args: GetBaseReportArgs, timeout: float | None
) -> dict[str, Any]:
    return await device_model.request_base_report(ctx, actor, station_id, args.report_base)


async def _sync_local_list(
    ctx: ServiceContext, actor: str, station_id: str, args: SyncLocalListArgs, timeout: float | None
) -> dict[str, Any]:
    _require_online(ctx, station_id)
    if not args.full:
        # the station's version decides: nothing, a differential update, or the whole list
        return {"status": await station_setup.sync_local_list(ctx, station_id)}
    full = await local_list_update(ctx, None)
    assert full is not None and ctx.commands is not None
    reply = await ctx.commands.send(station_id, StationCommand("send_local_list", {"update": full}), timeout)
    outcome, at = str(reply["status"]), ctx.now()

    async def job(db: AsyncSession) -> None:
        if outcome == "Accepted":
            await db.execute(
                update(ChargingStation)
                .where(ChargingStation.id == station_id)
                .values(local_list_version=full.version)
            )
        station_event(db, station_id, "local_list_sync", at, outcome=outcome, version=full.version, full=True)

    await ctx.write(job)
    return {"status": outcome, "version": full.version, "entries": len(full.entries)}


async def _update_firmware(
    ctx: ServiceContext, actor: str, station_id: str, args: UpdateFirmwareArgs, timeout: float | None
) -> dict[str, Any]:
    _require_online(ctx, station_id)
    assert ctx.commands is not None
    retrieve_at = args.retrieve_at or ctx.now()
    request = firmware.FirmwareRequest(
        args.location, retrieve_at, args.install_at, args.signature is not None
    )
    update_id = await firmware.open_update(ctx, actor, station_id, request)
    command_args = {**args.model_dump(exclude_none=True), "retrieve_at": retrieve_at, "request_id": update_id}
    try:
        reply = await ctx.commands.send(station_id, StationCommand("update_firmware", command_args), timeout)
    except CommandError as exc:
        await firmware.record_answer(ctx, update_id, type(exc).__name__)
        raise
    await firmware.record_answer(ctx, update_id, str(reply["status"]))
    return {**reply, "update_id": update_id}


async def _reserve_now(
    ctx: ServiceContext, actor: str, station_id: str, args: ReserveNowArgs, timeout: float | None
) -> dict[str, Any]:
    if args.expires_at <= ctx.now():
        raise InvalidArguments("reserve_now: expires_at: must be in the future")
    _require_online(ctx, station_id)
    assert ctx.commands is not None
    request = reservations.ReservationRequest(
        args.reservation_id, args.evse_number, args.token_uid, args.expires_at
    )
    row_id, reservation_id = await reservations.open_reservation(ctx, actor, station_id, request)
    command_args = {**args.model_dump(exclude_none=True), "reservation_id": reservation_id}
    try:
        reply = await ctx.commands.send(station_id, StationCommand("reserve_now", command_args), timeout)
    except CommandError as exc:
        await reservations.set_row_status(ctx, row_id, type(exc).__name__)
        raise
    await reservations.set_row_status(ctx, row_id, str(reply["status"]))
    return {**reply, "reservation_id": reservation_id}


async def _cancel_reservation(
    ctx: ServiceContext, actor: str, station_id: str, args: CancelReservationArgs, timeout: float | None
) -> dict[str, Any]:
    assert ctx.commands is not None
    command = StationCommand("cancel_reservation", {"reservation_id": args.reservation_id})
    reply = await ctx.commands.send(station_id, command, timeout)
    if reply["status"] == "Accepted":
        await reservations.mark(ctx, station_id, args.reservation_id, "Cancelled")
    return reply


async def _reset(
    ctx: ServiceContext, actor: str, station_id: str, args: ResetArgs, timeout: float | None
) -> dict[str, Any]:
    """Reset; a station that drops the connection instead of answering (real ones do, on Hard)
    and boots again within `reset_boot_window` seconds did reset. Otherwise the outcome stays
    unknown (OutcomeUnknown), and no one should send it again blindly."""
    assert ctx.commands is not None
    sent_at = ctx.now()
    command = StationCommand("reset", args.model_dump(exclude_none=True))
    try:
        return await ctx.commands.send(station_id, command, timeout)
    except OutcomeUnknown:
        window = ctx.settings.reset_boot_window
        if window > 0 and await reboots.wait_for_boot(ctx, station_id, sent_at, window):
            return {"status": "Accepted", "outcome": "no answer, but the station booted again: it reset"}
        raise


# ---- the catalogue ----------------------------------------------------------------------------

for _spec in (
    FunctionSpec(
        "reset",
        "Restart the station (Soft: when idle; Hard: now).",
        ResetArgs,
        accepted=frozenset({"Accepted", "Scheduled"}),
        roles=DRIVER_SUPPORT,
        run=_reset,
        repeatable=False,
    ),
    FunctionSpec(
        "change_availability",
        "Take the station, an EVSE or a connector out of service, or back in.",
        ChangeAvailabilityArgs,
        accepted=frozenset({"Accepted", "Scheduled"}),
        roles=DRIVER_SUPPORT,
    ),
    FunctionSpec(
        "unlock_connector",
        "Release the cable locked in a connector.",
        UnlockConnectorArgs,
        accepted=frozenset({"Unlocked"}),
        roles=DRIVER_SUPPORT,
    ),
    FunctionSpec(
        "trigger_message",
        "Make the station send a message now (status, meter values, heartbeat, ...).",
        TriggerMessageArgs,
        roles=DRIVER_SUPPORT,
    ),
    FunctionSpec(
        "get_variables",
        "Read current configuration values (2.0.1 GetVariables, 1.6 GetConfiguration); stored.",
        GetVariablesArgs,
        changes=False,
        roles=DRIVER_SUPPORT,
        run=_get_variables,
    ),
    FunctionSpec(
        "set_variables",
        "Change configuration values (2.0.1 SetVariables, 1.6 ChangeConfiguration per key).",
        SetVariablesArgs,
        accepted=frozenset({"Accepted", "RebootRequired"}),
        run=_set_variables,
    ),
    FunctionSpec(
        "get_configuration",
        "Read 1.6 configuration keys (GetConfiguration); stored.",
        GetConfigurationArgs,
        changes=False,
        roles=DRIVER_SUPPORT,
        run=_get_configuration,
    ),
    FunctionSpec(
        "change_configuration",
        "Change one 1.6 configuration key (ChangeConfiguration).",
        ChangeConfigurationArgs,
        accepted=frozenset({"Accepted", "RebootRequired"}),
        run=_change_configuration,
    ),
    FunctionSpec(
        "get_base_report",
        "Ask for the whole configuration (2.0.1 GetBaseReport; 1.6 GetConfiguration, stored at once).",
        GetBaseReportArgs,
        changes=False,
        run=_get_base_report,
    ),
    FunctionSpec(
        "get_local_list_version",
        "The version of the local authorization list the station holds.",
        NoArgs,
        changes=False,
        roles=READERS,
    ),
    FunctionSpec(
        "sync_local_list",
        "Bring the station's local authorization list to ours (differential, or full).",
        SyncLocalListArgs,
        accepted=frozenset({"Accepted", "current"}),
        run=_sync_local_list,
    ),
    FunctionSpec("clear_cache", "Empty the station's authorization cache.", NoArgs),
    FunctionSpec(
        "data_transfer",
        "Send vendor-specific data; the reply carries the station's data.",
        DataTransferArgs,
        repeatable=False,  # vendor-defined: we cannot know
    ),
    FunctionSpec(
        "update_firmware",
        "Install firmware from a URL; progress is tracked (GET /api/stations/{id}/firmware).",
        UpdateFirmwareArgs,
        accepted=frozenset({"Accepted", "AcceptedCanceled"}),
        run=_update_firmware,
        repeatable=False,
    ),
    FunctionSpec(
        "reserve_now",
        "Hold an EVSE (or any EVSE) for a token until a time.",
        ReserveNowArgs,
        roles=DRIVER_SUPPORT,
        run=_reserve_now,
    ),
    FunctionSpec(
        "cancel_reservation",
        "Cancel a reservation.",
        CancelReservationArgs,
        roles=DRIVER_SUPPORT,
        run=_cancel_reservation,
    ),
    FunctionSpec(
        "set_charging_profile",
        "Install a charging profile (a power or current limit over time).",
        SetChargingProfileArgs,
    ),
    FunctionSpec(
        "clear_charging_profile",
        "Remove charging profiles by id, or by EVSE, purpose and stack level.",
        ClearChargingProfileArgs,
    ),
    FunctionSpec(
        "get_composite_schedule",
        "The limits the station will apply over the coming period, all profiles combined.",
        GetCompositeScheduleArgs,
        changes=False,
        roles=READERS,
    ),
    FunctionSpec(
        "get_charging_profiles",
        "Ask a 2.0.1 station which profiles it has; they arrive as charging_profiles_report events.",
        GetChargingProfilesArgs,
        command=_get_charging_profiles_command,
        accepted=frozenset({"Accepted", "NoProfiles"}),
        changes=False,
        roles=READERS,
    ),
    FunctionSpec(
        "raw",
        "Any OCPP action of the station's version, payload as on the wire (expert tooling).",
        RawArgs,
        roles=ADMIN_ONLY,
        repeatable=False,
    ),
):
    register(_spec)


def function_names() -> list[str]:
    return sorted(FUNCTIONS)


def spec_of(name: str) -> FunctionSpec:
    spec = FUNCTIONS.get(name)
    if spec is None:
        shown = name if len(name) <= 60 else name[:60] + "..."
        raise UnknownFunction(f"no remote function {shown!r} (known: {', '.join(function_names())})")
    return spec


def validate_args(name: str, args: dict[str, Any]) -> FunctionArgs:
    """The function's arguments, checked; InvalidArguments says what is wrong."""
    spec = spec_of(name)
    try:
        return spec.args.model_validate(args)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidArguments(f"{name}: {problems}") from None


def _json_safe(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_safe(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


async def run_function(
    ctx: ServiceContext,
    actor: str,
    station_id: str,
    name: str,
    args: dict[str, Any] | FunctionArgs,
    timeout: float | None = None,
) -> FunctionResult:
    """Run one function on one station and return its answer. Raises UnknownFunction,
    InvalidArguments, UnknownStation, or a CommandError (offline, timeout, call error,
    not supported by the station's OCPP version); every outcome is audited."""
    spec = spec_of(name)
    checked = args if isinstance(args, FunctionArgs) else validate_args(name, args)
    assert ctx.commands is not None
    if not station_id.isprintable() or len(station_id) > 48:  # no such id can be registered
        raise UnknownStation(f"no station {station_id[:60]!r}")
    async with ctx.db() as db:
        if await db.get(ChargingStation, station_id) is None:
            raise UnknownStation(f"no station {station_id!r}")
    action = f"station.function.{name}"
    detail = _json_safe(checked.model_dump(exclude_none=True))
    try:
        if spec.run is not None:
            reply = await spec.run(ctx, actor, station_id, checked, timeout)
        else:
            reply = await ctx.commands.send(station_id, spec.to_command(checked), timeout)
    except CommandError as exc:
        await record_audit(
            ctx,
            actor=actor,
            action=f"{action}.failed",
            object_type="station",
            object_id=station_id,
            result=type(exc).__name__,
            error=str(exc),
            args=detail,
        )
        raise
    status = str(reply.get("status", "Accepted"))
    result = FunctionResult(status, status in spec.accepted, _json_safe(reply))
    if spec.changes or not result.accepted:
        await record_audit(
            ctx,
            actor=actor,
            action=action,
            object_type="station",
            object_id=station_id,
            result=status[:50],
            args=detail,
        )
    return result


# get_diagnostics registers itself where its tracked uploads live (stekker/services/diagnostics.py)
from stekker.services import diagnostics as _diagnostics  # noqa: E402, F401
