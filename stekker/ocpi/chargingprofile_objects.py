"""The OCPI 2.2.1 ChargingProfiles objects on the wire: the SetChargingProfile a partner PUTs,
our immediate ChargingProfileResponse, and the three results we POST to its `response_url`
later (ActiveChargingProfileResult, ChargingProfileResult, ClearProfileResult).

A ChargingProfile becomes our neutral schedule (`stekker.services.functions.ChargingSchedule`)
here. Limits and the minimum rate are JSON numbers with at most one decimal (spec: "Accepts
at most one digit fraction"), periods start at 0 and increase (OCPP's rule, which the station
would otherwise refuse): anything else is refused with 2001, never rounded to fit.
Unknown fields are ignored (later OCPI versions add some).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, model_validator

from stekker.ocpi.command_objects import Url
from stekker.ocpi.envelope import ocpi_time
from stekker.ocpi.token_objects import OcpiDateTime
from stekker.services.functions import ChargingSchedule, SchedulePeriod
from stekker.services.roaming_profiles import ActiveSchedule, ProfileOutcome, ProfileResult

#: Largest limit we pass on (W or A); the neutral schedule's bound.
MAX_RATE = 1_000_000
#: Periods in one profile; the neutral schedule's bound (stations hold far fewer).
MAX_PERIODS = 100


class ChargingRateUnit(StrEnum):
    """W: total power; A: current per phase."""

    W = "W"
    A = "A"


class ChargingProfileResponseType(StrEnum):
    """Our immediate answer: did we take the request?"""

    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TOO_OFTEN = "TOO_OFTEN"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class ChargingProfileResultType(StrEnum):
    """What the station made of it, sent later."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


_RESULTS = {
    ProfileResult.ACCEPTED: ChargingProfileResultType.ACCEPTED,
    ProfileResult.REJECTED: ChargingProfileResultType.REJECTED,
    ProfileResult.UNKNOWN: ChargingProfileResultType.UNKNOWN,
}


def _json_number(value: Any) -> Any:
    # a JSON number only: pydantic would also read "16" or true as a number
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number")
    return Decimal(str(value))


def _one_decimal(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value > MAX_RATE:
        raise ValueError(f"must be from 0 to {MAX_RATE}")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -1:
        raise ValueError("accepts at most one digit fraction (e.g. 8.1)")
    return value


Rate = Annotated[Decimal, BeforeValidator(_json_number), AfterValidator(_one_decimal)]


class OcpiChargingProfilePeriod(BaseModel):
    """From `start_period` seconds after the profile's start: at most `limit`."""

    model_config = ConfigDict(extra="ignore")

    start_period: StrictInt = Field(ge=0, le=10_000_000)
    limit: Rate


class OcpiChargingProfile(BaseModel):
    """OCPI ChargingProfile: limits over time, absolute (start_date_time) or from the start of
    charging."""

    model_config = ConfigDict(extra="ignore")

    start_date_time: OcpiDateTime | None = None
    duration: StrictInt | None = Field(default=None, ge=0, le=100_000_000)
    charging_rate_unit: ChargingRateUnit
    min_charging_rate: Rate | None = None
    charging_profile_period: list[OcpiChargingProfilePeriod] = Field(min_length=1, max_length=MAX_PERIODS)

    @model_validator(mode="after")
    def _periods_in_order(self) -> OcpiChargingProfile:
        starts = [p.start_period for p in self.charging_profile_period]
        if starts[0] != 0 or any(b <= a for a, b in pairwise(starts)):
            raise ValueError("charging_profile_period: the first start_period is 0 and they increase")
        return self

    def schedule(self) -> ChargingSchedule:
        """Our neutral schedule for this profile."""
        return ChargingSchedule(
            unit=self.charging_rate_unit.value,
            periods=[
                SchedulePeriod(start=p.start_period, limit=p.limit) for p in self.charging_profile_period
            ],
            start_at=self.start_date_time,
            duration=self.duration,
            min_rate=self.min_charging_rate,
        )


class SetChargingProfile(BaseModel):
    """The body of a PUT: the profile, and where its result goes."""

    model_config = ConfigDict(extra="ignore")

    charging_profile: OcpiChargingProfile
    response_url: Url


def response(result: ChargingProfileResponseType, timeout: int) -> dict[str, Any]:
    """The ChargingProfileResponse object (the `data` of our immediate answer)."""
    return {"result": result.value, "timeout": timeout}


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def active_profile(schedule: ActiveSchedule) -> dict[str, Any]:
    """The ActiveChargingProfile object: the station's schedule from the moment it computed it."""
    profile: dict[str, Any] = {
        "start_date_time": ocpi_time(schedule.start_at),
        "charging_rate_unit": schedule.unit,
        "charging_profile_period": [
            {"start_period": p.start, "limit": _number(p.limit)} for p in schedule.periods
        ],
    }
    if schedule.duration is not None:
        profile["duration"] = schedule.duration
    return {"start_date_time": ocpi_time(schedule.start_at), "charging_profile": profile}


def result(outcome: ProfileOutcome) -> dict[str, Any]:
    """A ChargingProfileResult or ClearProfileResult; an ActiveChargingProfileResult when the
    outcome carries the station's schedule."""
    body: dict[str, Any] = {"result": _RESULTS[outcome.result].value}
    if outcome.schedule is not None and outcome.result is ProfileResult.ACCEPTED:
        body["profile"] = active_profile(outcome.schedule)
    return body
