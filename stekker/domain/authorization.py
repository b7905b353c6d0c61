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


#: The whitelists under which we ask the token's eMSP in real time at a station's Authorize:
#: NEVER (only the eMSP decides), ALLOWED_OFFLINE (the eMSP decides while it can be reached)
#: and ALLOWED (we may choose; asking lets a block or a spent credit the eMSP has not pushed
#: yet count). ALWAYS forbids asking; our own tokens have no eMSP but us.
ASK_THE_EMSP = frozenset({Whitelist.NEVER, Whitelist.ALLOWED, Whitelist.ALLOWED_OFFLINE})


def asks_emsp(whitelist: str | None) -> bool:
    """Whether a token with this whitelist is authorized in real time by its eMSP."""
    return whitelist is not None and whitelist in ASK_THE_EMSP


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """What the decision needs to know about a stored token. `whitelist` is set on a roaming
    partner's token only (see `Whitelist`)."""

    status: str
    expires_at: datetime | None
    allow_concurrent: bool
    whitelist: str | None = None


@dataclass(frozen=True, slots=True)
class EmspAnswer:
    """What a partner token's eMSP said when we asked it in real time (OCPI real-time
    authorization), in our terms. `status` is its decision; None when it could not be asked
    or gave no usable answer (down, too slow, a malformed answer): then the token's whitelist
    says whether our stored copy may decide instead. `reason` says which, for the operator.
    """

    status: AuthStatus | None
    reason: str

    @property
    def answered(self) -> bool:
        return self.status is not None


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """A decision and the reason for it, in words an operator understands."""

    status: AuthStatus
    reason: str

    @property
    def accepted(self) -> bool:
        return self.status is AuthStatus.ACCEPTED


def decide(
    token: TokenFacts | None,
    now: datetime,
    sessions_elsewhere: int,
    *,
    starting: bool,
    vouched: bool = False,
    emsp: EmspAnswer | None = None,
) -> AuthDecision:
    """Decide on a token. `sessions_elsewhere` counts its running sessions on other connectors.

    Order matters: an unknown token is Invalid. For a partner's token, `emsp` is its eMSP's
    real-time answer (given only for partner tokens whose whitelist asks, see `asks_emsp`):
    when the eMSP decided, its decision stands over our stored copy, whatever that says (it
    owns the token; OCPI: the stored validity has no influence on asking, "the state of the
    Token might have changed"), only ConcurrentTx is still ours to add. When the eMSP gave no
    answer, our stored copy decides as for any token (a blocked copy stays Blocked), except that
    under whitelist NEVER it cannot accept (Invalid: only the eMSP may decide); the reason
    starts with why the eMSP gave none.
    Otherwise: a blocked token is Blocked even when expired; a partner's token whose whitelist
    forbids a stored decision (NEVER) is Invalid, unless its eMSP `vouched` for it just now
    (it asked us to start a session for it: START_SESSION is the eMSP's real-time
    authorization).
    ConcurrentTx only applies when starting (OCPP 1.6: "only relevant for a StartTransaction"):
    a driver who presents the card to stop a session must be accepted.
    """
    if token is None:
        return AuthDecision(AuthStatus.INVALID, "unknown token")
    if emsp is not None and emsp.status is not None and token.whitelist is not None:
        if emsp.status is not AuthStatus.ACCEPTED:
            return AuthDecision(emsp.status, emsp.reason)
        return _unless_concurrent(
            token, sessions_elsewhere, starting, AuthDecision(AuthStatus.ACCEPTED, emsp.reason)
        )
    stored = _from_store(token, now, sessions_elsewhere, starting=starting, vouched=vouched)
    if emsp is None or token.whitelist is None:
        return stored
    if token.status != "active":  # our copy refuses anyway: say so, and that we could not ask
        return AuthDecision(stored.status, f"{emsp.reason}; {stored.reason}")
    if not decidable_here(token.whitelist) and not vouched:
        return AuthDecision(AuthStatus.INVALID, f"{emsp.reason}; whitelist NEVER: only the eMSP may decide")
    return AuthDecision(stored.status, f"{emsp.reason}; decided from the stored token: {stored.reason}")


def _from_store(
    token: TokenFacts, now: datetime, sessions_elsewhere: int, *, starting: bool, vouched: bool
) -> AuthDecision:
    if token.status == "blocked":
        return AuthDecision(AuthStatus.BLOCKED, "token is blocked")
    if token.status == "retired":
        return AuthDecision(AuthStatus.INVALID, "token is retired")
    if not decidable_here(token.whitelist) and not vouched:
        # the eMSP forbids deciding from our copy and has not decided for this use (no
        # Authorize it answered at this station lately, no START_SESSION): refusing is the
        # only answer that cannot let an unpaid or withdrawn token charge
        return AuthDecision(
            AuthStatus.INVALID, "needs real-time authorization at the eMSP, which has not authorized this use"
        )
    if token.expires_at is not None and token.expires_at <= now:
        return AuthDecision(AuthStatus.EXPIRED, f"token expired at {token.expires_at.isoformat()}")
    return _unless_concurrent(
        token, sessions_elsewhere, starting, AuthDecision(AuthStatus.ACCEPTED, "token is valid")
    )


def _unless_concurrent(
    token: TokenFacts, sessions_elsewhere: int, starting: bool, accepted: AuthDecision
) -> AuthDecision:
    if starting and sessions_elsewhere > 0 and not token.allow_concurrent:
        return AuthDecision(AuthStatus.CONCURRENT_TX, "token is already in a running session elsewhere")
    return accepted


#: A session's ``auth_status`` before our decision is known (a station that started first).
UNDECIDED = "Pending"


def refused(auth_status: str) -> bool:
    """Whether our decision on a session's token refused it (Invalid, Blocked, Expired,
    ConcurrentTx...): such a session is kept for the record but never billed (no CDR), and
    OCPI shows it INVALID. Accepted and not yet decided (Pending) are billed."""
    return auth_status not in (AuthStatus.ACCEPTED, UNDECIDED)
