"""How an event is written as a Redis stream entry, and read back.

An entry has the fields `topic`, `data` (the event's data as JSON), `at` (ISO 8601, UTC) and
`node` (the process that published it), and `fanned` when that process already gave the event
to its own fan-out listeners (it was kept while Redis was away, see `stekker.bus.backlog`).

Event data is meant to be JSON: str, int, float, bool, None, lists and dicts with str keys come
back equal. What JSON cannot say comes back as text, the form our publishers already use for
money: a `Decimal` as its exact string ("12.50"), a `datetime` as ISO 8601, an Enum as its
value, a set as a sorted list, dict keys as str, anything else as `str(value)`. A handler that
needs a number back parses it: in one process (InProcessBus) it would get the original object,
so publishers put text in events, not objects (see `session.*`, `cdr.created`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from stekker.bus import Event

# orjson writes datetimes (ISO 8601), enums, dataclasses and UUIDs itself; str keys for int keys
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return [str(v) for v in value]
    # publish never fails on a value JSON cannot hold: its text is what other processes get
    return str(value)


def encode_data(data: dict[str, Any]) -> str:
    """The event data as JSON text (never raises for any value; see the module docstring)."""
    return orjson.dumps(data, default=_default, option=_OPTIONS).decode()


class MalformedEntry(ValueError):
    """A stream entry that is not an event we wrote (missing or garbled fields)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry read back: the event, who published it and who already fanned it out."""

    event: Event
    node: str
    fanned: str


def decode_entry(fields: Any) -> Entry:
    """The event in a stream entry's fields; `MalformedEntry` when it is not one of ours."""
    if not isinstance(fields, dict):
        raise MalformedEntry(f"no fields ({type(fields).__name__})")
    topic = fields.get("topic")
    raw = fields.get("data")
    at = fields.get("at")
    if not isinstance(topic, str) or not topic or len(topic) > 200:
        raise MalformedEntry("no topic")
    if not isinstance(raw, str) or not isinstance(at, str):
        raise MalformedEntry(f"{topic}: no data or no time")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedEntry(f"{topic}: data is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MalformedEntry(f"{topic}: data is not an object")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise MalformedEntry(f"{topic}: time {at[:40]!r} is not ISO 8601") from None
    if when.tzinfo is None:
        raise MalformedEntry(f"{topic}: time {at[:40]!r} has no offset")
    node = fields.get("node")
    fanned = fields.get("fanned")
    return Entry(
        Event(topic, data, when),
        node if isinstance(node, str) else "",
        fanned if isinstance(fanned, str) else "",
    )
