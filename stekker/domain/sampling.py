"""Count often, record seldom: at most one record per key per interval, carrying how many
occurrences it stands for (an unauthenticated handshake flood wrote a row per attempt,
~1.2 million an hour). Pure logic: the caller passes the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MAX_KEYS = 100_000


@dataclass(slots=True)
class _Key:
    recorded_at: datetime
    unrecorded: int = 0


class Sampler:
    """Which occurrences of a key get a record. Also totals all occurrences for a periodic
    summary line (`summary`)."""

    def __init__(self, interval: timedelta) -> None:
        self.interval = interval
        self._keys: dict[str, _Key] = {}
        self._period_start: datetime | None = None
        self._period_count = 0
        self._period_keys: set[str] = set()

    def offer(self, key: str, now: datetime) -> int | None:
        """None: count this occurrence only; else record it, standing for this many (itself
        and those counted since the key's last record)."""
        self._period_count += 1
        if len(self._period_keys) < _MAX_KEYS:
            self._period_keys.add(key)
        if self._period_start is None:
            self._period_start = now
        seen = self._keys.get(key)
        if seen is not None and now - seen.recorded_at < self.interval:
            seen.unrecorded += 1
            return None
        if len(self._keys) >= _MAX_KEYS:
            self._keys = {k: v for k, v in self._keys.items() if now - v.recorded_at < self.interval}
        self._keys[key] = _Key(now)
        return 1 + (seen.unrecorded if seen is not None else 0)

    def summary(self, now: datetime) -> tuple[int, int, float] | None:
        """Once per interval: (occurrences, distinct keys, seconds) since the last summary."""
        if self._period_start is None or now - self._period_start < self.interval:
            return None
        result = (self._period_count, len(self._period_keys), (now - self._period_start).total_seconds())
        self._period_start, self._period_count, self._period_keys = None, 0, set()
        return result
