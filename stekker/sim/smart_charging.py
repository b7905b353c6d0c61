"""SmartCharging: installing, clearing and evaluating charging profiles.

Profiles are kept as the plain dicts the central system sent (snake_case keys, as the ``ocpp`` package
delivers them) in the OCPP 1.6 shape, in stores keyed by charging profile id: one store for the station
(connector 0) and one per connector. OCPP 2.0.1 profiles are brought into that shape first
(:func:`profile_from_v201`): the rules for stacking and evaluating them are the same.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from stekker.sim.hardware import NOMINAL_VOLTAGE, Connector
from stekker.sim.timeutil import parse_iso, utc_now

__all__ = [
    "STATION_MAX_PROFILE",
    "ProfileStore",
    "clear_profiles",
    "connector_limit_w",
    "install_profile",
    "profile_from_v201",
    "profile_limit",
    "purpose_from_v201",
]

ProfileStore = dict[int, dict[str, Any]]

#: The purpose of a profile that limits the whole station (OCPP 2.0.1 calls it ChargingStationMaxProfile).
STATION_MAX_PROFILE = "ChargePointMaxProfile"


def purpose_from_v201(purpose: str) -> str:
    """An OCPP 2.0.1 chargingProfilePurpose in the 1.6 vocabulary used here."""
    return STATION_MAX_PROFILE if purpose == "ChargingStationMaxProfile" else purpose


def profile_from_v201(profile: dict[str, Any]) -> dict[str, Any]:
    """An OCPP 2.0.1 ChargingProfile (snake_case) in the 1.6 shape: ``id`` becomes
    ``charging_profile_id`` and the first of its (up to three) schedules is the one followed."""
    schedules = profile.get("charging_schedule") or [{}]
    return {
        **profile,
        "charging_profile_id": int(profile["id"]),
        "charging_profile_purpose": purpose_from_v201(str(profile.get("charging_profile_purpose"))),
        "charging_schedule": schedules[0],
    }


def connector_limit_w(station_profiles: ProfileStore, c: Connector[Any], phases: int) -> float:
    """Power limit from installed charging profiles (lowest of station max and tx/default profile)."""
    limit = math.inf
    station = profile_limit(station_profiles.values(), None, phases, STATION_MAX_PROFILE)
    if station is not None:
        limit = min(limit, station)
    tx = profile_limit(c.profiles.values(), c, phases, "TxProfile")
    if tx is None:
        tx = profile_limit(c.profiles.values(), c, phases, "TxDefaultProfile")
    if tx is None:
        tx = profile_limit(station_profiles.values(), c, phases, "TxDefaultProfile")
    if tx is not None:
        limit = min(limit, tx)
    return limit


def profile_limit(
    profiles: Iterable[dict[str, Any]], c: Connector[Any] | None, phases: int, purpose: str
) -> float | None:
    """The limit in W the valid profile with the highest stack level of ``purpose`` sets now, if any."""
    candidates = [p for p in profiles if p.get("charging_profile_purpose") == purpose]
    if purpose == "TxProfile" and c is not None:
        candidates = [p for p in candidates if p.get("transaction_id") in (None, c.transaction_id)]
    now = utc_now()
    best: dict[str, Any] | None = None
    for p in candidates:
        valid_from, valid_to = parse_iso(p.get("valid_from")), parse_iso(p.get("valid_to"))
        if (valid_from and now < valid_from) or (valid_to and now > valid_to):
            continue
        if best is None or int(p.get("stack_level", 0)) > int(best.get("stack_level", 0)):
            best = p
    if best is None:
        return None
    schedule = best.get("charging_schedule") or {}
    start = parse_iso(schedule.get("start_schedule"))
    if best.get("charging_profile_kind") == "Relative" or start is None:
        start = (c.tx_started_at if c is not None else None) or now
    if best.get("charging_profile_kind") == "Recurring" and start is not None:
        period = timedelta(days=7 if best.get("recurrency_kind") == "Weekly" else 1)
        while start + period <= now:
            start += period
    elapsed = (now - start).total_seconds()
    duration = schedule.get("duration")
    if duration is not None and elapsed > float(duration):
        return None
    limit: float | None = None
    for period_ in sorted(
        schedule.get("charging_schedule_period", []), key=lambda x: x.get("start_period", 0)
    ):
        if float(period_.get("start_period", 0)) <= elapsed:
            limit = float(period_.get("limit", 0))
            n = int(period_.get("number_phases") or phases)
            if schedule.get("charging_rate_unit") == "A":
                limit = limit * NOMINAL_VOLTAGE * min(n, phases)
    return limit


def install_profile(target: ProfileStore, profile: dict[str, Any]) -> None:
    """Install ``profile`` in ``target``; one with the same stack level and purpose, or the same id, is
    replaced."""
    purpose = profile.get("charging_profile_purpose")
    # same stack level and purpose replaces an existing profile, as does the same id
    for key, existing in list(target.items()):
        if existing.get("stack_level") == profile.get("stack_level") and (
            existing.get("charging_profile_purpose") == purpose
        ):
            del target[key]
    target[int(profile["charging_profile_id"])] = profile


def clear_profiles(
    stores: list[tuple[int, ProfileStore]],
    id: int | None,
    connector_id: int | None,
    charging_profile_purpose: str | None,
    stack_level: int | None,
) -> int:
    """Remove the profiles matching a ClearChargingProfile request from ``(connector id, store)`` pairs
    (by id when given, otherwise by connector, purpose and stack level); returns how many were removed."""
    removed = 0
    for cid, store in stores:
        for key, p in list(store.items()):
            if id is not None:
                match = key == id
            else:
                match = (
                    (connector_id is None or connector_id == cid)
                    and (
                        charging_profile_purpose is None
                        or p.get("charging_profile_purpose") == charging_profile_purpose
                    )
                    and (stack_level is None or p.get("stack_level") == stack_level)
                )
            if match:
                del store[key]
                removed += 1
    return removed
