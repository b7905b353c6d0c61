"""How much one station may make us store: a byte budget per station per hour.

A hostile or broken station must not fill the disk (one sent 1,783 DataTransfers of 1 MiB in
10 s). What is stored on a station's behalf (its station events and its OCPP message log)
is charged to it; once its budget for the hour is spent, what follows is counted, not stored,
until the next hour. Large event details are cut before they are charged (`cut_detail`).
Pure logic: the caller passes the time and the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

WINDOW = timedelta(hours=1)
_SMALL_VALUE = 256  # detail values up to this many bytes are kept whole when a detail is cut
_MAX_STATIONS = 100_000  # beyond this many remembered stations, those of past windows are forgotten


class Spend(StrEnum):
    """What to do with one record."""

    STORE = "store"
    EXCEEDED = "exceeded"  # over budget for the first time this window: store a notice instead
    OVER = "over"  # over budget: count it, store nothing


@dataclass(slots=True)
class StationUsage:
    """A station's storage in the current window; `*_not_stored` count what the budget refused."""

    window_start: datetime
    used_bytes: int = 0
    events_not_stored: int = 0
    frames_not_stored: int = 0
    bytes_not_stored: int = 0

    @property
    def exceeded(self) -> bool:
        return bool(self.events_not_stored or self.frames_not_stored)


def window_start(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


class StorageBudget:
    """Bytes stored per station in the current hour, against a limit (0: no limit)."""

    def __init__(self) -> None:
        self._usage: dict[str, StationUsage] = {}

    def usage(self, station_id: str, now: datetime) -> StationUsage:
        start = window_start(now)
        usage = self._usage.get(station_id)
        if usage is None or usage.window_start != start:
            if usage is None and len(self._usage) >= _MAX_STATIONS:
                self._usage = {k: u for k, u in self._usage.items() if u.window_start == start}
            usage = self._usage[station_id] = StationUsage(start)
        return usage

    def spend(self, station_id: str, size: int, now: datetime, limit: int, frame: bool = False) -> Spend:
        """Charge `size` bytes to the station, unless that takes it over `limit`."""
        usage = self.usage(station_id, now)
        if limit <= 0 or (not usage.exceeded and usage.used_bytes + size <= limit):
            usage.used_bytes += size
            return Spend.STORE
        first = not usage.exceeded
        if frame:
            usage.frames_not_stored += 1
        else:
            usage.events_not_stored += 1
        usage.bytes_not_stored += size
        return Spend.EXCEEDED if first else Spend.OVER


def detail_size(detail: dict[str, Any]) -> int:
    return len(orjson.dumps(detail, default=str))


def cut_detail(detail: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """The detail as stored: whole if it fits in `max_bytes` (as JSON), else its small values
    whole and the large ones cut to a prefix of their JSON text, marked `"truncated": true,
    "original_bytes": n`."""
    size = detail_size(detail)
    if size <= max_bytes:
        return detail
    kept: dict[str, Any] = {}
    large: list[tuple[str, str]] = []
    for key, value in detail.items():
        text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
        if len(text.encode()) <= _SMALL_VALUE:
            kept[key] = value
        else:
            large.append((key, text))
    room = max(0, max_bytes - detail_size(kept) - 64)
    for key, text in large:
        kept[key] = text[: room // max(1, len(large))]
    kept["truncated"] = True
    kept["original_bytes"] = size
    return kept
