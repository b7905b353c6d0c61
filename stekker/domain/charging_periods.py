"""A session's charging periods, derived from what the station reported.

Pure: the session's window and registers, its sampled values and its charging-state
changes in, ``SessionPeriod``s (see ``stekker.domain.pricing``) out.

How it works:

1. The window is the session's start to its stop (no stop: its last reading). A stop
   before the start is taken as a zero-length session.
2. The energy is ``meter_stop - meter_start`` (``stekker.domain.metering``): a register that
   went backwards gives none; a missing stop register is the highest reading in the window.
   Registers in between, in time order, form a cumulative curve that only rises and stays
   within 0..total; readings outside the window, late or out of order, change nothing else.
3. Charging or not comes from the state changes (1.6 StatusNotification of the connector,
   2.0.1 TransactionEvent ``chargingState``); the state in force at the start is the last
   change at or before it. Where no state is known, the register decides: a stretch between
   readings in which the register rose is charging, one in which it did not is parked.
4. Each stretch between two readings keeps its energy; inside it the energy goes to its
   charging parts in proportion to time (a car that stopped drawing in the middle of a
   stretch did not draw while parked). Whole Wh, summing exactly to the total.
5. Adjacent pieces with the same state, current and power are merged. Parking is time
   connected and not charging after the car charged: the not-charging stretch at the start
   (the handshake before the car draws power) is free for ``start_grace``
   (``with_start_grace``); then the idle-fee grace marks the first minutes of every parked
   run free (``with_parking_grace``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from stekker.domain.metering import SampledValue, register_wh, session_energy_wh
from stekker.domain.pricing import SessionPeriod, with_parking_grace, with_start_grace

POWER = "Power.Active.Import"
CURRENT = "Current.Import"
_TO_W = {"W": Decimal(1), "kW": Decimal(1000)}
# a zero-length session that still delivered energy: the energy needs some time to be in
_MIN_LENGTH = timedelta(seconds=1)

#: 1.6 StatusNotification statuses; only Charging is charging (SuspendedEV/EVSE, Finishing,
#: Preparing, Available, Faulted... are not).
CHARGING_STATUS = "Charging"
#: 2.0.1 ChargingStateEnumType values: Charging charges; SuspendedEV, SuspendedEVSE,
#: EVConnected and Idle do not.
CHARGING_STATES = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE", "EVConnected", "Idle"})


def charging_from_status(status: str) -> bool:
    """Whether a 1.6 connector status (or a 2.0.1 connector status) means energy flows."""
    return status == CHARGING_STATUS


def charging_from_charging_state(state: str | None) -> bool | None:
    """Whether a 2.0.1 ``chargingState`` means charging; None when it says nothing."""
    if state not in CHARGING_STATES:
        return None
    return state == "Charging"


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """What the session row knows: its times (UTC-aware) and its begin and end registers (Wh)."""

    start: datetime
    stop: datetime | None
    meter_start_wh: int | None
    meter_stop_wh: int | None


@dataclass(frozen=True, slots=True)
class StateChange:
    """From ``at`` on the vehicle charges (``charging``) or stands connected without charging."""

    at: datetime
    charging: bool


@dataclass(frozen=True, slots=True)
class Reading:
    """A register reading the bill rests on: ``kind`` is start, reading or stop."""

    at: datetime
    wh: int
    kind: str


@dataclass(frozen=True, slots=True)
class DerivedPeriods:
    """The periods to price, and what they rest on.

    ``energy_wh`` equals the sum of the periods' energy; ``end`` is the session end used;
    ``inferred`` is True when charging vs. parked came (partly) from the register rather
    than from reported states; ``notes`` say, for people, what was odd about the data.
    """

    periods: tuple[SessionPeriod, ...]
    energy_wh: int
    start: datetime
    end: datetime
    readings: tuple[Reading, ...]
    inferred: bool
    notes: tuple[str, ...]


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and value >= 0 else None


def _instant_values(samples: Iterable[SampledValue], measurand: str) -> dict[datetime, Decimal]:
    """Per timestamp, the total of a measurand: the phase-less value if sent, else the sum of
    the phases (L1, L2, L3; a neutral is not a phase). Power in W, current in A."""
    totals: dict[datetime, Decimal] = {}
    phases: dict[datetime, dict[str, Decimal]] = {}
    for sample in samples:
        if sample.measurand != measurand or sample.format == "SignedData":
            continue
        if sample.location not in (None, "Outlet"):
            continue
        factor = _TO_W.get(sample.unit or "W") if measurand == POWER else Decimal(1)
        if factor is None or (measurand == CURRENT and sample.unit not in (None, "A")):
            continue
        value = _decimal(sample.value)
        if value is None:
            continue
        value *= factor
        if sample.phase is None:
            totals[sample.timestamp] = max(value, totals.get(sample.timestamp, value))
        elif sample.phase[:2] in ("L1", "L2", "L3"):
            per = phases.setdefault(sample.timestamp, {})
            per[sample.phase[:2]] = max(value, per.get(sample.phase[:2], value))
    for at, per in phases.items():
        totals.setdefault(at, sum(per.values(), Decimal(0)))
    return totals


def _highest(values: dict[datetime, Decimal], start: datetime, end: datetime) -> Decimal | None:
    seen = [v for at, v in values.items() if start <= at <= end]
    return max(seen) if seen else None


def _share(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` in whole units, summing exactly."""
    whole = sum(weights)
    if whole <= 0:
        return [total] + [0] * (len(weights) - 1) if weights else []
    shares, running, given = [], 0, 0
    for weight in weights:
        running += weight
        upto = total * running // whole
        shares.append(upto - given)
        given = upto
    return shares


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def derive_periods(
    window: SessionWindow,
    samples: Sequence[SampledValue],
    states: Sequence[StateChange] = (),
    *,
    grace: timedelta = timedelta(0),
    start_grace: timedelta = timedelta(0),
    energy_override_wh: int | None = None,
) -> DerivedPeriods:
    """The session's periods (see the module docstring).

    ``states`` may come in any order and start before the session (the last one at or
    before the start is the state in force). ``energy_override_wh`` (a correction) replaces
    the measured total; the measured curve is scaled to it.
    """
    notes: list[str] = []
    start = window.start
    registers = sorted(
        ((s.timestamp, wh) for s in samples if (wh := register_wh(s)) is not None), key=lambda r: r[0]
    )
    end = window.stop
    if end is None:
        end = max((at for at, _ in registers if at >= start), default=start)
        notes.append("no stop time: the session ends at its last reading")
    if end < start:
        notes.append(f"stop {end.isoformat()} is before start {start.isoformat()}: taken as zero length")
        end = start
    in_window = [(at, wh) for at, wh in registers if start <= at <= end]
    outside = len(registers) - len(in_window)
    if outside:
        notes.append(f"{outside} register reading(s) outside the session window ignored")

    base = window.meter_start_wh
    if base is None and in_window:
        base = in_window[0][1]
        notes.append("no start register: the first reading is the start")
    final = window.meter_stop_wh
    if final is None and in_window:
        final = max(wh for _, wh in in_window)
        notes.append("no stop register: the highest reading is the stop")
    measured = session_energy_wh(base, final)
    if measured is None:
        if base is not None and final is not None:
            notes.append(f"register went backwards ({base} → {final} Wh): no energy")
        elif base is None and final is not None:
            notes.append("no start register: no energy can be known")
        measured = 0

    readings: list[Reading] = []
    if base is not None:
        readings.append(Reading(start, base, "start"))
    points: list[tuple[datetime, int]] = [(start, 0)]
    for at, wh in in_window:
        if start < at < end:
            readings.append(Reading(at, wh, "reading"))
            level = min(max(wh - (base or 0), points[-1][1]), measured) if base is not None else 0
            if at == points[-1][0]:
                points[-1] = (at, max(level, points[-1][1]))
            else:
                points.append((at, level))
    if final is not None:
        readings.append(Reading(end, final, "stop"))

    total = measured
    if energy_override_wh is not None:
        if energy_override_wh < 0:
            raise ValueError(f"energy cannot be negative: {energy_override_wh} Wh")
        total = energy_override_wh
        notes.append(f"energy corrected from {measured} to {total} Wh")
        if measured > 0:
            points = [(at, level * total // measured) for at, level in points]
        else:
            points = [(start, 0)]  # nothing measured to follow: spread evenly
    if end > start:
        points.append((end, total))  # readings lie strictly inside, so end is a new point

    if end == start:
        if total > 0:
            notes.append(f"zero-length session with {total} Wh: a one-second period carries it")
            period = SessionPeriod(start, start + _MIN_LENGTH, total, True)
        else:
            period = SessionPeriod(start, start, 0, False)
        return DerivedPeriods((period,), total, start, end, tuple(readings), not states, tuple(notes))

    ordered = sorted(states, key=lambda s: s.at)
    initial: bool | None = None
    changes: list[StateChange] = []
    for change in ordered:
        if change.at <= start:
            initial = change.charging
        elif change.at < end:
            changes.append(change)

    power = _instant_values(samples, POWER)
    current = _instant_values(samples, CURRENT)
    inferred = False
    pieces: list[SessionPeriod] = []
    change_index = 0
    state = initial
    for (a, level_a), (b, level_b) in itertools.pairwise(points):
        rose = level_b > level_a
        cuts = [a]
        stretch_states: list[bool | None] = []
        while change_index < len(changes) and changes[change_index].at < b:
            change = changes[change_index]
            change_index += 1
            if change.at > cuts[-1]:
                stretch_states.append(state)
                cuts.append(change.at)
            state = change.charging
        stretch_states.append(state)
        cuts.append(b)
        flags: list[bool] = []
        for known in stretch_states:
            if known is None:
                inferred = True
                flags.append(rose)
            else:
                flags.append(known)
        lengths = [_us(y - x) for x, y in itertools.pairwise(cuts)]
        weights = [n if f else 0 for n, f in zip(lengths, flags, strict=True)]
        if not any(weights):
            weights = lengths
        energies = _share(level_b - level_a, weights)
        for x, y, flag, energy in zip(cuts[:-1], cuts[1:], flags, energies, strict=True):
            pieces.append(
                SessionPeriod(
                    start=x,
                    end=y,
                    energy_wh=energy,
                    charging=flag,
                    max_current=_highest(current, x, y),
                    max_power=_highest(power, x, y),
                )
            )

    periods = with_parking_grace(with_start_grace(merge_periods(pieces), start_grace), grace)
    return DerivedPeriods(tuple(periods), total, start, end, tuple(readings), inferred, tuple(notes))


def merge_periods(periods: Sequence[SessionPeriod]) -> list[SessionPeriod]:
    """Adjacent periods with the same state, current and power as one (energy summed)."""
    merged: list[SessionPeriod] = []
    for period in periods:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.end == period.start
            and (last.charging, last.free_parking, last.max_current, last.max_power)
            == (period.charging, period.free_parking, period.max_current, period.max_power)
        ):
            merged[-1] = replace(last, end=period.end, energy_wh=last.energy_wh + period.energy_wh)
        else:
            merged.append(period)
    return merged
