"""Pure rules of the public page: plug names and power as drivers read them, and what a
problem report may hold, its signed form token and the per-address throttle (injected clocks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from stekker.domain.inventory_rules import CONNECTOR_STANDARDS
from stekker.domain.plugs import kilowatts, max_power_w, plug_name
from stekker.domain.problem_reports import (
    FORM_TOKEN_LIFETIME,
    MAX_ADDRESSES,
    MAX_CONTACT,
    MAX_MESSAGE,
    BadReport,
    ProblemKind,
    ReportThrottle,
    check_report,
    form_token,
    form_token_ok,
)

# --- plugs ----------------------------------------------------------------------------------


def test_plugs_have_the_names_drivers_know() -> None:
    assert plug_name("IEC_62196_T2", "nl") == "Type 2"
    assert plug_name("IEC_62196_T2_COMBO", "en") == "CCS"
    assert plug_name("CHADEMO", "nl") == "CHAdeMO"
    assert plug_name("IEC_62196_T2", "nl", "CABLE") == "Type 2 met vaste kabel"
    assert plug_name("IEC_62196_T2", "en", "CABLE") == "Type 2 with attached cable"
    assert plug_name("DOMESTIC_F", "nl") == "Schuko-stopcontact"
    assert plug_name("DOMESTIC_G", "en") == "Type G socket"
    assert plug_name("SOMETHING_NEW", "en") == "SOMETHING_NEW"  # unknown: as sent
    for code in CONNECTOR_STANDARDS:  # every OCPI code has a name, none shows its code
        for lang in ("nl", "en"):
            assert "_" not in plug_name(code, lang), code


def test_power_in_kilowatts() -> None:
    assert max_power_w("AC_3_PHASE", 230, 32, None) == 22_080
    assert max_power_w("AC_1_PHASE", 230, 16, None) == 3_680
    assert max_power_w("DC", 400, 125, 150_000) == 150_000  # the stored value wins
    assert kilowatts(22_080) == Decimal("22")
    assert kilowatts(11_040) == Decimal("11")
    assert kilowatts(3_680) == Decimal("3.7")
    assert kilowatts(7_360) == Decimal("7.4")
    assert kilowatts(150_000) == Decimal("150")


# --- the report ------------------------------------------------------------------------------


def test_a_report_needs_no_personal_data() -> None:
    draft = check_report("wont_start", "", "")
    assert draft.kind is ProblemKind.WONT_START and draft.message == "" and draft.contact is None
    draft = check_report("damaged", "  Kabel kapot\r\nbij plug 2  ", " 06-12345678 ")
    assert draft.message == "Kabel kapot\nbij plug 2" and draft.contact == "06-12345678"


@pytest.mark.parametrize(
    ("kind", "message", "contact", "field", "reason"),
    [
        ("other", "", "", "message", "empty"),
        ("other", "   ", "", "message", "empty"),
        ("broken", "x", "", "kind", "unknown_kind"),
        ("", "x", "", "kind", "unknown_kind"),
        ("other", "x" * (MAX_MESSAGE + 1), "", "message", "too_long"),
        ("other", "x", "y" * (MAX_CONTACT + 1), "contact", "too_long"),
        ("other", "kapot\x00", "", "message", "control_chars"),
        ("other", "kapot\u202e", "", "message", "control_chars"),  # a bidi override
        ("other", "kapot", "06\n123", "contact", "control_chars"),
    ],
)
def test_what_a_report_may_not_hold(kind: str, message: str, contact: str, field: str, reason: str) -> None:
    with pytest.raises(BadReport) as caught:
        check_report(kind, message, contact)
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_the_longest_report_is_taken() -> None:
    draft = check_report("other", "é" * MAX_MESSAGE, "x" * MAX_CONTACT)
    assert len(draft.message) == MAX_MESSAGE


# --- the form token --------------------------------------------------------------------------


def test_a_form_token_holds_for_its_evse_for_a_while() -> None:
    key, other_key = b"k" * 32, b"o" * 32
    served = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    token = form_token(key, "NL*STK*E1*1", served)
    assert form_token_ok(key, "NL*STK*E1*1", token, served + timedelta(minutes=5))
    assert form_token_ok(key, "NL*STK*E1*1", token, served + FORM_TOKEN_LIFETIME)
    assert not form_token_ok(key, "NL*STK*E1*1", token, served + FORM_TOKEN_LIFETIME + timedelta(seconds=1))
    assert not form_token_ok(key, "NL*STK*E1*1", token, served - timedelta(minutes=5))  # from the future
    assert not form_token_ok(key, "NL*STK*E2*1", token, served)  # another EVSE
    assert not form_token_ok(other_key, "NL*STK*E1*1", token, served)  # another installation
    issued, _, signature = token.partition(".")
    later = str(int(issued) + 3600)
    assert not form_token_ok(key, "NL*STK*E1*1", f"{later}.{signature}", served)  # a moved date
    for junk in ("", ".", "abc", f"{issued}.", f"x{token}", "9" * 40 + "." + signature, token + "0"):
        assert not form_token_ok(key, "NL*STK*E1*1", junk, served)


# --- the throttle ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_counts_per_address_and_refills() -> None:
    clock = Clock()
    throttle = ReportThrottle(per_hour=6, burst=3, clock=clock)
    assert [throttle.take("198.51.100.7") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = throttle.take("198.51.100.7")
    assert wait == pytest.approx(600.0)  # one report per 10 minutes after the burst
    assert throttle.take("203.0.113.9") == 0.0  # another sender is not slowed
    clock.now += 599
    assert throttle.take("198.51.100.7") > 0
    clock.now += 1
    assert throttle.take("198.51.100.7") == 0.0
    assert throttle.take("198.51.100.7") > 0  # a refused try costs nothing, a taken one a token


def test_the_throttle_remembers_a_bounded_number_of_senders() -> None:
    clock = Clock()
    throttle = ReportThrottle(per_hour=6, burst=3, clock=clock)
    for n in range(MAX_ADDRESSES * 2):  # an attack from many addresses, none idle
        assert throttle.take(f"2001:db8::{n:x}") == 0.0
        assert len(throttle) <= MAX_ADDRESSES
    clock.now += 3600  # all full again: forgotten at the next newcomer
    throttle.take("198.51.100.1")
    assert len(throttle) == 1
