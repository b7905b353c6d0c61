"""Date-time query parameters that pydantic alone would take too loosely (a number as a unix
timestamp). Below the edges: the operator API, OCPI and open data all use them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator

__all__ = ["IsoAwareDateTime", "IsoDateTime"]

# a date first (2026-01-01), then optionally the time and offset, which pydantic checks
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    """Refuse what pydantic would read as a unix timestamp ("0.5", "1700000000"): a time in a
    query is written as ISO 8601, and a number there is a mistake, not 1970."""
    if isinstance(value, str) and not _ISO_START.match(value.strip()):
        raise ValueError(
            "expected an ISO 8601 date-time such as 2026-01-01T08:00:00+01:00 (or a date, 2026-01-01)"
        )
    if isinstance(value, int | float):
        raise ValueError("expected an ISO 8601 date-time, not a number")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
"""A date-time query parameter: ISO 8601 (a date alone is its midnight); numbers are 422."""

IsoAwareDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
"""The same with its offset required (2026-01-01T08:00:00Z)."""
