"""What a driver or eMSP is billed: whole cents, and cost lines that add up to the total.

Pure: a ``PricedSession`` (the exact amounts of ``stekker.domain.pricing``) and its
``CapOutcome`` (``stekker.domain.price_caps``) in, a ``Bill`` out. One rule, used by every
amount we bill or show as billed (the CDR, the OCPI Session's ``total_cost``, the tariff
comparison):

1. **Each cost line** (FLAT, ENERGY, TIME, PARKING_TIME: OCPI's ``total_fixed_cost``,
   ``total_energy_cost``, ``total_time_cost``, ``total_parking_cost``) is the engine's exact
   amount rounded **half up to whole cents**, excl. VAT and incl. VAT each (so a line's VAT is
   its incl. minus its excl.: the exact VAT of the line, rounded once).
2. **The total is the sum of the rounded lines**, excl. and incl. VAT.
3. **When a bound changes the total** (the tariff's ``max_price``/``min_price``, the
   municipal cap), the total is that bound in whole cents, rounded towards the bound's side
   (down for a maximum, so never above the cap; up for a minimum), and the lines are scaled to
   it in whole cents: each line gets its share of the new total, and the cents rounding leaves
   over go to the lines with the largest remainders. The lines still add up exactly, so an
   eMSP printing invoice lines prints a sum that matches. ``asked_*`` keep what the tariff
   asked before the bound, for the remark. A bound that raises a session in which nothing
   was billed puts the whole amount on the fixed line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

from stekker.domain.price_caps import CapOutcome
from stekker.domain.pricing import PricedSession
from stekker.domain.tariffs import DimensionType, Price

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class BilledLine:
    """One cost line of a bill, in whole cents: what one dimension costs, excl. and incl. VAT."""

    type: DimensionType
    excl_vat: Decimal
    incl_vat: Decimal


@dataclass(frozen=True, slots=True)
class Bill:
    """A priced session as billed: whole cents; ``lines`` add up to the totals.

    ``asked_excl_vat``/``asked_incl_vat`` are the sums of the rounded lines before a bound
    changed the total (equal to the totals when none did); ``capped_by`` names the bound.
    """

    currency: str
    lines: tuple[BilledLine, ...]
    total_excl_vat: Decimal
    total_incl_vat: Decimal
    asked_excl_vat: Decimal
    asked_incl_vat: Decimal
    capped_by: str | None

    def line(self, kind: DimensionType) -> BilledLine | None:
        """The line of one dimension, if the session has it."""
        for item in self.lines:
            if item.type is kind:
                return item
        return None


def cents(amount: Decimal) -> Decimal:
    """An amount in whole cents, half up: the rounding of every billed line."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _scaled(amounts: Sequence[Decimal], total: Decimal) -> list[Decimal]:
    """``amounts`` (whole cents, not negative) scaled to add up to ``total`` (whole cents), by
    largest remainder."""
    units = [int(a / CENT) for a in amounts]
    target = int(total / CENT)
    whole = sum(units)
    if whole <= 0:
        return [total] + [Decimal(0)] * (len(amounts) - 1) if amounts else []
    shares = [u * target // whole for u in units]
    remainders = [u * target % whole for u in units]
    left = target - sum(shares)
    # largest remainder first; on a tie the earlier line (FLAT, then ENERGY...) takes the cent
    for index in sorted(range(len(units)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return [Decimal(s) * CENT for s in shares]


def bill(priced: PricedSession, outcome: CapOutcome, max_price: Price | None = None) -> Bill:
    """The bill of a priced and capped session (the module docstring's rule). ``max_price`` is
    the tariff's: rounding the lines up must not lift the total above it, nor above the cap."""
    kinds = [d.type for d in priced.dimensions]
    excl = [cents(d.exact_excl_vat) for d in priced.dimensions]
    incl = [cents(d.exact_incl_vat) for d in priced.dimensions]
    asked_excl, asked_incl = sum(excl, Decimal(0)), sum(incl, Decimal(0))
    capped_by = outcome.capped_by
    if capped_by is not None:
        towards = ROUND_UP if capped_by == "min_price" else ROUND_DOWN
        total_excl = max(Decimal(0), outcome.total_excl_vat.quantize(CENT, rounding=towards))
        total_incl = max(Decimal(0), outcome.total_incl_vat.quantize(CENT, rounding=towards))
    else:
        total_excl, total_incl = asked_excl, asked_incl
    # the lines' half-up rounding may add up to a cent a line: never above a maximum
    ceilings: list[tuple[Decimal | None, Decimal | None, str]] = [
        (None, outcome.limit_incl_vat, "cap"),
    ]
    if max_price is not None:
        ceilings.append((max_price.excl_vat, max_price.incl_vat, "max_price"))
    for ceiling_excl, ceiling_incl, name in ceilings:
        if ceiling_excl is not None and total_excl > ceiling_excl:
            total_excl = ceiling_excl.quantize(CENT, rounding=ROUND_DOWN)
            capped_by = capped_by or name
        if ceiling_incl is not None and total_incl > ceiling_incl:
            total_incl = ceiling_incl.quantize(CENT, rounding=ROUND_DOWN)
            capped_by = capped_by or name
    total_excl = min(total_excl, total_incl)  # VAT is never negative: excl. never above incl.
    if (total_excl and not asked_excl) or (total_incl and not asked_incl):
        # a minimum on a session in which nothing was billed: the fixed line carries it
        if DimensionType.FLAT not in kinds:
            kinds, excl, incl = [DimensionType.FLAT, *kinds], [Decimal(0), *excl], [Decimal(0), *incl]
    if (total_excl, total_incl) != (asked_excl, asked_incl):
        excl = _scaled(excl, total_excl)
        incl = _scaled(incl, total_incl)
    lines = tuple(BilledLine(k, e, i) for k, e, i in zip(kinds, excl, incl, strict=True))
    return Bill(
        currency=priced.currency,
        lines=lines,
        total_excl_vat=total_excl,
        total_incl_vat=total_incl,
        asked_excl_vat=asked_excl,
        asked_incl_vat=asked_incl,
        capped_by=capped_by,
    )
