"""An EVSE of the simulated OCPP 2.0.1 station, and how its state reads in 2.0.1 terms.

The electrical state lives in a :class:`~stekker.sim.hardware.Connector` (the outlet: meter, EV, power,
charging profiles, a status in the finer 1.6 vocabulary); :class:`Evse` adds what OCPP 2.0.1 keeps per EVSE:
its connectors, the running transaction's sequence numbers, and what the next TransactionEvent must still
report (the idToken, a remoteStartId, a reservation).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from stekker.sim.hardware import Connector
from stekker.sim.metering import ACTIVE_STATUSES

__all__ = [
    "DEAUTHORIZING_REASONS",
    "STOP_TRIGGERS",
    "TX_POINT_TRIGGERS",
    "Evse",
    "charging_state",
    "normalized_points",
]

#: TxStartPoint / TxStopPoint conditions the simulated hardware can detect, with the triggerReason of the
#: TransactionEvent that reports each one becoming true. (ParkingBayOccupancy and EnergyTransfer are taken
#: as EVConnected and PowerPathClosed: the simulator has no bay sensor and energy flows once the path closes.)
TX_POINT_TRIGGERS = {
    "Authorized": "Authorized",
    "EVConnected": "CablePluggedIn",
    "PowerPathClosed": "ChargingStateChanged",
}
TX_POINT_ALIASES = {"ParkingBayOccupancy": "EVConnected", "EnergyTransfer": "PowerPathClosed"}

#: stoppedReason -> triggerReason of the TransactionEvent that reports it.
STOP_TRIGGERS = {
    "Local": "StopAuthorized",
    "Remote": "RemoteStop",
    "DeAuthorized": "Deauthorized",
    "EVDisconnected": "EVCommunicationLost",
    "ImmediateReset": "ResetCommand",
    "Timeout": "EVConnectTimeout",
    "EnergyLimitReached": "EnergyLimitReached",
    "TimeLimitReached": "TimeLimitReached",
}

#: Reasons that end the authorization but not necessarily the transaction: it ends at once only when
#: Authorized (or PowerPathClosed) is a TxStopPoint, otherwise when the cable is taken out.
DEAUTHORIZING_REASONS = ("Local", "Remote", "DeAuthorized")


def normalized_points(points: list[str]) -> set[str]:
    """TxStartPoint/TxStopPoint values mapped onto the conditions the simulator detects."""
    return {TX_POINT_ALIASES.get(p, p) for p in points}


def charging_state(c: Connector[Any]) -> str:
    """The transactionInfo.chargingState of an outlet: Idle without a car, EVConnected with one that is not
    drawing power, else Charging / SuspendedEV / SuspendedEVSE."""
    if c.ev is None:
        return "Idle"
    return c.status if c.status in ACTIVE_STATUSES else "EVConnected"


@dataclass
class Evse:
    """One EVSE: an outlet with ``connector_count`` connectors, the cable in ``plugged_connector``."""

    evse_id: int
    outlet: Connector[str]
    connector_count: int = 1
    plugged_connector: int = 1
    id_token: dict[str, Any] | None = None
    seq_no: int = 0
    token_to_report: bool = False
    remote_start_id: int | None = None
    reservation_to_report: int | None = None
    stop_reason_at_unplug: str | None = None
    sent_status: dict[int, str] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def next_seq_no(self) -> int:
        """seqNo of the next TransactionEvent: 0 for Started, then +1 per event of the same transaction
        (the per-transaction numbering OCPP 2.0.1 Edition 2 recommends, E01.FR.07 / "Sequence Number
        Generation"), so the CSMS can see whether it received all of a transaction's events."""
        seq_no = self.seq_no
        self.seq_no += 1
        return seq_no

    def connector_status(self, connector_id: int, station_inoperative: bool) -> str:
        """The connectorStatus of one connector: Occupied while the cable is in it, and the EVSE's other
        connectors Unavailable meanwhile (one EVSE charges one car at a time)."""
        c = self.outlet
        if c.status == "Faulted":
            return "Faulted"
        if c.ev is not None:
            return "Occupied" if connector_id == self.plugged_connector else "Unavailable"
        if c.status == "Unavailable" or c.inoperative or station_inoperative:
            return "Unavailable"
        return "Reserved" if c.status == "Reserved" else "Available"

    def availability_state(self, station_inoperative: bool) -> str:
        """The EVSE's AvailabilityState: that of the connector in use, or of its first connector."""
        return self.connector_status(self.plugged_connector, station_inoperative)
