"""Badge colours by meaning: the same word has the same colour everywhere, and a result
that went through is never red."""

from __future__ import annotations

import pytest

from stekker.web.badges import FAMILIES, KINDS, kind


@pytest.mark.parametrize("value", ["ok", "accepted", "Accepted", "sent", "released", "Unlocked"])
def test_an_audit_result_that_went_through_is_green(value: str) -> None:
    assert kind("audit", value) == "ok"


@pytest.mark.parametrize("value", ["failed", "rejected", "Rejected", "refused", "UnlockFailed"])
def test_an_audit_result_that_did_not_is_red(value: str) -> None:
    assert kind("audit", value) == "bad"


@pytest.mark.parametrize("value", ["SomethingNew", "", None, "<script>"])
def test_an_audit_result_we_do_not_know_is_neutral(value: object) -> None:
    assert kind("audit", value) == "off"


def test_accepted_is_never_red_in_any_family() -> None:
    for family, table in FAMILIES.items():
        for value, colour in table.items():
            assert colour in KINDS, (family, value)
            if value.lower() in {"accepted", "ok", "available", "active", "completed"}:
                assert colour != "bad", (family, value)


def test_an_unknown_family_is_a_bug_not_grey() -> None:
    with pytest.raises(KeyError):
        kind("no-such-family", "ok")
