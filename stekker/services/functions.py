"""Every remote function of a station, by name, for OCPP 1.6 and 2.0.1 alike.

A function is a neutral command with validated arguments. `run_function` checks the
arguments, audits the intent, sends it through the command port and audits the station's
answer. The API, bulk jobs, templates and the helpdesk flow all call functions through here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from stekker.db.models import ChargingStation
from stekker.services.audit import record_audit
from stekker.services.context import ServiceContext
from stekker.services.device_model import UnknownStation
from stekker.services.ports import CommandError, StationCommand


class UnknownFunction(LookupError):
    """No remote function by that name."""


class InvalidArguments(ValueError):
    """The arguments do not fit the function; the message says which and why."""


class FunctionArgs(BaseModel):
    """Base of every function's arguments: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class NoArgs(FunctionArgs):
    pass


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A remote function: its arguments, what it does, and which station answers mean yes."""

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

    def to_command(self, args: FunctionArgs) -> StationCommand:
        if self.command is not None:
            return self.command(args)
        return StationCommand(self.name, args.model_dump(exclude_none=True))


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


register(
    FunctionSpec(
        "get_local_list_version",
        "The version of the local authorization list the station holds.",
        NoArgs,
        changes=False,
    )
)


def function_names() -> list[str]:
    return sorted(FUNCTIONS)


def spec_of(name: str) -> FunctionSpec:
    spec = FUNCTIONS.get(name)
    if spec is None:
        raise UnknownFunction(f"no remote function {name!r} (known: {', '.join(function_names())})")
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
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
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
    async with ctx.db() as db:
        if await db.get(ChargingStation, station_id) is None:
            raise UnknownStation(f"no station {station_id!r}")
    action = f"station.function.{name}"
    detail = _json_safe(checked.model_dump(exclude_none=True))
    try:
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
            result=status,
            args=detail,
        )
    return result
