"""Connection health of a station (requirement 96): is it connected, is it still talking, how
often does its link drop, and why did it last go away? Pure rules, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

# A station sends at least a Heartbeat every interval; allow one interval of slack
# (clock drift, a queued message) before calling it overdue.
OVERDUE_AFTER_INTERVALS = 2

# websockets closes a socket whose pong does not come back with 1011 and this reason.
_PING_TIMEOUT_CODE = 1011
_PING_TIMEOUT_REASON = "keepalive ping timeout"


def heartbeat_overdue(online: bool, last_seen: datetime | None, interval_s: int, now: datetime) -> bool:
    """True when a station is connected but has been silent for over two heartbeat
    intervals: a half-dead modem or a hung controller behind a socket that looks open."""
    if not online or last_seen is None:
        return False
    return (now - last_seen).total_seconds() > OVERDUE_AFTER_INTERVALS * interval_s


def missed_heartbeats(silence_s: float, interval_s: int) -> int:
    """Heartbeats a connected station failed to send during `silence_s` seconds without any
    message: every whole interval of silence beyond the one allowed as slack. Zero until
    the station is overdue, one as soon as it is, so the two never disagree."""
    if silence_s <= OVERDUE_AFTER_INTERVALS * interval_s:
        return 0
    return int(silence_s // interval_s) - 1


def overdue_since(last_seen: datetime, interval_s: int) -> datetime:
    """When a station that has been silent since `last_seen` became overdue."""
    return last_seen + timedelta(seconds=OVERDUE_AFTER_INTERVALS * interval_s)


class DisconnectCause(StrEnum):
    """Why a station's WebSocket ended, as the operator needs to tell the cases apart."""

    CLOSED_BY_STATION = "closed_by_station"  # the station sent the close frame first
    CLOSED_BY_SERVER = "closed_by_server"  # we closed it: protocol error, frame too big, ...
    PING_TIMEOUT = "ping_timeout"  # no pong to our WebSocket ping: a zombie socket
    CONNECTION_LOST = "connection_lost"  # TCP ended without a close frame either way
    REPLACED = "replaced"  # the station connected again and the new socket took over
    SERVER_SHUTDOWN = "server_shutdown"  # our gateway stopped
    GATEWAY_RESTART = "gateway_restart"  # found online at start: the previous process died
    GATEWAY_LOST = "gateway_lost"  # a cluster: the gateway holding it died (its heartbeat expired)


def disconnect_cause(
    received: tuple[int, str] | None,
    sent: tuple[int, str] | None,
    received_first: bool | None,
    shutting_down: bool = False,
) -> DisconnectCause:
    """Classify a closed WebSocket from the close frames received and sent (code, reason).

    `received_first` is True when the station's close frame came before ours (we echoed it).
    """
    station_first = received is not None and (sent is None or bool(received_first))
    if shutting_down and not station_first:
        return DisconnectCause.SERVER_SHUTDOWN
    if sent is not None and sent[0] == _PING_TIMEOUT_CODE and sent[1] == _PING_TIMEOUT_REASON:
        return DisconnectCause.PING_TIMEOUT
    if station_first:
        return DisconnectCause.CLOSED_BY_STATION
    if sent is not None:
        return DisconnectCause.CLOSED_BY_SERVER
    return DisconnectCause.CONNECTION_LOST


def reconnects(connects_in_window: int, connects_ever: int) -> int:
    """Reconnects within a window, given the connections opened in it and ever: every connect
    is a reconnect except the station's very first one (when that falls in the window)."""
    first_in_window = connects_ever <= connects_in_window
    return max(0, connects_in_window - (1 if first_in_window else 0))


def offline_since(
    online: bool, connected_at: datetime | None, disconnected_at: datetime | None, last_seen: datetime | None
) -> datetime | None:
    """Since when an offline station has been away (None: online, or never connected).

    A disconnect older than the last connect means the process that held the socket ended
    without recording it; the last sign of life is the best estimate then.
    """
    if online or connected_at is None:
        return None
    if disconnected_at is not None and disconnected_at >= connected_at:
        return disconnected_at
    return last_seen or connected_at
