"""The central authorization decision (requirement 76): may this token charge here, now?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AuthStatus(StrEnum):
    """The answer given to a station; the names are OCPP 1.6's AuthorizationStatus."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """What the decision needs to know about a stored token."""

    status: str
    expires_at: datetime | None
    allow_concurrent: bool


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """A decision and the reason for it, in words an operator understands."""

    status: AuthStatus
    reason: str

    @property
    def accepted(self) -> bool:
        return self.status is AuthStatus.ACCEPTED


def decide(
    token: TokenFacts | None, now: datetime, sessions_elsewhere: int, *, starting: bool
) -> AuthDecision:
    """Decide on a token. `sessions_elsewhere` counts its running sessions on other connectors.

    Order matters: an unknown token is Invalid, a blocked one Blocked even when expired.
    ConcurrentTx only applies when starting (OCPP 1.6: "only relevant for a StartTransaction"):
    a driver who presents the card to stop a session must be accepted.
    """
    if token is None:
        return AuthDecision(AuthStatus.INVALID, "unknown token")
    if token.status == "blocked":
        return AuthDecision(AuthStatus.BLOCKED, "token is blocked")
    if token.status == "retired":
        return AuthDecision(AuthStatus.INVALID, "token is retired")
    if token.expires_at is not None and token.expires_at <= now:
        return AuthDecision(AuthStatus.EXPIRED, f"token expired at {token.expires_at.isoformat()}")
    if starting and sessions_elsewhere > 0 and not token.allow_concurrent:
        return AuthDecision(AuthStatus.CONCURRENT_TX, "token is already in a running session elsewhere")
    return AuthDecision(AuthStatus.ACCEPTED, "token is valid")
