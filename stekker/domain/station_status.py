"""One status per station, derived from its connection and its EVSEs: what the operator, the
helpdesk and a program need to see first. Pure rules, no I/O.

A station reports a status per connector (1.6: per connectorId, which is its EVSE; 2.0.1: per
EVSE and connector) and sometimes one for itself (1.6 connectorId 0: Available, Unavailable
or Faulted). Nobody can act on nine connector statuses at 3 a.m.; they need one word per
station, and the word must not lie: a station whose EVSE is charging is not "Available".

The rule, in this order (the first that holds wins):

1. **Offline**: the station is not connected. Whatever its EVSEs said last is stale, and
   nobody can charge there until it is back.
2. **Faulted**: the station reports itself faulted, or any of its EVSEs is. One broken EVSE
   needs a technician even while the other one charges.
3. **Charging**: an EVSE delivers energy (1.6 `Charging`; 2.0.1 `Occupied` with the
   transaction's chargingState `Charging`).
4. **Occupied**: an EVSE is in use without delivering energy: a car being prepared, paused
   by the car or the station, finishing, or plugged in (1.6 `Preparing`, `SuspendedEV`,
   `SuspendedEVSE`, `Finishing`; 2.0.1 `Occupied`).
5. **Unavailable** when the station as a whole reports it (1.6 connectorId 0): switched off
   by the operator or itself, so nobody can start there, even if an EVSE last said Available.
6. **Reserved**: an EVSE is held for a driver.
7. **Available**: an EVSE is free to use.
8. **Unavailable**: every EVSE with a known status is switched off.
9. **Unknown**: connected, but no EVSE has reported yet.

An EVSE's own status follows the same order over its connectors (one connector charging
makes the EVSE charging; one faulted makes it faulted), so both OCPP versions end in the
same words: a 2.0.1 `Occupied` connector whose transaction reports `Charging` reads exactly
like a 1.6 connector that reports `Charging`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class StationStatus(StrEnum):
    """The one-word status of a station or of one of its EVSEs (an EVSE is never Offline:
    that belongs to its station). The values are OCPP's words where OCPP has them."""

    OFFLINE = "Offline"
    FAULTED = "Faulted"
    CHARGING = "Charging"
    OCCUPIED = "Occupied"
    RESERVED = "Reserved"
    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"
    UNKNOWN = "Unknown"


#: An OCPP 1.6 or 2.0.1 connector status in our words. A status we do not know (a newer
#: version, a vendor's own) counts as Unknown rather than guessed.
_FROM_OCPP: dict[str, StationStatus] = {
    "Available": StationStatus.AVAILABLE,
    "Preparing": StationStatus.OCCUPIED,
    "Charging": StationStatus.CHARGING,
    "SuspendedEV": StationStatus.OCCUPIED,
    "SuspendedEVSE": StationStatus.OCCUPIED,
    "Finishing": StationStatus.OCCUPIED,
    "Occupied": StationStatus.OCCUPIED,  # 2.0.1: the transaction's chargingState says more
    "Reserved": StationStatus.RESERVED,
    "Unavailable": StationStatus.UNAVAILABLE,
    "Faulted": StationStatus.FAULTED,
}

#: Which EVSE status speaks for the whole, first to last (rules 2-4 and 6-9 above).
_PRIORITY: tuple[StationStatus, ...] = (
    StationStatus.FAULTED,
    StationStatus.CHARGING,
    StationStatus.OCCUPIED,
    StationStatus.RESERVED,
    StationStatus.AVAILABLE,
    StationStatus.UNAVAILABLE,
    StationStatus.UNKNOWN,
)
#: What still shows when the station as a whole reports Unavailable (rule 5).
_ABOVE_STATION_UNAVAILABLE = frozenset(
    {StationStatus.FAULTED, StationStatus.CHARGING, StationStatus.OCCUPIED}
)
#: 2.0.1 TransactionEvent chargingState values that mean a car is plugged in.
_PLUGGED_IN = frozenset({"EVConnected", "SuspendedEV", "SuspendedEVSE"})


def from_ocpp(status: str | None) -> StationStatus:
    """A connector status as a station sent it (1.6 or 2.0.1), in our words."""
    return _FROM_OCPP.get(status or "", StationStatus.UNKNOWN)


def _first(found: Iterable[StationStatus]) -> StationStatus:
    present = set(found)
    return next((s for s in _PRIORITY if s in present), StationStatus.UNKNOWN)


def evse_status(connector_statuses: Iterable[str | None], charging_state: str | None = None) -> StationStatus:
    """An EVSE's status from its connectors' OCPP statuses and, for 2.0.1, the chargingState
    of the transaction running on it (None: no transaction, or a 1.6 station).

    2.0.1 reports only `Occupied` on the connector; whether energy flows is in the
    transaction. That refines Occupied (or a connector not yet reported) to Charging, and a
    plugged-in car on an unreported connector to Occupied; it never overrides a fault, a
    reservation or an Available reported later."""
    status = _first(from_ocpp(s) for s in connector_statuses)
    if status in (StationStatus.OCCUPIED, StationStatus.UNKNOWN) and charging_state == "Charging":
        return StationStatus.CHARGING
    if status is StationStatus.UNKNOWN and charging_state in _PLUGGED_IN:
        return StationStatus.OCCUPIED
    return status


def station_status(
    online: bool, evses: Iterable[StationStatus], reported: str | None = None
) -> StationStatus:
    """The station's one status (the rule in this module's docstring) from whether it is
    connected, its EVSEs' statuses (`evse_status`) and the status it reported for itself
    (1.6 connectorId 0; None when it never did, as 2.0.1 stations do not)."""
    if not online:
        return StationStatus.OFFLINE
    whole = from_ocpp(reported)
    if whole is StationStatus.FAULTED:
        return StationStatus.FAULTED
    status = _first(evses)
    if whole is StationStatus.UNAVAILABLE and status not in _ABOVE_STATION_UNAVAILABLE:
        return StationStatus.UNAVAILABLE
    return status
