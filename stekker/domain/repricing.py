"""Pricing past sessions again: the periods of a session read back from its OCPI CDR.

A CDR's charging periods say, from each `start_date_time` until the next (or the CDR's end),
how much energy was delivered and whether the car was charging (TIME) or parked
(PARKING_TIME). That is all a tariff needs, so a month of sessions can be repriced under a
proposed tariff from the CDRs alone, without reading a meter value. Power and current are
not in a CDR: restrictions on them do not hold in a repricing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from stekker.domain.pricing import SessionPeriod


def _instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"a CDR time has no offset: {value!r}")
    return moment


def periods_from_cdr(data: Mapping[str, Any]) -> list[SessionPeriod]:
    """The session periods of an OCPI CDR; ValueError when the CDR cannot give them."""
    raw = data.get("charging_periods") or []
    end = _instant(data["end_date_time"])
    starts = [_instant(item["start_date_time"]) for item in raw]
    periods: list[SessionPeriod] = []
    for index, item in enumerate(raw):
        start = starts[index]
        until = starts[index + 1] if index + 1 < len(starts) else max(end, start)
        kinds = {d["type"]: d.get("volume", 0) for d in item.get("dimensions") or ()}
        energy_wh = int((Decimal(str(kinds.get("ENERGY", 0))) * 1000).to_integral_value())
        periods.append(
            SessionPeriod(
                start, until, max(0, energy_wh) if until > start else 0, "PARKING_TIME" not in kinds
            )
        )
    total_wh = int((Decimal(str(data.get("total_energy") or 0)) * 1000).to_integral_value())
    if not periods:
        start = _instant(data["start_date_time"])
        return [SessionPeriod(start, max(end, start), total_wh if end > start else 0, True)]
    if total_wh > 0 and not any(p.energy_wh for p in periods):
        periods = _spread(periods, total_wh)
    return periods


def _spread(periods: list[SessionPeriod], total_wh: int) -> list[SessionPeriod]:
    """A CDR that gives only its total energy (OCPI allows periods without ENERGY): the
    energy spread over its charging time, in whole Wh that add up to the total."""
    weights = [_seconds(p) if p.charging else 0 for p in periods]
    if not sum(weights):
        weights = [_seconds(p) for p in periods]
    total_weight = sum(weights)
    if not total_weight:
        return periods
    result: list[SessionPeriod] = []
    given = 0
    cumulative = 0
    for period, weight in zip(periods, weights, strict=True):
        cumulative += weight
        share = total_wh * cumulative // total_weight - given
        given += share
        result.append(replace(period, energy_wh=share))
    return result


def _seconds(period: SessionPeriod) -> int:
    return int((period.end - period.start).total_seconds())
