"""Smart charging by roaming partners: an eMSP or a smart charging service provider limits the
power of one of its drivers' running sessions, reads back the limits the station will apply,
or removes its limit (OCPI ChargingProfiles, receiver side).

The partner's limit becomes a TxProfile for the session's transaction, installed with our
`set_charging_profile` remote function (OCPP 1.6 and 2.0.1 alike); the read is the station's
composite schedule for the session's EVSE, the removal a `clear_charging_profile` by id.
Each returns a `ProfileOutcome`; the OCPI edge turns it into the result it POSTs to the
partner. Nothing here knows OCPI's words or JSON.

Which profile is the partner's: one per session, with a fixed id derived from the session
(`profile_id`), so a second PUT replaces the first on the station (same id) and a DELETE
removes exactly it, never an operator's profile. Operator profiles keep ids below
`PROFILE_ID_BASE`.

Whose session: the partner's driver's (the session's token is the partner's, as for the
Sessions module: `stekker.ocpi.session_objects.visible_to`). Another partner's session is
refused (`CommandRefused`), a session that is over as well; an unknown one is `UnknownSession`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from stekker.db.models import ChargingSession, SessionStatus, Token
from stekker.domain.timeutil import parse_timestamp
from stekker.ocpi.session_objects import visible_to
from stekker.services import functions
from stekker.services.context import ServiceContext
from stekker.services.device_model import UnknownStation
from stekker.services.ports import CommandError
from stekker.services.roaming_commands import CommandRefused, Requester, UnknownSession

log = logging.getLogger(__name__)

#: Profile ids of roaming partners' limits: PROFILE_ID_BASE + session id (modulo 10^9), within
#: OCPP's int32 and clear of the ids an operator picks by hand.
PROFILE_ID_BASE = 1_000_000_000
#: Stack level of a partner's TxProfile: above a TxDefaultProfile at level 0 (OCPP applies the
#: highest TxProfile), and still capped by any ChargingStationMaxProfile (always applied).
PROFILE_STACK_LEVEL = 1

_MAX_ID = 2**31 - 1
_SESSION_REF = re.compile(r"^[1-9][0-9]{0,9}$")


class ProfileResult(StrEnum):
    """What the station made of a request (OCPI ChargingProfileResultType, in our words)."""

    ACCEPTED = "accepted"  # the station took it (or answered the read)
    REJECTED = "rejected"  # the station said no, was offline, or did not answer in time
    UNKNOWN = "unknown"  # the station holds no such profile / has no schedule to show


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """From `start` seconds after the schedule's start: at most `limit` in the schedule's unit."""

    start: int
    limit: Decimal


@dataclass(frozen=True, slots=True)
class ActiveSchedule:
    """The limits the station will apply, all profiles combined (its composite schedule)."""

    start_at: datetime
    unit: str  # "A" or "W"
    duration: int | None
    periods: tuple[SchedulePeriod, ...]


@dataclass(frozen=True, slots=True)
class ProfileOutcome:
    """A result, why in plain words, and for a read the schedule."""

    result: ProfileResult
    detail: str
    schedule: ActiveSchedule | None = None


@dataclass(frozen=True, slots=True)
class ProfileTarget:
    """A running session of the partner's driver, and where it runs."""

    session_id: int
    station_id: str
    evse_number: int
    transaction_id: str


def profile_id(session_id: int) -> int:
    """The id of the partner's profile on this session (see the module docstring)."""
    return PROFILE_ID_BASE + session_id % PROFILE_ID_BASE


async def profile_target(ctx: ServiceContext, requester: Requester, reference: str) -> ProfileTarget:
    """The running session behind the partner's session id. UnknownSession when there is none,
    CommandRefused when it is another partner's driver's, or over."""
    if not _SESSION_REF.match(reference) or int(reference) > _MAX_ID:
        raise UnknownSession(f"no session {reference[:40]!r}")
    async with ctx.db() as db:
        session = await db.get(ChargingSession, int(reference))
        if session is None:
            raise UnknownSession(f"no session {reference!r}")
        mine = (
            session.token_id is not None
            and (
                await db.execute(
                    select(Token.id).where(
                        Token.id == session.token_id,
                        visible_to(requester.partner_id, set(requester.parties)),
                    )
                )
            ).first()
            is not None
        )
    if not mine:
        raise CommandRefused(f"session {reference} is not one of your drivers'")
    if session.status != SessionStatus.ACTIVE:
        raise CommandRefused(f"session {reference} is not running (it is {session.status})")
    return ProfileTarget(
        session.id, session.station_id, session.evse_number, session.transaction_id or str(session.id)
    )


