"""The command port: how services ask a station to do something without knowing the gateway."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class CommandError(Exception):
    """A command could not be carried out; the message says why in plain words."""


class StationOffline(CommandError):
    """The station has no open connection to any gateway."""


class OutcomeUnknown(CommandError):
    """The call was sent, then the connection closed before an answer: the station may have
    done it (a station that takes Reset Hard often reboots without answering). Not "offline":
    sending it again may do it twice."""


class CommandTimeout(CommandError):
    """The station did not answer in time."""


class CommandNotSupported(CommandError):
    """The station's protocol version has no such function."""


class ClusterUnavailable(CommandError):
    """The station is held by another process and cluster messaging (Redis) cannot be
    reached: the command could not be handed over (an API answers 503)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("cluster messaging unavailable" + (f": {detail}" if detail else ""))


class StationCallError(CommandError):
    """The station answered with a CALLERROR, or with a reply that breaks the schema."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"station answered {code}: {description}".rstrip(": "))
        self.code = code
        self.description = description


@dataclass(frozen=True, slots=True)
class StationCommand:
    """A version-neutral request to a station, e.g. `remote_stop` with `transaction_id`.

    The gateway translates it to the station's protocol (1.6 RemoteStopTransaction, 2.0.1
    RequestStopTransaction) and the reply back to a neutral dict such as {"status": ...}.
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)


class CommandPort(Protocol):
    """Implemented by the gateway (in-process) or a Redis router (scaled out)."""

    def is_connected(self, station_id: str) -> bool: ...

    def connected_stations(self) -> list[str]: ...

    def protocol(self, station_id: str) -> str | None:
        """The OCPP version the station speaks now (e.g. "ocpp2.0.1"); None when offline."""
        ...

    async def send(
        self, station_id: str, command: StationCommand, timeout: float | None = None
    ) -> dict[str, Any]:
        """Return the station's neutral reply; raise a CommandError subclass otherwise."""
        ...
