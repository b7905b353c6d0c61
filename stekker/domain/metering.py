"""Meter readings: sampled values, units, and the energy of a session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

ENERGY_REGISTER = "Energy.Active.Import.Register"

_TO_WH = {"Wh": Decimal(1), "kWh": Decimal(1000)}


@dataclass(frozen=True, slots=True)
class SampledValue:
    """One value a station measured, version-neutral (1.6 sampledValue / 2.0.1 sampledValue)."""

    timestamp: datetime
    value: str
    measurand: str = ENERGY_REGISTER
    phase: str | None = None
    unit: str | None = None
    context: str | None = None
    location: str | None = None
    format: str | None = None


def register_wh(sample: SampledValue) -> int | None:
    """The energy import register in whole Wh, or None if this sample is not one.

    Signed data and values we cannot read are not registers we can compute with.
    """
    if sample.measurand != ENERGY_REGISTER or sample.format == "SignedData":
        return None
    if sample.phase is not None or sample.location not in (None, "Outlet"):
        return None
    factor = _TO_WH.get(sample.unit or "Wh")
    if factor is None:
        return None
    try:
        return int((Decimal(sample.value) * factor).to_integral_value())
    except (InvalidOperation, ValueError):
        return None


def latest_register_wh(samples: list[SampledValue]) -> tuple[datetime, int] | None:
    """The newest energy register reading in a batch of samples."""
    best: tuple[datetime, int] | None = None
    for sample in samples:
        wh = register_wh(sample)
        if wh is not None and (best is None or sample.timestamp >= best[0]):
            best = (sample.timestamp, wh)
    return best


def session_energy_wh(meter_start_wh: int | None, meter_end_wh: int | None) -> int | None:
    """Energy delivered between two register readings; None when it cannot be known.

    A register that went backwards (meter swap, station reset to 0) gives no energy rather
    than a negative or a lifetime's worth.
    """
    if meter_start_wh is None or meter_end_wh is None or meter_end_wh < meter_start_wh:
        return None
    return meter_end_wh - meter_start_wh


def advance_readings(
    meter_start_wh: int | None, meter_last_wh: int | None, samples: list[SampledValue]
) -> tuple[int | None, int | None]:
    """A session's (start, latest) register after new samples.

    A missing start is taken from the Transaction.Begin sample, else the earliest register
    in the batch, never assumed to be 0. The latest reading only moves forward.
    """
    latest = latest_register_wh(samples)
    if latest is None:
        return meter_start_wh, meter_last_wh
    if meter_start_wh is None:
        readings = [(s.timestamp, wh) for s in samples if (wh := register_wh(s)) is not None]
        begin = latest_register_wh([s for s in samples if s.context == "Transaction.Begin"])
        meter_start_wh = begin[1] if begin else min(readings)[1]
    if meter_last_wh is None or latest[1] >= meter_last_wh:
        meter_last_wh = latest[1]
    return meter_start_wh, meter_last_wh
