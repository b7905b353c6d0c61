"""A neutral charging schedule in OCPP's spelling, which 1.6 and 2.0.1 share (2.0.1 adds an id)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stekker.domain.timeutil import format_timestamp


def json_number(value: Any) -> int | float:
    """A Decimal limit as JSON: an integer when whole (1.6 wants multiples of 0.1, and a float
    such as 16.3 fails that check in some validators), else a float."""
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else float(number)


def schedule_payload(schedule: dict[str, Any]) -> dict[str, Any]:
    """chargingRateUnit, chargingSchedulePeriod and the optional start, duration, minimum rate."""
    periods = []
    for period in schedule["periods"]:
        item: dict[str, Any] = {"startPeriod": period["start"], "limit": json_number(period["limit"])}
        if period.get("phases") is not None:
            item["numberPhases"] = period["phases"]
        periods.append(item)
    out: dict[str, Any] = {"chargingRateUnit": schedule["unit"], "chargingSchedulePeriod": periods}
    if schedule.get("start_at") is not None:
        out["startSchedule"] = format_timestamp(schedule["start_at"])
    if schedule.get("duration") is not None:
        out["duration"] = schedule["duration"]
    if schedule.get("min_rate") is not None:
        out["minChargingRate"] = json_number(schedule["min_rate"])
    return out
