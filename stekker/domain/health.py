"""Connection health of a station (requirement 96): is a connected station still talking?"""

from __future__ import annotations

from datetime import datetime

# A station sends at least a Heartbeat every interval; allow one interval of slack
# (clock drift, a queued message) before calling it overdue.
OVERDUE_AFTER_INTERVALS = 2


def heartbeat_overdue(online: bool, last_seen: datetime | None, interval_s: int, now: datetime) -> bool:
    """True when a station is connected but has been silent for over two heartbeat
    intervals: a half-dead modem or a hung controller behind a socket that looks open."""
    if not online or last_seen is None:
        return False
    return (now - last_seen).total_seconds() > OVERDUE_AFTER_INTERVALS * interval_s
