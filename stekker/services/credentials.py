"""Station passwords that already verified once, so reconnect storms stay cheap."""

from __future__ import annotations

import hashlib
import hmac


class CredentialCache:
    """Remembers passwords that verified, so a reconnect storm of thousands of stations does
    not cost a deliberately slow scrypt each (tens of ms of CPU). Holds digests, never passwords.

    An entry counts only with the stored hash it was verified against, and the caller reads
    that hash from the database at every handshake: a password changed in any process makes
    the entry useless by itself. `forget` (on `station.changed` / `auth.changed`, see
    `services.users.follow_auth_changes`) drops it too, so no process keeps the digest of a
    password that is no longer the station's."""

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._verified: dict[str, tuple[str, bytes]] = {}  # station id → (stored hash, digest)

    def known(self, station_id: str, stored_hash: str, password: str) -> bool:
        entry = self._verified.get(station_id)
        return (
            entry is not None and entry[0] == stored_hash and hmac.compare_digest(entry[1], _digest(password))
        )

    def remember(self, station_id: str, stored_hash: str, password: str) -> None:
        if station_id not in self._verified and len(self._verified) >= self._size:
            self._verified.pop(next(iter(self._verified)))
        self._verified[station_id] = (stored_hash, _digest(password))

    def forget(self, station_id: str) -> None:
        """The station's credentials changed (or it was retired): verify afresh next time."""
        self._verified.pop(station_id, None)

    def clear(self) -> None:
        """Many stations changed at once (an import): verify every one afresh."""
        self._verified.clear()

    def __len__(self) -> int:
        return len(self._verified)


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode()).digest()
