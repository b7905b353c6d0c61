"""Money as people read it (`stekker.domain.money`): amounts in whole cents rounded as billed,
unit prices exact, one form per language; and what a price text shows is what is billed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from stekker.domain.billing import bill, cents
from stekker.domain.money import (
    Rounding,
    amount_text,
    in_cents,
    unit_price,
    unit_price_text,
)
from stekker.domain.price_caps import CapOutcome
from stekker.domain.price_text import price_texts
from stekker.domain.pricing import SessionPeriod, price_session
from stekker.domain.tariffs import DimensionType, tariff_from_ocpi

EUR = "EUR"


def test_amounts_are_whole_cents_rounded_as_billing_rounds() -> None:
    for text in ("12.463", "12.465", "12.4649", "0.005", "0.0049", "-0.005", "7.986", "0", "1E+3"):
        value = Decimal(text)
        assert in_cents(value) == cents(value)  # the one rule: billing's
    assert amount_text(Decimal("12.463"), EUR, "nl") == "€ 12,46"
    assert amount_text(Decimal("12.465"), EUR, "en") == "€12.47"
    assert amount_text(Decimal("7.986"), EUR, "nl") == "€ 7,99"
    assert amount_text(Decimal("0.047"), EUR, "nl") == "€ 0,05"
    assert amount_text(Decimal("0.0711"), EUR, "en") == "€0.07"


def test_a_bound_rounds_towards_its_own_side() -> None:
    assert amount_text(Decimal("12.469"), EUR, "nl", Rounding.MAXIMUM) == "€ 12,46"  # never above a cap
    assert amount_text(Decimal("0.541"), EUR, "en", Rounding.MINIMUM) == "€0.55"  # never below a minimum
    assert amount_text(Decimal("11"), EUR, "en", Rounding.MAXIMUM) == "€11.00"


def test_unit_prices_keep_the_decimals_they_have() -> None:
    assert unit_price(Decimal("0.35") * Decimal("1.21")) == Decimal("0.4235")
    assert unit_price_text(Decimal("0.4235"), EUR, "nl") == "€ 0,4235"
    assert unit_price_text(Decimal("0.4235"), EUR, "en") == "€0.4235"
    assert unit_price_text(Decimal("0.275"), EUR, "nl") == "€ 0,275"
    assert unit_price_text(Decimal("0.30"), EUR, "nl") == "€ 0,30"  # at least two
    assert unit_price_text(Decimal("2"), EUR, "en") == "€2.00"
    assert unit_price_text(Decimal("1.90") * Decimal("1.052"), EUR, "en") == "€1.9988"
    # only a fractional VAT rate gets past six decimals; then half up
    assert unit_price_text(Decimal("0.3333") * Decimal("1.215"), EUR, "nl") == "€ 0,404960"


def test_each_language_has_one_form() -> None:
    assert amount_text(Decimal("1234567.5"), EUR, "nl") == "€ 1.234.567,50"
    assert amount_text(Decimal("1234567.5"), EUR, "en") == "€1,234,567.50"
    assert amount_text(Decimal("-1.5"), EUR, "nl") == "-€ 1,50"
    assert amount_text(Decimal("-1.5"), EUR, "en") == "-€1.50"
    assert amount_text(Decimal("3"), "SEK", "nl") == "SEK 3,00"
    assert amount_text(Decimal("3"), "sek", "en") == "SEK 3.00"
    assert amount_text(Decimal("3"), "GBP", "en") == "£3.00"
    for value in ("0.42", "1234.5", "0.4235"):
        nl, en = amount_text(Decimal(value), EUR, "nl"), amount_text(Decimal(value), EUR, "en")
        assert nl.startswith("€ ") and not en.startswith("€ ") and en.startswith("€")


def _per_kwh(text: str, lang: str) -> Decimal:
    found = re.search(r"€ ?([\d.,]+) per kWh", text)
    assert found is not None, text
    digits = found.group(1)
    digits = digits.replace(".", "").replace(",", ".") if lang == "nl" else digits.replace(",", "")
    return Decimal(digits)


@pytest.mark.parametrize("price", ["0.35", "0.3333", "0.2479", "0.59"])
@pytest.mark.parametrize("energy_wh", [1, 999, 12_345, 22_000, 87_654])
def test_the_price_a_driver_reads_gives_the_billed_energy_line(price: str, energy_wh: int) -> None:
    """A driver multiplying the kWh by the price in the text, and rounding to the cent, gets
    the bill's energy line; `€ 0,42` for 0.4235 would be off by up to 30 cents on 87 kWh."""
    body = {
        "currency": EUR,
        "elements": [{"price_components": [{"type": "ENERGY", "price": price, "vat": 21, "step_size": 1}]}],
    }
    tariff = tariff_from_ocpi(body)
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    periods = [SessionPeriod(start, start + timedelta(hours=2), energy_wh, charging=True)]
    priced = price_session(tariff, periods, UTC)
    billed = bill(priced, CapOutcome(priced.total_excl_vat, priced.total_incl_vat, None, None))
    line = billed.line(DimensionType.ENERGY)
    assert line is not None
    for lang, text in price_texts(tariff).items():
        shown = _per_kwh(text, lang)
        assert cents(shown * Decimal(energy_wh) / 1000) == line.incl_vat, (lang, text)
