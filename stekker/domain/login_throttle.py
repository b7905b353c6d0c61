"""How soon a login may be tried again after wrong passwords: the rule the API and the console
share (`services.users.login` applies it).

Failures are counted per (user name, client address), and per client address across names:

- a pair gets `free_failures` wrong passwords free; after that every next attempt must wait
  1, 2, 4, ... seconds (`base_delay` doubled per failure) after the last failure, at most
  `max_delay`. An attempt inside the wait is refused without checking the password, and does
  not count as a failure, so it does not lengthen the wait either;
- an attempt counts as a failure from the moment it is admitted (`admit`) until the right
  password clears it (`succeeded`): many attempts sent at once cannot all slip in while the
  first password is still being checked;
- an address gets `address_free_failures` failures free over all names, then the same doubling:
  one address trying many names (credential stuffing) is slowed as one guesser.

Nothing is counted per user name alone, so a stranger's wrong passwords slow only the
stranger's own address: they cannot lock the real user out (an earlier per-user lock let
anyone keep an admin locked out for ever). A success clears the pair but not the address
(else an attacker with one account of its own would clear its address between guesses). A
record is forgotten `forget_after` after its last failure; past `max_keys` records the ones
with the oldest failure go (so memory is bounded, at the price that an attacker with very many
addresses gets its counts reset early).

This class keeps the counts in memory, for one process. In a cluster
`stekker.cluster.limits.SharedLoginThrottle` applies the same rule to counts in Redis, so every
process sees the same failures (and falls back to this class while Redis is away).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

_K = TypeVar("_K", str, tuple[str, str])


@dataclass(slots=True)
class _Strikes:
    """Wrong passwords of one key, and when the last one was."""

    failures: int
    last: datetime


def user_key(username: str) -> str:
    """How a user name (or station id) is counted: case and surrounding spaces do not make a
    new name, and a very long one is cut (memory and keys stay bounded)."""
    return username.strip().lower()[:64]


def delay_after(failures: int, free: int, base: timedelta, cap: timedelta) -> timedelta:
    """The wait before the next attempt after `failures` wrong passwords: none for the first
    `free`, then `base`, doubled per further failure, at most `cap`."""
    if failures < free:
        return timedelta(0)
    doublings = failures - free
    if doublings >= 64:  # 2**64 seconds is past any cap; avoid the huge multiplication
        return cap
    wait: timedelta = base * (2**doublings)
    return min(cap, wait)


@dataclass
class LoginThrottle:
    """Failed logins per (user name, address) and per address, with an exponential wait.

    Every method takes `now` (the caller's injected clock), so it is tested without sleeping.
    """

    free_failures: int = 3
    address_free_failures: int = 20
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=15)
    max_keys: int = 100_000
    _pairs: OrderedDict[tuple[str, str], _Strikes] = field(default_factory=OrderedDict)
    _addresses: OrderedDict[str, _Strikes] = field(default_factory=OrderedDict)

    @property
    def forget_after(self) -> timedelta:
        """A quiet spell after which a record starts again from zero: twice the longest wait."""
        return self.max_delay * 2

    @staticmethod
    def _name(username: str) -> str:
        return user_key(username)

    def _ready_at(self, strikes: _Strikes | None, free: int) -> datetime | None:
        if strikes is None:
            return None
        return strikes.last + delay_after(strikes.failures, free, self.base_delay, self.max_delay)

    def retry_after(self, username: str, address: str, now: datetime) -> int | None:
        """Whole seconds the next attempt of `username` from `address` must still wait, or None
        when it may be tried now."""
        self._forget(now)
        moments = (
            self._ready_at(self._pairs.get((self._name(username), address)), self.free_failures),
            self._ready_at(self._addresses.get(address), self.address_free_failures),
        )
        ready = max((m for m in moments if m is not None), default=None)
        if ready is None or ready <= now:
            return None
        return max(1, math.ceil((ready - now).total_seconds()))

    def admit(self, username: str, address: str, now: datetime) -> int | None:
        """Admit an attempt, counted as a failure until `succeeded`; or, while the pair or the
        address must still wait, the whole seconds to wait (nothing is counted then)."""
        wait = self.retry_after(username, address, now)
        if wait is not None:
            return wait
        self._strike(self._pairs, (self._name(username), address), now)
        self._strike(self._addresses, address, now)
        return None

    def succeeded(self, username: str, address: str) -> None:
        """The admitted attempt had the right password: the pair starts again from zero, and
        the address's count loses this attempt (but keeps its earlier failures)."""
        self._pairs.pop((self._name(username), address), None)
        strikes = self._addresses.get(address)
        if strikes is not None:
            strikes.failures -= 1
            if strikes.failures <= 0:
                del self._addresses[address]

    def _strike(self, records: OrderedDict[_K, _Strikes], key: _K, now: datetime) -> None:
        strikes = records.pop(key, None)
        if strikes is None:
            strikes = _Strikes(0, now)
        strikes.failures, strikes.last = strikes.failures + 1, now
        records[key] = strikes  # to the end: the order is that of the last failure
        while len(records) > self.max_keys:
            records.popitem(last=False)

    def _forget(self, now: datetime) -> None:
        """Drop records quiet for `forget_after` (they are ordered by their last failure)."""
        horizon = now - self.forget_after
        for records in (self._pairs, self._addresses):
            while records:
                oldest = next(iter(records.values()))
                if oldest.last > horizon:
                    break
                records.popitem(last=False)
