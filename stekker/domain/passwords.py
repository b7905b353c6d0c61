"""Passwords (users, and stations on OCPP security profiles 1 and 2) are stored as salted
scrypt hashes.

A hash names its own cost: `scrypt$n=16384,r=8,p=1$<salt>$<digest>`, so the cost can be raised
later without invalidating stored hashes (each is verified with the cost it was made with).
Hashes from before the cost was written down (`scrypt$<salt>$<digest>`) have the default cost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScryptCost:
    """scrypt's work factors: CPU/memory cost `n` (a power of two), block size `r`, parallelism `p`.
    Memory per hash is 128 · n · r bytes (16 MiB at the default)."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    def text(self) -> str:
        return f"n={self.n},r={self.r},p={self.p}"

    @staticmethod
    def parse(text: str) -> ScryptCost | None:
        try:
            fields = dict(part.split("=", 1) for part in text.split(","))
            cost = ScryptCost(int(fields["n"]), int(fields["r"]), int(fields["p"]))
        except (KeyError, ValueError):
            return None
        # a stored hash is trusted data, but a damaged one must not make us allocate gigabytes
        power_of_two = cost.n >= 2 and cost.n & (cost.n - 1) == 0
        if not (
            power_of_two and 1 <= cost.r <= 32 and 1 <= cost.p <= 16 and 128 * cost.n * cost.r <= _MAXMEM // 2
        ):
            return None
        return cost


_MAXMEM = 256 * 1024 * 1024  # what one hash may allocate
DEFAULT_COST = ScryptCost()
_cost = DEFAULT_COST


def use_cost(cost: ScryptCost) -> None:
    """The cost of new hashes in this process. Only the test suite lowers it (thousands of
    throw-away users and stations); a deployment keeps the default."""
    global _cost
    _cost = cost


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _cost, 32)
    return f"scrypt${_cost.text()}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) == 3:  # written before the cost was part of the hash
        parts.insert(1, DEFAULT_COST.text())
    if len(parts) != 4 or parts[0] != "scrypt":
        return False
    cost = ScryptCost.parse(parts[1])
    try:
        salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except ValueError:
        return False
    if cost is None or not digest:
        return False
    candidate = _scrypt(password, salt, cost, len(digest))
    return hmac.compare_digest(candidate, digest)


def _scrypt(password: str, salt: bytes, cost: ScryptCost, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, dklen=length, maxmem=_MAXMEM
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