def _from_error(exc: Exception) -> ProfileOutcome:
    # offline, timed out, refused by the protocol: the EVSE did not take it (OCPI has no FAILED here)
    return ProfileOutcome(ProfileResult.REJECTED, str(exc) or type(exc).__name__)


async def _run(
    ctx: ServiceContext,
    requester: Requester,
    target: ProfileTarget,
    name: str,
    args: dict[str, Any] | functions.FunctionArgs,
) -> functions.FunctionResult | ProfileOutcome:
    try:
        return await functions.run_function(ctx, requester.actor, target.station_id, name, args)
    except (CommandError, UnknownStation, functions.InvalidArguments) as exc:
        return _from_error(exc)


async def set_profile(
    ctx: ServiceContext,
    requester: Requester,
    target: ProfileTarget,
    schedule: functions.ChargingSchedule,
) -> ProfileOutcome:
    """Install (or replace) the partner's limit on the session: a TxProfile for its transaction,
    absolute when the schedule has a start time, else relative to the start of charging."""
    profile = functions.ChargingProfile(
        id=profile_id(target.session_id),
        stack_level=PROFILE_STACK_LEVEL,
        purpose="TxProfile",
        kind="Absolute" if schedule.start_at is not None else "Relative",
        transaction_id=target.transaction_id,
        schedule=schedule,
    )
    args = functions.SetChargingProfileArgs(evse_number=target.evse_number, profile=profile)
    done = await _run(ctx, requester, target, "set_charging_profile", args)
    if isinstance(done, ProfileOutcome):
        return done
    result = ProfileResult.ACCEPTED if done.status == "Accepted" else ProfileResult.REJECTED
    return ProfileOutcome(result, f"the station answered {done.status}")


async def clear_profile(ctx: ServiceContext, requester: Requester, target: ProfileTarget) -> ProfileOutcome:
    """Remove the partner's limit from the session (by its id: nobody else's profile)."""
    args = {"profile_id": profile_id(target.session_id)}
    done = await _run(ctx, requester, target, "clear_charging_profile", args)
    if isinstance(done, ProfileOutcome):
        return done
    answers = {"Accepted": ProfileResult.ACCEPTED, "Unknown": ProfileResult.UNKNOWN}
    return ProfileOutcome(
        answers.get(done.status, ProfileResult.REJECTED), f"the station answered {done.status}"
    )


def _schedule(reply: dict[str, Any], now: datetime) -> ActiveSchedule | None:
    """The composite schedule in a station's neutral reply; None when it holds none."""
    unit, raw_periods = reply.get("unit"), reply.get("periods") or []
    if unit not in ("A", "W") or not raw_periods:
        return None
    try:
        start_at = parse_timestamp(str(reply["start_at"])) if reply.get("start_at") else now
        periods = tuple(SchedulePeriod(int(p["start"]), Decimal(str(p["limit"]))) for p in raw_periods)
    except (ValueError, TypeError, KeyError, InvalidOperation):
        log.warning("composite schedule not understood: %r", reply)
        return None
    duration = reply.get("duration")
    return ActiveSchedule(start_at, str(unit), duration if isinstance(duration, int) else None, periods)


async def active_profile(
    ctx: ServiceContext, requester: Requester, target: ProfileTarget, duration: int
) -> ProfileOutcome:
    """The limits the station will apply to the session's EVSE over the next `duration` seconds."""
    args = {"evse_number": target.evse_number, "duration": duration}
    done = await _run(ctx, requester, target, "get_composite_schedule", args)
    if isinstance(done, ProfileOutcome):
        return done
    if done.status != "Accepted":
        return ProfileOutcome(ProfileResult.REJECTED, f"the station answered {done.status}")
    schedule = _schedule(done.reply, ctx.now())
    if schedule is None:
        return ProfileOutcome(ProfileResult.UNKNOWN, "the station has no schedule for this EVSE")
    return ProfileOutcome(ProfileResult.ACCEPTED, "the station answered Accepted", schedule)
