"""Public identifiers: the eMI3 EVSE id printed on a station."""

from __future__ import annotations

import re

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def evse_emi3_id(prefix: str, station_id: str, evse_number: int) -> str:
    """`NL*STK` + station `CP-0001` + EVSE 1 → `NL*STK*ECP0001*1` (eMI3: country*operator*E...)."""
    outlet = _NOT_ALNUM.sub("", station_id).upper()[:30] or "X"
    return f"{prefix}*E{outlet}*{evse_number}"
