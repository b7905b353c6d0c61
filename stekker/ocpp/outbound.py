"""What the gateway sends for a neutral command: one CALL, or a series (1.6 has no batch
form of some commands), each with the function that makes its reply neutral again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stekker.ocpp.protocol import OcppError
from stekker.ocpp.schemas import known_actions, validate
from stekker.services.ports import CommandNotSupported, StationCallError


@dataclass(frozen=True, slots=True)
class Outbound:
    """A CALL to send, and how to read its reply."""

    action: str
    payload: dict[str, Any]
    read: Callable[[dict[str, Any]], dict[str, Any]]
    # in a series: the neutral reply for a CALLERROR, so one refused step does not stop the rest
    on_error: Callable[[StationCallError], dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class OutboundSeries:
    """Several CALLs sent one after the other; `combine` merges their neutral replies."""

    steps: list[Outbound]
    combine: Callable[[list[dict[str, Any]]], dict[str, Any]]


def status_of(reply: dict[str, Any]) -> dict[str, Any]:
    return {"status": reply["status"]}


def raw_call(protocol: str, args: dict[str, Any]) -> Outbound:
    """Any action of the version by name, checked against its schema before it leaves
    (operator tooling); the reply is returned as the station sent it."""
    action, payload = args["action"], args.get("payload", {})
    if action not in known_actions(protocol):
        raise CommandNotSupported(f"{protocol} has no action {action!r}")
    try:
        validate(protocol, action, payload)
    except OcppError as exc:
        raise StationCallError("NotSent", f"payload rejected before sending: {exc.description}") from None
    return Outbound(action, payload, lambda r: r)
