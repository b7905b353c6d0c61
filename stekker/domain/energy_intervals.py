"""Splitting a session's energy over fixed clock intervals (15 minutes for supplier settlement).

Pure code, no I/O. The energy register is known only at the moments a station reports it;
between two readings the energy is taken to flow at a constant rate (linear interpolation).
The split is exact in whole Wh: the register value is interpolated (rounded down) at every
interval boundary and each interval gets the difference of its two boundary values, so the
parts always add up to the session's energy (last reading minus first) without a rounding
remainder.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

QUARTER_HOUR = timedelta(minutes=15)
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, order=True)
class Reading:
    """One energy import register value (Wh) at a moment (UTC)."""

    at: datetime
    wh: int


def floor_to_interval(moment: datetime, interval: timedelta = QUARTER_HOUR) -> datetime:
    """The start of the interval holding `moment`, intervals aligned to UTC midnight."""
    return moment - (moment - _EPOCH) % interval


def is_aligned(moment: datetime, interval: timedelta = QUARTER_HOUR) -> bool:
    return (moment - _EPOCH) % interval == timedelta(0)


def interval_starts(start: datetime, end: datetime, interval: timedelta = QUARTER_HOUR) -> Iterator[datetime]:
    """Every interval start in [floor(start), end)."""
    moment = floor_to_interval(start, interval)
    while moment < end:
        yield moment
        moment += interval


def clean_readings(readings: Sequence[Reading], start: Reading, end: Reading | None) -> list[Reading]:
    """The readings a split can rest on: from `start` (the session's meter start at its start
    time) to `end` (its meter stop at its stop time; None for a running session, which ends at
    its newest reading), in time order and never going backwards.

    A reading outside the session's time is dropped; a register that dips (a glitch or a
    retransmitted older value) is held at the highest value so far, and one above the final
    reading is held at it, so the energy is monotone and ends exactly at the session's total.
    """
    inside = sorted(r for r in readings if r.at >= start.at and (end is None or r.at <= end.at))
    points = [start, *inside]
    if end is not None:
        points.append(end)
    final = points[-1].wh if end is not None else max(p.wh for p in points)
    cleaned: list[Reading] = []
    highest = start.wh
    for point in points:
        highest = max(highest, min(point.wh, final))
        cleaned.append(Reading(point.at, highest))
    return cleaned


def register_at(readings: Sequence[Reading], moment: datetime) -> int:
    """The register just before `moment` (its left limit), interpolated linearly and rounded
    down to a whole Wh. `readings` must be cleaned (sorted, monotone)."""
    if moment <= readings[0].at:
        return readings[0].wh
    for before, after in pairwise(readings):
        if before.at < moment <= after.at:
            span = (after.at - before.at) // _MICROSECOND
            elapsed = (moment - before.at) // _MICROSECOND
            return before.wh + (after.wh - before.wh) * elapsed // span
    return readings[-1].wh


def split_energy(
    readings: Sequence[Reading],
    window_start: datetime,
    window_end: datetime,
    interval: timedelta = QUARTER_HOUR,
) -> dict[datetime, int]:
    """Energy (Wh) per interval start for the intervals of [window_start, window_end) the
    readings touch; intervals without energy are left out. `readings` must be cleaned.

    An energy jump at an exact boundary belongs to the interval that starts there.
    """
    if len(readings) < 2 or readings[-1].wh == readings[0].wh:
        return {}
    first = max(floor_to_interval(readings[0].at, interval), floor_to_interval(window_start, interval))
    last = min(readings[-1].at + interval, window_end)
    parts: dict[datetime, int] = {}
    moment = first
    below = register_at(readings, max(moment, window_start))
    while moment < last:
        upper = min(moment + interval, window_end)
        above = register_at(readings, upper)
        if above > below:
            parts[moment] = above - below
        below = above
        moment += interval
    return parts
