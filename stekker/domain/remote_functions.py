"""Which remote functions, and which of their options, a station's OCPP version offers.

The gateway translates each neutral function to the station's protocol (`stekker.ocpp.v16`,
`stekker.ocpp.v201`) and refuses what a version lacks with `CommandNotSupported`. People should
not be offered what will be refused: the console asks here what to show for a station, and a
test holds this table to the gateway's translations so the two cannot drift apart.

OCPP 2.1 speaks these functions as 2.0.1 does. A station whose version we do not know yet
(it never connected) is offered what every version has.
"""

from __future__ import annotations

from typing import Literal

OCPP16 = "ocpp1.6"
OCPP201 = "ocpp2.0.1"
OCPP21 = "ocpp2.1"

Family = Literal["1.6", "2.x"]

#: Functions only an OCPP 1.6 station has: its configuration is keys, not components.
ONLY_16 = frozenset({"get_configuration", "change_configuration"})
#: Functions only OCPP 2.0.1 and 2.1 stations have.
ONLY_2X = frozenset({"get_charging_profiles"})

#: Messages a station can be asked to send (`trigger_message`), by version: 1.6 has no
#: TransactionEvent, and the upload status is one message in both (DiagnosticsStatusNotification
#: in 1.6, LogStatusNotification in 2.x: the gateway translates one to the other).
_TRIGGERS_BOTH = ("StatusNotification", "MeterValues", "Heartbeat", "BootNotification")
_TRIGGERS = {
    "1.6": (*_TRIGGERS_BOTH, "FirmwareStatusNotification", "LogStatusNotification"),
    "2.x": (*_TRIGGERS_BOTH, "TransactionEvent", "FirmwareStatusNotification", "LogStatusNotification"),
}


def family(version: str | None) -> Family | None:
    """ "1.6" or "2.x" for a known OCPP version, None when unknown."""
    if version == OCPP16:
        return "1.6"
    if version in (OCPP201, OCPP21):
        return "2.x"
    return None


def offers(version: str | None, function: str) -> bool:
    """Whether a station of `version` can run `function` (an unknown version: what all have)."""
    kind = family(version)
    if function in ONLY_16:
        return kind == "1.6"
    if function in ONLY_2X:
        return kind == "2.x"
    return True


def resets_one_evse(version: str | None) -> bool:
    """A 2.x Reset may name one EVSE; a 1.6 station resets as a whole."""
    return family(version) == "2.x"


def addresses_connectors(version: str | None) -> bool:
    """A 2.x station's EVSE may have several connectors, each addressed on its own (availability,
    unlock); in 1.6 the connector is the EVSE."""
    return family(version) == "2.x"


def trigger_messages(version: str | None) -> tuple[str, ...]:
    """What `trigger_message` may ask this station for (unknown version: what both have)."""
    kind = family(version)
    if kind is None:
        return tuple(m for m in _TRIGGERS["1.6"] if m in _TRIGGERS["2.x"])
    return _TRIGGERS[kind]


#: What a function does to the sessions running where it acts, for the confirmation people
#: see before they send it: `ends_now` (they stop at once), `ends_gracefully` (the station stops
#: them properly, then acts), `waits_for_sessions` (it acts once they are over), `refused_while_charging`
#: (the station says no while a driver charges) or `none`.
SessionImpact = Literal["ends_now", "ends_gracefully", "waits_for_sessions", "refused_while_charging", "none"]


def session_impact(function: str, args: dict[str, object], version: str | None) -> SessionImpact:
    """What `function` with `args` does to running sessions at a station of `version` (an
    unknown version: the harsher of the two)."""
    kind = family(version)
    if function == "remote_stop":
        return "ends_now"
    if function == "reset":
        if args.get("type") == "Hard":
            return "ends_now"
        # 1.6 Soft: the station stops its transactions properly, then restarts; 2.x OnIdle waits
        return "waits_for_sessions" if kind == "2.x" else "ends_gracefully"
    if function == "unlock_connector":
        # a 1.6 station ends the session on that connector; 2.x refuses an authorized one
        return "refused_while_charging" if kind == "2.x" else "ends_now"
    if function == "change_availability" and args.get("operative") is False:
        return "waits_for_sessions"
    return "none"


def where_it_acts(function: str, args: dict[str, object]) -> int | None:
    """The EVSE number a function acts on, or None for the whole station."""
    evse = args.get("evse_number")
    if function == "get_composite_schedule" and evse == 0:
        return None
    return evse if isinstance(evse, int) else None
