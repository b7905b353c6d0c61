"""Central authorization (requirement 76): every decision from our token store, recorded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import (
    AuthorizationRequest,
    ChargingSession,
    RemoteStart,
    SessionStatus,
    Token,
    TokenStatus,
)
from stekker.db.models_ocpi import OcpiPartner, PartnerStatus
from stekker.domain.authorization import (
    AuthDecision,
    AuthStatus,
    EmspAnswer,
    TokenFacts,
    asks_emsp,
    decidable_here,
    decide,
)
from stekker.services import realtime_authorization
from stekker.services.context import ServiceContext
from stekker.services.realtime_authorization import ANSWERED, RealTimeAnswer

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TokenVerdict:
    """A decision together with what a station may cache about the token."""

    decision: AuthDecision
    token_id: int | None
    group_id: str | None
    expires_at: datetime | None
    token_type: str | None = None


def precedence(token: Token) -> tuple[bool, bool, bool, float, int]:
    """Sort key among tokens sharing a uid (a station sends only the uid; parties may collide).

    A retired copy comes last; then our own tokens before roaming partners' (our block on a
    card must hold whatever an eMSP says about the same uid); then an active copy before a
    blocked one; among partners' copies the one the eMSP updated most recently; then the
    newest row.
    """
    partner = token.ocpi_partner_id is not None
    updated = token.ocpi_last_updated.timestamp() if partner and token.ocpi_last_updated else 0.0
    return (
        token.status == TokenStatus.RETIRED,
        partner,
        token.status != TokenStatus.ACTIVE,
        -updated,
        -token.id,
    )


def preferred_token(tokens: Sequence[Token]) -> Token | None:
    """The token a station means among `tokens` that share one uid (see `precedence`)."""
    return min(tokens, key=precedence, default=None)


def usable(query: Select[T]) -> Select[T]:
    """`query` (over tokens) narrowed to tokens that may open anything: our own, and those of
    roaming partners still registered (an unregistered partner's tokens stay, unused)."""
    registered = select(OcpiPartner.id).where(OcpiPartner.status == PartnerStatus.REGISTERED)
    return query.where(or_(Token.ocpi_partner_id.is_(None), Token.ocpi_partner_id.in_(registered)))


async def find_token(db: AsyncSession, uid: str) -> Token | None:
    """The token a station means by `uid` (see `precedence`)."""
    return preferred_token((await db.execute(usable(select(Token).where(Token.uid == uid)))).scalars().all())


#: How long an eMSP's START_SESSION vouches for its token at the station (OCPI 2.2.1: the CPO
#: accepts the token for a session started within 15 minutes of the command).
EMSP_START_WINDOW = timedelta(minutes=15)


async def _started_by_its_emsp(db: AsyncSession, station_id: str, uid: str, now: datetime) -> bool:
    """Whether a roaming partner asked this station to start for `uid` in the last 15 minutes
    (the station's own Authorize or StartTransaction that follows the START_SESSION)."""
    found = await db.execute(
        select(RemoteStart.id)
        .where(
            RemoteStart.station_id == station_id,
            RemoteStart.token_uid == uid,
            RemoteStart.actor.like("ocpi:%"),
            RemoteStart.requested_at >= now - EMSP_START_WINDOW,
        )
        .limit(1)
    )
    return found.first() is not None


#: How long an eMSP's real-time answer at a station's Authorize holds for the start that
#: follows there (the same 15 minutes OCPI gives a START_SESSION's authorization).
EMSP_ANSWER_WINDOW = EMSP_START_WINDOW


async def _answered_at_authorize(
    db: AsyncSession, station_id: str, token: Token, now: datetime
) -> EmspAnswer | None:
    """The eMSP's latest real-time decision on this token at this station's Authorize in the
    last 15 minutes, if any: the StartTransaction or TransactionEvent that follows is judged by
    it, without asking again (no network I/O here: we are inside the write transaction). Only
    Authorize rows count, so a start never extends the window; the latest answer counts, so a
    BLOCKED after an ALLOWED holds."""
    row = (
        await db.execute(
            select(
                AuthorizationRequest.result, AuthorizationRequest.reason, AuthorizationRequest.requested_at
            )
            .where(
                AuthorizationRequest.station_id == station_id,
                AuthorizationRequest.token_uid == token.uid,
                AuthorizationRequest.token_id == token.id,
                AuthorizationRequest.kind == "Authorize",
                AuthorizationRequest.reason.startswith(ANSWERED, autoescape=True),
                AuthorizationRequest.requested_at >= now - EMSP_ANSWER_WINDOW,
            )
            .order_by(AuthorizationRequest.requested_at.desc(), AuthorizationRequest.id.desc())
            .limit(1)
        )
    ).first()
    if row is None or row.result not in AuthStatus.__members__.values():
        return None
    at = row.requested_at.strftime("%H:%M:%SZ")
    return EmspAnswer(AuthStatus(row.result), f"as at Authorize {at}: {row.reason}"[:255])


async def judge_token(
    db: AsyncSession,
    ctx: ServiceContext,
    *,
    station_id: str,
    uid: str,
    connector_number: int | None,
    kind: str,
    starting: bool,
    session_id: int | None = None,
    vouched: bool = False,
    emsp: RealTimeAnswer | None = None,
) -> TokenVerdict:
    """Decide on `uid` inside the caller's transaction and record the request. `vouched`: the
    token's eMSP asked for this start itself (an OCPI START_SESSION). `emsp`: its eMSP's
    real-time answer, asked before this transaction (`authorize`); without one (or when the
    eMSP gave none), a partner token whose whitelist asks is judged by the eMSP's answer at
    this station's Authorize in the last 15 minutes, when there is one."""
    now = ctx.now()
    token = await find_token(db, uid)
    answer: EmspAnswer | None = None
    if token is not None and token.ocpi_partner_id is not None and asks_emsp(token.whitelist):
        if emsp is not None and emsp.token_id == token.id:
            answer = emsp.answer
        if answer is None or not answer.answered:
            answer = await _answered_at_authorize(db, station_id, token, now) or answer
    if not vouched and token is not None and not decidable_here(token.whitelist):
        vouched = await _started_by_its_emsp(db, station_id, uid, now)
    running = select(func.count()).where(
        ChargingSession.token_uid == uid,
        ChargingSession.status == SessionStatus.ACTIVE,
        ChargingSession.auth_status == "Accepted",
    )
    if session_id is not None:
        running = running.where(ChargingSession.id != session_id)
    if connector_number is not None:
        # the same connector re-authorizing is not a concurrent use
        running = running.where(
            (ChargingSession.station_id != station_id) | (ChargingSession.evse_number != connector_number)
        )
    elsewhere = (await db.execute(running)).scalar_one()
    facts = (
        None
        if token is None
        else TokenFacts(token.status, token.expires_at, token.allow_concurrent, token.whitelist)
    )
    decision = decide(facts, now, elsewhere, starting=starting, vouched=vouched, emsp=answer)
    db.add(
        AuthorizationRequest(
            station_id=station_id,
            connector_number=connector_number,
            token_uid=uid,
            token_id=None if token is None else token.id,
            kind=kind,
            result=decision.status.value,
            reason=decision.reason[:255],
            session_id=session_id,
            requested_at=now,
        )
    )
    return TokenVerdict(
        decision,
        None if token is None else token.id,
        None if token is None else token.group_id,
        None if token is None else token.expires_at,
        None if token is None else token.type,
    )


async def ask_its_emsp(ctx: ServiceContext, station_id: str, uid: str) -> RealTimeAnswer | None:
    """The real-time answer of the eMSP of the token a station means by `uid`, when that is a
    partner's token whose whitelist asks (NEVER, ALLOWED_OFFLINE, ALLOWED); None for our own
    tokens, ALWAYS and unknown uids. Reads, then calls the eMSP with no session open; at most
    `ocpi_authorize_timeout` seconds."""
    async with ctx.db() as db:
        token = await find_token(db, uid)
        question = (
            None
            if token is None
            else await realtime_authorization.question_for(db, ctx.settings, station_id, token)
        )
    if question is None:
        return None
    return await realtime_authorization.ask(ctx.settings, question)


async def authorize(
    ctx: ServiceContext, station_id: str, uid: str, connector_number: int | None = None
) -> TokenVerdict:
    """Answer an Authorize request. A partner's token whose whitelist asks is first put to its
    eMSP in real time (outside the transaction: a slow eMSP holds no lock), then judged with
    that answer; our own tokens are decided from our store as always."""
    emsp = await ask_its_emsp(ctx, station_id, uid)

    async def job(db: AsyncSession) -> TokenVerdict:
        return await judge_token(
            db,
            ctx,
            station_id=station_id,
            uid=uid,
            connector_number=connector_number,
            kind="Authorize",
            starting=False,
            emsp=emsp,
        )

    return await ctx.write(job)
