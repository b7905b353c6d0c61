"""A driver's problem report from the public EVSE page: what may be in it, how the form proves
it came from our page, and how often one address may send one.

Pure rules, no I/O. A report names the EVSE (from the page), what kind of problem it is, the
driver's own words, and, only if the driver wants to be called back, a way to reach them:
no personal data is required, and none is kept that the driver did not type (not even the
address it came from; the throttle holds addresses in memory only, for an hour at most).

The form has no session (the page is public and cached), so it carries a **signed form
token**: an HMAC over the EVSE id and the moment the form was served, with the
installation's own key. A token is good for `FORM_TOKEN_LIFETIME` and for that EVSE only;
together with the same-origin check at the edge, a page elsewhere cannot make a visitor's
browser file reports. The **throttle** is a token bucket per sending address
(`ReportThrottle`): `REPORT_BURST` at once, then `REPORTS_PER_HOUR`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from stekker.domain.token_bucket import TokenBucket

MAX_MESSAGE = 1000
MAX_CONTACT = 200
FORM_TOKEN_LIFETIME = timedelta(hours=6)
REPORT_BURST = 3
REPORTS_PER_HOUR = 6
MAX_ADDRESSES = 10_000  # beyond this many remembered senders, the idle (then the oldest) are forgotten


class ProblemKind(StrEnum):
    """What is wrong, as a driver would pick it; `other` when none fits."""

    WONT_START = "wont_start"
    STOPPED = "stopped"
    DAMAGED = "damaged"
    BLOCKED = "blocked"
    PAYMENT = "payment"
    OTHER = "other"


class BadReport(ValueError):
    """The report cannot be taken; `field` names the form field and `reason` says why (a code
    the edge turns into words: too_long, empty, control_chars, unknown_kind)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReportDraft:
    """A checked report, ready to store: the kind, the driver's words (trimmed) and an
    optional contact (None when left empty)."""

    kind: ProblemKind
    message: str
    contact: str | None


def _clean(text: str, field: str, limit: int, *, lines: bool) -> str:
    text = text.strip()
    if len(text) > limit:
        raise BadReport(field, "too_long")
    allowed = {"\n", "\r", "\t"} if lines else {"\t"}
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and c not in allowed for c in text):
        raise BadReport(field, "control_chars")  # NUL, bidi overrides...: never what a driver typed
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_report(kind: str, message: str, contact: str) -> ReportDraft:
    """The report as it may be stored, or BadReport: a known kind, words (1 to `MAX_MESSAGE`
    characters; for `other` the words are all there is, for the rest they may be empty), an
    optional contact of at most `MAX_CONTACT` characters; no control characters."""
    try:
        chosen = ProblemKind(kind)
    except ValueError:
        raise BadReport("kind", "unknown_kind") from None
    words = _clean(message, "message", MAX_MESSAGE, lines=True)
    if not words and chosen is ProblemKind.OTHER:
        raise BadReport("message", "empty")
    reach = _clean(contact, "contact", MAX_CONTACT, lines=False)
    return ReportDraft(chosen, words, reach or None)


# --- the form token ---------------------------------------------------------------------------


def _signature(key: bytes, evse_uid: str, issued: int) -> str:
    mac = hmac.new(key, f"problem-report|{evse_uid}|{issued}".encode(), hashlib.sha256)
    return mac.hexdigest()[:40]


def form_token(key: bytes, evse_uid: str, at: datetime) -> str:
    """The token of a form for `evse_uid` served at `at`: `<unix seconds>.<signature>`."""
    issued = int(at.timestamp())
    return f"{issued}.{_signature(key, evse_uid, issued)}"


def form_token_ok(key: bytes, evse_uid: str, token: str, now: datetime) -> bool:
    """Whether `token` was made by `form_token` for this EVSE, at most `FORM_TOKEN_LIFETIME`
    ago (and not in the future)."""
    issued_text, dot, signature = token.partition(".")
    if not dot or not issued_text.isdigit() or len(issued_text) > 12 or len(signature) != 40:
        return False
    issued = int(issued_text)
    if not hmac.compare_digest(signature, _signature(key, evse_uid, issued)):
        return False
    age = now.timestamp() - issued
    return -60 <= age <= FORM_TOKEN_LIFETIME.total_seconds()  # a minute of clock skew between processes


# --- the throttle -----------------------------------------------------------------------------


class ReportThrottle:
    """How many reports each sending address may still file: a `TokenBucket` per address,
    forgotten once full again (so memory holds only recent senders)."""

    def __init__(
        self,
        per_hour: float = REPORTS_PER_HOUR,
        burst: int = REPORT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_hour = per_hour
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, address: str) -> float:
        """0 if `address` may file a report now (and it is counted), else the seconds to wait."""
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= MAX_ADDRESSES:
                self._forget()
            bucket = self._buckets[address] = TokenBucket(self.per_hour / 3600, self.burst, self._clock)
        if bucket.tokens < 1.0:
            return (1.0 - bucket.tokens) / bucket.rate
        bucket.reserve()
        return 0.0

    def _forget(self) -> None:
        """Room for new senders: forget those whose bucket is full again (they lose nothing);
        if that is not enough (many addresses at once, say an IPv6 range), the oldest half, so
        memory stays bounded (a forgotten sender starts again with a full burst)."""
        for address in [a for a, b in self._buckets.items() if b.tokens >= b.burst]:
            del self._buckets[address]
        if len(self._buckets) >= MAX_ADDRESSES:
            for address in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[address]

    def __len__(self) -> int:
        return len(self._buckets)
