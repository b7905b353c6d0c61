"""A token bucket: `burst` at once, then `rate` per second, refilled continuously.

Pure logic with an injected monotonic clock (seconds), so it is tested without sockets or
sleeping. The OCPP gateway keeps one per station connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """How much one client may still do now.

    `reserve` always takes a token, borrowing against the future when the bucket is empty,
    and says how long the caller must wait before acting on it: a caller that waits that
    long before its next `reserve` keeps the long-run rate at `rate` whatever the burst.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        return now

    def reserve(self) -> float:
        """Take one token; 0 if it was there, else the seconds until it will have been."""
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    @property
    def tokens(self) -> float:
        """Tokens available now (negative: borrowed)."""
        self._refill()
        return self._tokens
