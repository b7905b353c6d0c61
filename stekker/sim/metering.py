"""The electrical side of a simulated station, the same for every OCPP version: how much power flows into
the EV on an outlet, how the energy register grows, and what the meter reads.

Readings come out as :class:`Sample` values; each protocol version turns them into its own SampledValue
shape (strings with a unit in 1.6, numbers with a unitOfMeasure in 2.0.1).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stekker.sim.hardware import NOMINAL_VOLTAGE, Connector
from stekker.sim.smart_charging import STATION_MAX_PROFILE, ProfileStore, connector_limit_w, profile_limit

__all__ = ["ACTIVE_STATUSES", "SUPPORTED_MEASURANDS", "ChargingModel", "Sample"]

#: Outlet statuses (1.6 vocabulary) in which a transaction is under way with the EV plugged in.
ACTIVE_STATUSES = ("Charging", "SuspendedEV", "SuspendedEVSE")

SUPPORTED_MEASURANDS = frozenset(
    {
        "Energy.Active.Import.Register",
        "Power.Active.Import",
        "Power.Offered",
        "Current.Import",
        "Current.Offered",
        "Voltage",
        "SoC",
    }
)

_PHASES = ("L1", "L2", "L3")


@dataclass(frozen=True)
class Sample:
    """One meter reading: ``value`` in ``unit`` for ``measurand`` (per ``phase`` where it applies), meant to
    be shown with ``decimals`` digits after the point."""

    measurand: str
    value: float
    unit: str
    decimals: int
    phase: str | None = None

    @property
    def rounded(self) -> float | int:
        return round(self.value, self.decimals) if self.decimals else round(self.value)

    @property
    def text(self) -> str:
        return f"{self.value:.{self.decimals}f}"

    @property
    def location(self) -> str:
        return "EV" if self.measurand == "SoC" else "Outlet"


class ChargingModel:
    """The power electronics of one station: its current rating, the station-wide charging profiles
    (``station_profiles``, shared with the station's SmartCharging handlers) and a random source for
    measurement noise."""

    def __init__(self, max_current_a: float, station_profiles: ProfileStore, rng: random.Random) -> None:
        self.max_current_a = max_current_a
        self.station_profiles = station_profiles
        self.rng = rng

    def station_max_w(self, phases: int) -> float:
        return self.max_current_a * NOMINAL_VOLTAGE * phases

    def limit_w(self, c: Connector[Any], phases: int) -> float:
        """Power limit from installed charging profiles (lowest of station max and tx/default profile)."""
        return connector_limit_w(self.station_profiles, c, phases)

    def offered_w(self, c: Connector[Any], phases: int) -> float:
        return min(self.station_max_w(phases), self.limit_w(c, phases))

    def composite_limit_w(self, c: Connector[Any] | None, outlets: int, phases: int) -> float:
        """The limit a GetCompositeSchedule reports now: for one outlet, or (``c`` None) for the whole
        station of ``outlets`` outlets."""
        if c is not None:
            return self.offered_w(c, phases)
        station = profile_limit(self.station_profiles.values(), None, phases, STATION_MAX_PROFILE)
        return min(station if station is not None else math.inf, self.station_max_w(phases) * outlets)

    def advance(self, c: Connector[Any]) -> None:
        """Integrate the energy delivered since the last update into the register (and the EV's battery)."""
        now = time.monotonic()
        dt = max(0.0, now - c.last_update)
        c.last_update = now
        if c.power_w <= 0 or dt == 0:
            return
        delivered = c.power_w * dt / 3600.0
        c.energy_wh += delivered
        if c.ev is not None:
            c.ev.soc = min(100.0, c.ev.soc + delivered / c.ev.capacity_wh * 100.0)

    def update_power(self, c: Connector[Any]) -> None:
        """Recompute the power the outlet delivers now, from the EV, the station and charging profiles."""
        ev = c.ev
        if c.transaction_id is None or ev is None or c.status not in ACTIVE_STATUSES:
            c.power_w = 0.0
            return
        if c.status == "SuspendedEVSE" and c.id_tag is None:  # not authorized (any more): no energy
            c.power_w = 0.0
            return
        power = min(self.offered_w(c, ev.phases), ev.acceptable_power())
        if power > 0:
            power *= self.rng.uniform(0.97, 1.0)
        c.power_w = max(0.0, power)

    def follow_new_limits(self, outlets: Iterable[Connector[Any]]) -> None:
        """After charging profiles changed: account the energy so far, then deliver at the new limits."""
        for c in outlets:
            if c.transaction_id is not None:
                self.advance(c)
                self.update_power(c)

    def next_status(self, c: Connector[Any]) -> str:
        """Charging / SuspendedEV (car full or pausing) / SuspendedEVSE (limited to 0 by a profile)."""
        if c.ev is None:
            return c.status
        if c.ev.acceptable_power() <= 0:
            return "SuspendedEV"
        if self.limit_w(c, c.ev.phases) <= 0:
            return "SuspendedEVSE"
        return "Charging"

    def samples(self, c: Connector[Any], measurands: list[str]) -> list[Sample]:
        """What the meter reads now for ``measurands`` (unsupported ones are skipped)."""
        phases = c.ev.phases if c.ev is not None else 3
        out: list[Sample] = []
        for m in measurands:
            if m == "Energy.Active.Import.Register":
                out.append(Sample(m, c.energy_register, "Wh", 0))
            elif m == "Power.Active.Import":
                out.append(Sample(m, c.power_w, "W", 1))
            elif m == "Power.Offered":
                out.append(Sample(m, self.offered_w(c, phases), "W", 1))
            elif m == "Current.Import":
                per_phase = c.power_w / (NOMINAL_VOLTAGE * phases) if c.power_w > 0 else 0.0
                for i, phase in enumerate(_PHASES):
                    current = per_phase * self.rng.uniform(0.98, 1.02) if i < phases and per_phase else 0.0
                    out.append(Sample(m, current, "A", 2, phase))
            elif m == "Current.Offered":
                offered_a = min(self.max_current_a, self.limit_w(c, phases) / (NOMINAL_VOLTAGE * phases))
                out.append(Sample(m, offered_a, "A", 1))
            elif m == "Voltage":
                for phase in _PHASES:
                    volts = NOMINAL_VOLTAGE * self.rng.uniform(0.98, 1.02)
                    out.append(Sample(m, volts, "V", 1, f"{phase}-N"))
            elif m == "SoC" and c.ev is not None:
                out.append(Sample(m, round(c.ev.soc), "Percent", 0))
        return out
