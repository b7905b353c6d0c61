"""Money as people read it: one rule for every edge (console, public page, open data texts,
OCPI alt texts, CLI), so what is shown agrees with what is billed (`stekker.domain.billing`).

Two kinds of money are written, and each has one form:

- **An amount** (a total, a cost line, a difference, a fee billed once, a bound) is what
  somebody pays or may pay: always **whole cents**, rounded as billing rounds it: half up
  (`billing.cents`), except a bound, which billing rounds towards its own side (a maximum
  down, so never above it; a minimum up). `€ 12,46`, never `€ 12,463`.
- **A unit price** (per kWh, per hour) is what a quantity is multiplied by before the line is
  rounded to cents. It is written **exactly**, with at least two decimals and as many more as
  it really has (`€ 0,4235` for 0.35 excl. VAT plus 21 %), so a driver who multiplies gets the
  bill's number and never a price that disagrees with it (`€ 0,42` would). Beyond
  `UNIT_PRICE_MAX_PLACES` decimals (only a price with a fractional VAT rate gets there) it is
  rounded half up, a difference below a cent on any real session.

Language: Dutch `€ 1.234,56` and `-€ 1,23`, English `€1,234.56` and `-€1.23`; a currency
without a symbol here by its code: `SEK 3,00` / `SEK 3.00`.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from enum import Enum
from typing import Literal

from stekker.domain.billing import CENT

Lang = Literal["nl", "en"]

UNIT_PRICE_MIN_PLACES = 2
UNIT_PRICE_MAX_PLACES = 6

_SYMBOL = {"EUR": "€", "GBP": "£", "USD": "$"}


class Rounding(Enum):
    """How an amount becomes whole cents: as a cost line is billed (half up), or as a bound
    is applied (a maximum down, a minimum up)."""

    BILLED = ROUND_HALF_UP
    MAXIMUM = ROUND_DOWN
    MINIMUM = ROUND_UP


def in_cents(value: Decimal, rounding: Rounding = Rounding.BILLED) -> Decimal:
    """`value` in whole cents, rounded the way `rounding` says."""
    return Decimal(value).quantize(CENT, rounding=rounding.value)


def unit_price(value: Decimal) -> Decimal:
    """A unit price with the decimals it really has: at least two, at most
    `UNIT_PRICE_MAX_PLACES` (rounded half up beyond that)."""
    value = Decimal(value)
    exponent = value.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) else UNIT_PRICE_MIN_PLACES
    places = min(max(places, UNIT_PRICE_MIN_PLACES), UNIT_PRICE_MAX_PLACES)
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _written(value: Decimal, currency: str, lang: Lang) -> str:
    """`value` (already rounded as it should be shown) with its currency, in `lang`'s form."""
    sign = "-" if value < 0 else ""
    digits = f"{abs(value):,f}"  # 1,234.56
    code = currency.upper()
    symbol = _SYMBOL.get(code)
    if lang == "nl":
        digits = digits.replace(",", "_").replace(".", ",").replace("_", ".")
        return f"{sign}{symbol or code} {digits}"
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{code} {digits}"


def amount_text(value: Decimal, currency: str, lang: Lang, rounding: Rounding = Rounding.BILLED) -> str:
    """An amount as people read it: whole cents (`€ 12,46` / `€12.46`)."""
    return _written(in_cents(value, rounding), currency, lang)


def unit_price_text(value: Decimal, currency: str, lang: Lang) -> str:
    """A price per unit as people read it: exact (`€ 0,4235` / `€0.4235`), see `unit_price`."""
    return _written(unit_price(value), currency, lang)
