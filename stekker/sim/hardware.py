"""The simulated hardware of a charge point: its connectors (meter, status, session state, reservation,
installed charging profiles) and the EV plugged into one."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

__all__ = ["NOMINAL_VOLTAGE", "OPERATIVE_IDLE", "Connector", "Reservation", "SimulatedEV", "TxId"]

NOMINAL_VOLTAGE = 230.0

OPERATIVE_IDLE = ("Available", "Preparing")

#: A transaction id: an integer the central system assigns (OCPP 1.6) or a string the station makes up
#: (OCPP 2.0.1).
TxId = TypeVar("TxId", int, str)


@dataclass
class SimulatedEV:
    """The car plugged into a connector: battery size, state of charge and how much power its on-board
    charger accepts (and on how many phases). Power tapers off above 80% SoC and stops at 100%."""

    capacity_wh: float
    soc: float
    max_power_w: float
    phases: int

    @classmethod
    def random(cls, rng: random.Random) -> SimulatedEV:
        phases, max_power = rng.choice(
            [(1, 7_360.0), (3, 11_040.0), (3, 11_040.0), (3, 22_080.0), (2, 7_360.0)]
        )
        return cls(
            capacity_wh=rng.choice([40_000.0, 58_000.0, 64_000.0, 77_000.0, 82_000.0]),
            soc=rng.uniform(10.0, 60.0),
            max_power_w=max_power,
            phases=phases,
        )

    def acceptable_power(self) -> float:
        if self.soc >= 100.0:
            return 0.0
        if self.soc > 80.0:
            return self.max_power_w * max(0.1, (100.0 - self.soc) / 20.0)
        return self.max_power_w


@dataclass
class Reservation:
    """A ReserveNow reservation holding a connector for one id tag until ``expiry``."""

    reservation_id: int
    id_tag: str
    expiry: datetime
    parent_id_tag: str | None = None


@dataclass
class Connector(Generic[TxId]):
    """One outlet of the station, with its own energy meter (cumulative register in Wh that never resets),
    OCPP status, the transaction running on it, reservation and installed charging profiles.

    ``status`` uses the OCPP 1.6 vocabulary (Available, Preparing, Charging, SuspendedEV, SuspendedEVSE,
    Finishing, Reserved, Unavailable, Faulted): it is the finer of the two versions' views, and the 2.0.1
    station derives its connectorStatus and chargingState from it. For OCPP 2.0.1 one such outlet stands
    for an EVSE (``connector_id`` is then the EVSE id)."""

    connector_id: int
    energy_wh: float
    status: str = "Available"
    error_code: str = "NoError"
    transaction_id: TxId | None = None
    id_tag: str | None = None
    meter_start: int = 0
    tx_started_at: datetime | None = None
    claimed: bool = False
    stopping: bool = False
    inoperative: bool = False
    scheduled_availability: str | None = None
    reservation: Reservation | None = None
    ev: SimulatedEV | None = None
    power_w: float = 0.0
    last_update: float = field(default_factory=time.monotonic)
    profiles: dict[int, dict[str, Any]] = field(default_factory=dict)
    meter_task: asyncio.Task[None] | None = None

    @property
    def energy_register(self) -> int:
        return int(self.energy_wh)

    @property
    def busy(self) -> bool:
        """A session runs, starts or stops here."""
        return self.transaction_id is not None or self.claimed or self.stopping

    def change_availability(self, operative: bool) -> bool:
        """Apply a ChangeAvailability now, or when the session running here is over (then True)."""
        if self.busy:
            self.scheduled_availability = "Operative" if operative else "Inoperative"
            return True
        self.inoperative = not operative
        self.scheduled_availability = None
        return False

    def status_after_availability_change(self) -> str | None:
        """The status an idle outlet shows after a ChangeAvailability; None when it keeps its own."""
        if self.busy or self.status == "Faulted":
            return None
        if self.inoperative:
            return "Unavailable"
        if self.status == "Unavailable":
            return "Reserved" if self.reservation else "Available"
        return None

    def is_free_for(self, id_tag: str | None = None) -> bool:
        """Can a new session start here (for ``id_tag``, which matters when the connector is reserved)?"""
        if self.inoperative or self.transaction_id is not None or self.claimed or self.stopping:
            return False
        if self.status in OPERATIVE_IDLE:
            return True
        return (
            self.status == "Reserved" and self.reservation is not None and self.reservation.id_tag == id_tag
        )
