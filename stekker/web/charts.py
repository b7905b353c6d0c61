"""Server-side charts: a session's power and energy over time as the numbers an inline SVG
template (`_session_chart.html`) draws, with no JavaScript.

Pure: meter values in, points and axis ticks out. Power is the station's
`Power.Active.Import` (phases summed when only per-phase values came), or, when a station
sends none, the average power between two energy register readings. Energy is what the
register says was delivered since the session's start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from stekker.domain.metering import SampledValue, register_wh
from stekker.web.format import local

POWER = "Power.Active.Import"
_TO_W = {"W": Decimal(1), "kW": Decimal(1000)}
#: At most this many points are drawn (and listed): a day of 10-second samples thins out.
MAX_POINTS = 240

WIDTH = 720
HEIGHT = 300
LEFT = 64
RIGHT = 72
TOP = 16
BOTTOM = 44


@dataclass(frozen=True, slots=True)
class Sample:
    """One moment of a session: power in W (None: not measured) and energy delivered in Wh."""

    at: datetime
    power_w: Decimal | None
    energy_wh: int | None


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """What the template draws: the polylines' points, the ticks of the three axes and the
    samples for the table that says the same in numbers."""

    samples: list[Sample]
    power_points: str
    energy_points: str
    x_ticks: list[Tick]
    power_ticks: list[Tick]
    energy_ticks: list[Tick]
    max_power_kw: Decimal
    max_energy_kwh: Decimal
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def has_power(self) -> bool:
        return bool(self.power_points)

    @property
    def has_energy(self) -> bool:
        return bool(self.energy_points)


def _power_w(sample: SampledValue) -> Decimal | None:
    if sample.measurand != POWER or sample.format == "SignedData":
        return None
    if sample.location not in (None, "Outlet"):
        return None
    factor = _TO_W.get(sample.unit or "W")
    if factor is None:
        return None
    try:
        value = Decimal(sample.value) * factor
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and value >= 0 else None


def samples_of(values: Iterable[SampledValue], meter_start_wh: int | None) -> list[Sample]:
    """Per timestamp: the total power and the energy delivered since the start."""
    totals: dict[datetime, Decimal] = {}
    phases: dict[datetime, Decimal] = {}
    registers: dict[datetime, int] = {}
    for value in values:
        power = _power_w(value)
        if power is not None:
            target = totals if value.phase is None else phases
            target[value.timestamp] = target.get(value.timestamp, Decimal(0)) + power
            continue
        wh = register_wh(value)
        if wh is not None:
            registers[value.timestamp] = wh
    moments = sorted(set(totals) | set(phases) | set(registers))
    base = meter_start_wh
    if base is None and registers:
        base = registers[min(registers)]
    out: list[Sample] = []
    for at in moments:
        power = totals.get(at, phases.get(at))
        wh = registers.get(at)
        energy = None if wh is None or base is None or wh < base else wh - base
        out.append(Sample(at, power, energy))
    if not totals and not phases:
        out = _derived_power(out)
    return out


def _derived_power(samples: list[Sample]) -> list[Sample]:
    """Average power between consecutive register readings, for stations that send no power."""
    out: list[Sample] = []
    previous: Sample | None = None
    for sample in samples:
        power = None
        if previous is not None and previous.energy_wh is not None and sample.energy_wh is not None:
            seconds = Decimal(str((sample.at - previous.at).total_seconds()))
            if seconds > 0:
                power = (Decimal(sample.energy_wh - previous.energy_wh) * 3600 / seconds).quantize(Decimal(1))
        out.append(Sample(sample.at, power, sample.energy_wh))
        if sample.energy_wh is not None:
            previous = sample
    return out


def thin(samples: Sequence[Sample], limit: int = MAX_POINTS) -> list[Sample]:
    """At most `limit` samples, evenly spread, keeping the first and the last."""
    if len(samples) <= limit:
        return list(samples)
    step = (len(samples) - 1) / (limit - 1)
    return [samples[round(i * step)] for i in range(limit)]


def nice_ceiling(value: Decimal) -> Decimal:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at least `value` (1 for nothing)."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for mantissa in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        top = mantissa.scaleb(exponent)
        if top >= value:
            return top
    return Decimal(10).scaleb(exponent)


def _decimal_label(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text.replace(".", ",")


def build(samples: Sequence[Sample]) -> Chart | None:
    """The chart of a session's samples; None when there is nothing to draw."""
    drawn = thin(samples)
    if len(drawn) < 1:
        return None
    start, end = drawn[0].at, drawn[-1].at
    span = max((end - start).total_seconds(), 1.0)
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM
    max_kw = nice_ceiling(max((s.power_w or Decimal(0) for s in drawn), default=Decimal(0)) / 1000)
    max_kwh = nice_ceiling(Decimal(max((s.energy_wh or 0 for s in drawn), default=0)) / 1000)

    def x(at: datetime) -> float:
        return round(LEFT + (at - start).total_seconds() / span * inner_w, 1)

    def y(value: Decimal, top: Decimal) -> float:
        return round(TOP + inner_h - float(value / top) * inner_h, 1)

    power = " ".join(f"{x(s.at)},{y(s.power_w / 1000, max_kw)}" for s in drawn if s.power_w is not None)
    energy = " ".join(
        f"{x(s.at)},{y(Decimal(s.energy_wh) / 1000, max_kwh)}" for s in drawn if s.energy_wh is not None
    )
    if not power and not energy:
        return None
    pattern = "%H:%M:%S" if span < 600 else "%d-%m %H:%M" if span > 86_400 else "%H:%M"
    x_ticks = []
    for i in range(5):
        moment = start + (end - start) * i / 4
        x_ticks.append(Tick(x(moment), local(moment).strftime(pattern)))
    power_ticks = [Tick(y(max_kw * i / 4, max_kw), _decimal_label(max_kw * i / 4)) for i in range(5)]
    energy_ticks = [Tick(y(max_kwh * i / 4, max_kwh), _decimal_label(max_kwh * i / 4)) for i in range(5)]
    return Chart(
        samples=drawn,
        power_points=power,
        energy_points=energy,
        x_ticks=x_ticks,
        power_ticks=power_ticks,
        energy_ticks=energy_ticks,
        max_power_kw=max_kw,
        max_energy_kwh=max_kwh,
    )
