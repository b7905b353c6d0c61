"""When a location can be used, one meaning for every edge (public page, OCPI, open data,
DATEX II): read from the OCPI 2.2.1 Hours object a location stores.

The rule: **no opening hours stored means open around the clock** (24/7). That is how OCPI
is read by the Dutch access point and every eMSP we publish to (`opening_times` absent: no
restriction on access), it is what the API and the CLI document ("null: open 24/7"), and it
is what we publish (`{"twentyfourseven": true}`). Only hours that say they are not 24/7 yet
give no regular hours and no exceptional openings leave the times truly **unknown**: then
nobody says "open" (DATEX II `afacUnknownOperatingHours`, "Niet bekend" on the public page).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

ALWAYS_OPEN: dict[str, Any] = {"twentyfourseven": True}


class Availability(Enum):
    """What the stored hours say: open around the clock, open at set times, or not known."""

    ALWAYS = "always"
    REGULAR = "regular"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class DayHours:
    """The periods (`HH:MM` begin, end) in which a location is open on one ISO weekday (1 = Monday)."""

    weekday: int
    periods: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """A location's opening hours as people read them: its `availability` and, when open at set
    times, the regular hours per weekday (days without hours are closed)."""

    availability: Availability
    days: tuple[DayHours, ...] = ()


def _regular_days(items: Any) -> tuple[DayHours, ...]:
    """Valid regular hours grouped by weekday; anything malformed is left out."""
    days: dict[int, list[tuple[str, str]]] = {}
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        day, begin, end = item.get("weekday"), item.get("period_begin"), item.get("period_end")
        if isinstance(day, int) and 1 <= day <= 7 and isinstance(begin, str) and isinstance(end, str):
            days.setdefault(day, []).append((begin[:5], end[:5]))
    return tuple(DayHours(day, tuple(sorted(periods))) for day, periods in sorted(days.items()))


def opening_hours(hours: Mapping[str, Any] | None) -> OpeningHours:
    """The stored OCPI Hours (None: none stored) read by the module's rule."""
    if not hours or hours.get("twentyfourseven"):
        return OpeningHours(Availability.ALWAYS)
    days = _regular_days(hours.get("regular_hours"))
    if days or hours.get("exceptional_openings"):
        return OpeningHours(Availability.REGULAR, days)
    return OpeningHours(Availability.UNKNOWN)


def published_hours(hours: Mapping[str, Any] | None) -> dict[str, Any]:
    """The OCPI Hours we publish: always present, `{"twentyfourseven": true}` when none are
    stored (the rule above), else the stored object as it is."""
    return dict(ALWAYS_OPEN) if not hours else dict(hours)
