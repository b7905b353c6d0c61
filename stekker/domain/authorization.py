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


class Whitelist(StrEnum):
    """How a roaming partner (the token's eMSP) lets us authorize its token (OCPI WhitelistType).

    ALWAYS: decide from the stored token, never ask the eMSP; ALLOWED: we may decide from the
    stored token or ask; ALLOWED_OFFLINE: ask the eMSP, and decide from the stored token only
    when the eMSP cannot be reached; NEVER: only the eMSP decides, at every use.
    Our own tokens have none: we are their issuer.
    """

    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


#: The whitelists under which a stored copy may decide without asking the eMSP, and so may
#: be given to stations for offline use (a station that is offline cannot reach the eMSP).
STORED_DECISION_ALLOWED = frozenset({Whitelist.ALWAYS, Whitelist.ALLOWED, Whitelist.ALLOWED_OFFLINE})


def decidable_here(whitelist: str | None) -> bool:
    """Whether a token with this whitelist may be decided from our store (own tokens: always)."""
    return whitelist is None or whitelist in STORED_DECISION_ALLOWED


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """What the decision needs to know about a stored token. `whitelist` is set on a roaming
    partner's token only (see `Whitelist`)."""

    status: str
    expires_at: datetime | None
    allow_concurrent: bool
    whitelist: str | None = None


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """A decision and the reason for it, in words an operator understands."""

    status: AuthStatus
    reason: str

    @property
    def accepted(self) -> bool:
        return self.status is AuthStatus.ACCEPTED


def decide(
    token: TokenFacts | None, now: datetime, sessions_elsewhere: int, *, starting: bool, vouched: bool = False
) -> AuthDecision:
    """Decide on a token. `sessions_elsewhere` counts its running sessions on other connectors.

    Order matters: an unknown token is Invalid, a blocked one Blocked even when expired; a
    partner's token whose whitelist forbids a stored decision (NEVER) is Invalid, unless its
    eMSP `vouched` for it just now (it asked us to start a session for it: START_SESSION is
    the eMSP's real-time authorization).
    ConcurrentTx only applies when starting (OCPP 1.6: "only relevant for a StartTransaction"):
    a driver who presents the card to stop a session must be accepted.
    """
    if token is None:
        return AuthDecision(AuthStatus.INVALID, "unknown token")
    if token.status == "blocked":
        return AuthDecision(AuthStatus.BLOCKED, "token is blocked")
    if token.status == "retired":
        return AuthDecision(AuthStatus.INVALID, "token is retired")
    if not decidable_here(token.whitelist) and not vouched:
        # the eMSP forbids deciding from our copy; until we can ask it in real time, refusing
        # is the only answer that cannot let an unpaid or withdrawn token charge
        return AuthDecision(
            AuthStatus.INVALID, "needs real-time authorization at the eMSP, not available yet"
        )
    if token.expires_at is not None and token.expires_at <= now:
        return AuthDecision(AuthStatus.EXPIRED, f"token expired at {token.expires_at.isoformat()}")
    if starting and sessions_elsewhere > 0 and not token.allow_concurrent:
        return AuthDecision(AuthStatus.CONCURRENT_TX, "token is already in a running session elsewhere")
    return AuthDecision(AuthStatus.ACCEPTED, "token is valid")
