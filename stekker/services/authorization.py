"""Central authorization (requirement 76): every decision from our token store, recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import AuthorizationRequest, ChargingSession, SessionStatus, Token, TokenStatus
from stekker.domain.authorization import AuthDecision, TokenFacts, decide
from stekker.services.context import ServiceContext


@dataclass(frozen=True, slots=True)
class TokenVerdict:
    """A decision together with what a station may cache about the token."""

    decision: AuthDecision
    token_id: int | None
    group_id: str | None
    expires_at: datetime | None
    token_type: str | None = None


async def find_token(db: AsyncSession, uid: str) -> Token | None:
    """The token a station means by `uid`; an active one wins over a blocked or retired copy."""
    tokens = (await db.execute(select(Token).where(Token.uid == uid))).scalars().all()
    if not tokens:
        return None
    return sorted(tokens, key=lambda t: (t.status != TokenStatus.ACTIVE, -t.id))[0]


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
) -> TokenVerdict:
    """Decide on `uid` inside the caller's transaction and record the request."""
    now = ctx.now()
    token = await find_token(db, uid)
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
    facts = None if token is None else TokenFacts(token.status, token.expires_at, token.allow_concurrent)
    decision = decide(facts, now, elsewhere, starting=starting)
    db.add(
        AuthorizationRequest(
            station_id=station_id,
            connector_number=connector_number,
            token_uid=uid,
            token_id=None if token is None else token.id,
            kind=kind,
            result=decision.status.value,
            reason=decision.reason,
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


async def authorize(
    ctx: ServiceContext, station_id: str, uid: str, connector_number: int | None = None
) -> TokenVerdict:
    """Answer an Authorize request."""

    async def job(db: AsyncSession) -> TokenVerdict:
        return await judge_token(
            db,
            ctx,
            station_id=station_id,
            uid=uid,
            connector_number=connector_number,
            kind="Authorize",
            starting=False,
        )

    return await ctx.write(job)
