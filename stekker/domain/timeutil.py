"""Time at the edges: parse whatever offset a station sends, keep UTC inside."""

from __future__ import annotations

from datetime import UTC, datetime

#: The zone of the network (the tender is a Dutch municipality's): where a location has none, and
#: where network-wide reports and reference sessions are read.
HOME_TIME_ZONE = "Europe/Amsterdam"


class InvalidTimestamp(ValueError):
    """A timestamp that is not ISO 8601 with a date and a time."""


def parse_timestamp(text: str) -> datetime:
    """Parse an OCPP/ISO 8601 timestamp; naive values are taken as UTC (as stations mean them)."""
    try:
        value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidTimestamp(f"not an ISO 8601 timestamp: {text!r}") from exc
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """UTC, millisecond precision, with a Z: the form every OCPP peer parses."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
