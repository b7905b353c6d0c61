"""Commands from roaming partners: an eMSP asks us to start or stop a session, unlock a
connector, or hold an EVSE for one of its drivers (OCPI Commands, receiver side).

Each command has a quick check, done while the partner waits for its answer (is this its
session, its token, its reservation?), and the work itself: the station call through our
existing services (remote start and stop, remote functions), whose answer becomes an
`Outcome`. The OCPI edge runs the work in the background and reports the outcome to the
partner; nothing here knows OCPI's words or JSON.

What belongs to whom: a partner speaks for the parties (country code, party id) it
registered. A session is the partner's when its token is one of the partner's parties'; a
reservation when the partner made it. Another partner's session is refused, not revealed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingSession, SessionStatus, Token
from stekker.db.models_functions import Reservation
from stekker.services import functions, remote, roaming_tokens
from stekker.services.authorization import find_token
from stekker.services.context import ServiceContext
from stekker.services.device_model import UnknownStation
from stekker.services.errors import Conflict, Invalid, Missing
from stekker.services.ports import (
    CommandError,
    CommandNotSupported,
    CommandTimeout,
    StationCallError,
    StationOffline,
)
from stekker.services.roaming_tokens import PartnerToken

log = logging.getLogger(__name__)

_MAX_ID = 2**31 - 1
_SESSION_REF = re.compile(r"^[1-9][0-9]{0,9}$")


class Outcome(StrEnum):
    """What became of a command at the station."""

    ACCEPTED = "accepted"  # the station will do it (a start: it accepted the request)
    REJECTED = "rejected"  # the station, or we, said no
    OCCUPIED = "occupied"  # the EVSE is in use
    INOPERATIVE = "inoperative"  # the EVSE is faulted or unavailable
    FAILED = "failed"  # the station could not do it, or could not be reached
    NOT_SUPPORTED = "not_supported"  # the station has no such function
    TIMEOUT = "timeout"  # the station did not answer in time
    UNKNOWN_RESERVATION = "unknown_reservation"  # the station holds no such reservation


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """An outcome and, in plain words, why."""

    outcome: Outcome
    detail: str


@dataclass(frozen=True, slots=True)
class Requester:
    """The roaming partner asking, and the parties (country code, party id) it speaks for."""

    partner_id: int
    name: str
    parties: frozenset[tuple[str, str]]

    @property
    def actor(self) -> str:
        return f"ocpi:{self.name}"[:100]

    def owns(self, country_code: str, party_id: str) -> bool:
        return (country_code.upper(), party_id.upper()) in self.parties

    def drives_with(self, token: Token) -> bool:
        """Whether a driver of this token is the partner's: a partner's token belongs to the
        partner that pushed it (another partner granted the same party has no say over it),
        a token of no partner to the parties it names."""
        if token.ocpi_partner_id is not None:
            return token.ocpi_partner_id == self.partner_id
        return self.owns(token.country_code, token.party_id)

    def reservation_actor(self, reference: str) -> str:
        """Who made a reservation, as the reservation records it: the partner and its own
        reservation id, so a later cancel or replacement finds it (and no other partner can)."""
        return f"ocpi:{self.partner_id}:{reference.upper()}"


class CommandRefused(Conflict):
    """We say no before asking the station (not the partner's session, token or connector)."""


class UnknownSession(Missing):
    """No session by that id."""


class UnknownReservation(Missing):
    """No reservation of this partner by that id."""


# ---- station answers and errors as outcomes --------------------------------------------------

_ANSWERS: dict[str, Outcome] = {
    "Accepted": Outcome.ACCEPTED,
    "Unlocked": Outcome.ACCEPTED,
    "Rejected": Outcome.REJECTED,
    "Occupied": Outcome.OCCUPIED,
    "Faulted": Outcome.INOPERATIVE,
    "Unavailable": Outcome.INOPERATIVE,
    "UnlockFailed": Outcome.FAILED,
    "NotSupported": Outcome.NOT_SUPPORTED,
    # 2.0.1 UnlockConnector: a driver's session holds the cable; the connector is not there
    "OngoingAuthorizedTransaction": Outcome.REJECTED,
    "UnknownConnector": Outcome.REJECTED,
}


def from_answer(status: str, *, rejected: Outcome = Outcome.REJECTED) -> CommandOutcome:
    """The outcome of a station's answer (`rejected`: what a plain Rejected means here)."""
    outcome = _ANSWERS.get(status, Outcome.FAILED)
    if status == "Rejected":
        outcome = rejected
    return CommandOutcome(outcome, f"the station answered {status}")


def from_error(exc: CommandError) -> CommandOutcome:
    """The outcome of a call that got no answer: offline, timed out, refused by the protocol."""
    if isinstance(exc, CommandTimeout):
        return CommandOutcome(Outcome.TIMEOUT, str(exc))
    if isinstance(exc, CommandNotSupported):
        return CommandOutcome(Outcome.NOT_SUPPORTED, str(exc))
    if isinstance(exc, StationCallError) and exc.code in ("NotImplemented", "NotSupported"):
        return CommandOutcome(Outcome.NOT_SUPPORTED, str(exc))
    if isinstance(exc, StationOffline):
        return CommandOutcome(Outcome.FAILED, str(exc))
    return CommandOutcome(Outcome.FAILED, str(exc))


# ---- tokens ----------------------------------------------------------------------------------


async def adopt_token(ctx: ServiceContext, requester: Requester, token: PartnerToken) -> None:
    """Store (or refresh) the token a command names, so that the station's start and its
    authorization find it. Only the partner's own parties' tokens (OCPI: "using Tokens of
    other eMSPs is not allowed"). An older copy than ours is kept as ours (by last_updated)."""
    if not requester.owns(token.country_code, token.party_id):
        raise CommandRefused(
            f"token {token.uid} belongs to party {token.country_code}/{token.party_id}, "
            "which is not one of yours"
        )
    try:
        await roaming_tokens.put_partner_token(ctx, requester.partner_id, requester.actor, token)
    except roaming_tokens.NotAPartnerToken as exc:
        raise CommandRefused(str(exc)) from None


# ---- START_SESSION ---------------------------------------------------------------------------


async def start_session(
    ctx: ServiceContext, requester: Requester, *, station_id: str, evse_number: int | None, token_uid: str
) -> CommandOutcome:
    """Ask the station to start charging for the partner's token (our remote start: 1.6 and
    2.0.1 alike, recorded as a RemoteStart that the session links to when it begins)."""
    try:
        outcome = await remote.remote_start(
            ctx, requester.actor, station_id, token_uid, evse_number, vouched_by_emsp=True
        )
    except remote.RemoteRefused as exc:
        return CommandOutcome(Outcome.REJECTED, str(exc))
    except remote.NotFound as exc:
        return CommandOutcome(Outcome.FAILED, str(exc))
    except CommandError as exc:
        return from_error(exc)
    return from_answer(outcome.status)


# ---- STOP_SESSION ----------------------------------------------------------------------------


async def _session_token(db: AsyncSession, session: ChargingSession) -> Token | None:
    if session.token_id is not None:
        return await db.get(Token, session.token_id)
    return None if session.token_uid is None else await find_token(db, session.token_uid)


async def stoppable_session(ctx: ServiceContext, requester: Requester, reference: str) -> int:
    """Our session behind the partner's session id, if it is the partner's and still running.
    UnknownSession when there is none, CommandRefused when it is not the partner's or over."""
    if not _SESSION_REF.match(reference) or int(reference) > _MAX_ID:
        raise UnknownSession(f"no session {reference[:40]!r}")
    async with ctx.db() as db:
        session = await db.get(ChargingSession, int(reference))
        if session is None:
            raise UnknownSession(f"no session {reference!r}")
        token = await _session_token(db, session)
        if token is None or not requester.drives_with(token):
            raise CommandRefused(f"session {reference} is not one of your drivers'")
        if session.status != SessionStatus.ACTIVE:
            raise CommandRefused(f"session {reference} is not running (it is {session.status})")
        return session.id


async def stop_session(ctx: ServiceContext, requester: Requester, session_id: int) -> CommandOutcome:
    """Ask the station to stop the session (our remote stop)."""
    try:
        outcome = await remote.remote_stop(ctx, requester.actor, session_id)
    except (remote.RemoteRefused, remote.NotFound) as exc:  # it ended meanwhile
        return CommandOutcome(Outcome.REJECTED, str(exc))
    except CommandError as exc:
        return from_error(exc)
    return from_answer(outcome.status)


# ---- UNLOCK_CONNECTOR ------------------------------------------------------------------------


async def check_unlock(ctx: ServiceContext, requester: Requester, station_id: str, evse_number: int) -> None:
    """An unlock while another party's driver charges there would end that driver's session
    (1.6 stops the transaction): only the partner whose driver it is, or nobody, may."""
    async with ctx.db() as db:
        running = (
            await db.execute(
                select(ChargingSession).where(
                    ChargingSession.station_id == station_id,
                    ChargingSession.evse_number == evse_number,
                    ChargingSession.status == SessionStatus.ACTIVE,
                )
            )
        ).scalars()
        for session in running:
            token = await _session_token(db, session)
            if token is None or not requester.drives_with(token):
                raise CommandRefused("another driver is charging at this connector")


async def unlock_connector(
    ctx: ServiceContext, requester: Requester, *, station_id: str, evse_number: int, connector_number: int
) -> CommandOutcome:
    """Ask the station to release the cable (remote function unlock_connector)."""
    args = {"evse_number": evse_number, "connector_number": connector_number}
    try:
        result = await functions.run_function(ctx, requester.actor, station_id, "unlock_connector", args)
    except CommandError as exc:
        return from_error(exc)
    except (functions.InvalidArguments, UnknownStation) as exc:
        return CommandOutcome(Outcome.REJECTED, str(exc))
    return from_answer(result.status)


# ---- RESERVE_NOW / CANCEL_RESERVATION --------------------------------------------------------


async def _partner_reservation(db: AsyncSession, actor: str, station_id: str | None) -> Reservation | None:
    query = select(Reservation).where(Reservation.requested_by == actor)
    if station_id is not None:
        query = query.where(Reservation.station_id == station_id)
    return (await db.execute(query.order_by(Reservation.id.desc()).limit(1))).scalar_one_or_none()


async def reserve_now(
    ctx: ServiceContext,
    requester: Requester,
    *,
    station_id: str,
    evse_number: int | None,
    token_uid: str,
    expires_at: datetime,
    reference: str,
) -> CommandOutcome:
    """Hold an EVSE (or any EVSE of the station) for the token until `expires_at`.

    The partner's reservation id never reaches the station (OCPI: it would let one eMSP
    replace another's): the station gets our id. The same partner id again at the same
    station reuses our id, so the station replaces its reservation."""
    if expires_at <= ctx.now():
        raise Invalid("the reservation's expiry is in the past")
    actor = requester.reservation_actor(reference)
    async with ctx.db() as db:
        earlier = await _partner_reservation(db, actor, station_id)
    args: dict[str, object] = {"token_uid": token_uid, "expires_at": expires_at}
    if evse_number is not None:
        args["evse_number"] = evse_number
    if earlier is not None:
        args["reservation_id"] = earlier.reservation_id
    try:
        result = await functions.run_function(ctx, actor, station_id, "reserve_now", args)
    except CommandError as exc:
        return from_error(exc)
    except (functions.InvalidArguments, UnknownStation) as exc:
        return CommandOutcome(Outcome.REJECTED, str(exc))
    return from_answer(result.status)


async def reservation_to_cancel(ctx: ServiceContext, requester: Requester, reference: str) -> tuple[str, int]:
    """(station, our reservation id) of the partner's reservation; UnknownReservation if none."""
    async with ctx.db() as db:
        row = await _partner_reservation(db, requester.reservation_actor(reference), None)
    if row is None:
        raise UnknownReservation(f"no reservation {reference!r} of yours")
    return row.station_id, row.reservation_id


async def cancel_reservation(
    ctx: ServiceContext, requester: Requester, *, station_id: str, reservation_id: int, reference: str
) -> CommandOutcome:
    """Ask the station to drop the reservation; a station that holds none says Rejected."""
    actor = requester.reservation_actor(reference)
    args = {"reservation_id": reservation_id}
    try:
        result = await functions.run_function(ctx, actor, station_id, "cancel_reservation", args)
    except CommandError as exc:
        return from_error(exc)
    except (functions.InvalidArguments, UnknownStation) as exc:
        return CommandOutcome(Outcome.REJECTED, str(exc))
    return from_answer(result.status, rejected=Outcome.UNKNOWN_RESERVATION)
