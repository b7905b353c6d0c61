"""The cache of verified station passwords never admits what scrypt would refuse."""

from __future__ import annotations

from stekker.domain.passwords import hash_password, verify_password
from stekker.services.credentials import CredentialCache


def test_cache_admits_only_the_verified_password_for_the_stored_hash() -> None:
    stored = hash_password("correct horse battery")
    assert verify_password("correct horse battery", stored) and not verify_password("wrong", stored)
    cache = CredentialCache(size=2)
    assert not cache.known("CP1", stored, "correct horse battery")
    cache.remember("CP1", stored, "correct horse battery")
    assert cache.known("CP1", stored, "correct horse battery")
    assert not cache.known("CP1", stored, "correct horse batterY")
    assert not cache.known("CP2", stored, "correct horse battery")  # another station
    assert not cache.known("CP1", hash_password("new password 123456"), "correct horse battery")  # changed
    cache.remember("CP2", stored, "x")
    cache.remember("CP3", stored, "y")  # over the size: the oldest entry goes
    assert not cache.known("CP1", stored, "correct horse battery")
