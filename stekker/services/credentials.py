"""Station passwords that already verified once, so reconnect storms stay cheap."""

from __future__ import annotations

import hashlib
import hmac


class CredentialCache:
    """Remembers passwords that verified, so a reconnect storm of thousands of stations does
    not cost a deliberately slow scrypt each (tens of ms of CPU). Keyed by the stored hash:
    a changed password invalidates the entry by itself. Holds digests, never passwords."""

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._verified: dict[tuple[str, str], bytes] = {}

    def known(self, station_id: str, stored_hash: str, password: str) -> bool:
        digest = self._verified.get((station_id, stored_hash))
        return digest is not None and hmac.compare_digest(digest, _digest(password))

    def remember(self, station_id: str, stored_hash: str, password: str) -> None:
        if len(self._verified) >= self._size:
            self._verified.pop(next(iter(self._verified)))
        self._verified[(station_id, stored_hash)] = _digest(password)


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode()).digest()
