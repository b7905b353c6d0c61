"""Sessions we close ourselves, and what a station's answers say about whether a transaction runs.

A session normally ends with the station's own stop (1.6 StopTransaction, 2.0.1 TransactionEvent
Ended). When that stop is lost (a power cut, a reboot, a dropped queue) the session would stay
"active" forever, so we close it on evidence and say why in `stop_reason`:

- `Superseded`: a new transaction started on the same EVSE;
- `station_rebooted`: the station booted (a 1.6 station's transactions end with a reboot), or
  booted and then said the transaction is not running (2.0.1);
- `not_reported_by_station`: the station reconnected without booting and its answer shows the
  transaction is not running (2.0.1 GetTransactionStatus, 1.6 connector status).

Such a close is our best knowledge, not the station's word: a stop that arrives later (from its
offline queue) still completes the session with the real end time and meter reading.
"""

from __future__ import annotations

from enum import StrEnum

SUPERSEDED = "Superseded"


class ClosedBecause(StrEnum):
    """Why we closed a session that the station never reported stopped (besides `Superseded`)."""

    STATION_REBOOTED = "station_rebooted"
    NOT_REPORTED_BY_STATION = "not_reported_by_station"


#: Stop reasons of sessions we closed without the station's stop: its own stop may still correct them.
CLOSED_WITHOUT_STATION_STOP = frozenset({SUPERSEDED, *(reason.value for reason in ClosedBecause)})


def correctable(stop_reason: str | None) -> bool:
    """Whether the station's own stop, arriving now, should replace how the session was closed."""
    return stop_reason in CLOSED_WITHOUT_STATION_STOP


# OCPP 1.6 connector states (StatusNotification) during a transaction that delivers, or could
# deliver, energy. Faulted says nothing either way (some stations keep a transaction open
# through a fault); every other state has no transaction running.
_RUNNING_16 = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE"})
_UNDECIDED_16 = frozenset({"Faulted"})


def connector_runs_transaction(status: str) -> bool | None:
    """What a 1.6 connector status says about its transaction: True running, False not, None unknown."""
    if status in _RUNNING_16:
        return True
    if status in _UNDECIDED_16:
        return None
    return False


def transaction_has_ended(ongoing: bool | None, messages_in_queue: bool) -> bool:
    """Whether a 2.0.1 GetTransactionStatus answer shows the transaction over with nothing left to
    tell: not ongoing, and no message of it still queued (those would bring its real end)."""
    return ongoing is False and not messages_in_queue
