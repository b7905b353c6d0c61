"""Stored password hashes: scrypt with the cost written into the hash."""

from __future__ import annotations

import base64
import hashlib

from stekker.domain import passwords
from stekker.domain.passwords import DEFAULT_COST, ScryptCost, hash_password, verify_password


def test_the_default_cost_is_scrypts_interactive_recommendation() -> None:
    assert DEFAULT_COST == ScryptCost(n=2**14, r=8, p=1)


def test_a_hash_names_its_cost_and_verifies_whatever_the_current_cost() -> None:
    stored = hash_password("correct horse battery")  # the suite's lowered cost (conftest)
    scheme, cost, _salt, _digest = stored.split("$")
    assert scheme == "scrypt" and ScryptCost.parse(cost) == ScryptCost(n=2**8, r=8, p=1)
    passwords.use_cost(DEFAULT_COST)
    try:
        made_at_default = hash_password("correct horse battery")
        assert made_at_default.split("$")[1] == "n=16384,r=8,p=1"
    finally:
        passwords.use_cost(ScryptCost(n=2**8, r=8, p=1))
    for digest in (stored, made_at_default):
        assert verify_password("correct horse battery", digest)
        assert not verify_password("correct horse batterY", digest)


def test_hashes_from_before_the_cost_was_written_still_verify() -> None:
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"an old password!", salt=salt, n=2**14, r=8, p=1, dklen=32)
    old = "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()
    assert verify_password("an old password!", old)
    assert not verify_password("another password", old)


def test_damaged_hashes_are_a_wrong_password_not_an_error() -> None:
    good = hash_password("pw")
    _, cost, salt, digest = good.split("$")
    for damaged in (
        "",
        "plain",
        "md5$x$y",
        f"scrypt${cost}${salt}",
        f"scrypt$n=3,r=8,p=1${salt}${digest}",  # n not a power of two
        f"scrypt$n=1048576,r=32,p=1${salt}${digest}",  # gigabytes of memory
        f"scrypt$n=abc${salt}${digest}",
        f"scrypt${cost}$***${digest}",
        f"scrypt${cost}${salt}$",
    ):
        assert verify_password("pw", damaged) is False, damaged
