"""How the console and the public pages write dates, money, energy and numbers: dates and
numbers the Dutch way (`24-11-2026 14:05`, `12,3 kWh`) in the home time zone (times are UTC
inside); money by the one rule of `stekker.domain.money` in the page's language (`€ 1.234,56`
in Dutch, `€1,234.56` in English; amounts in whole cents, unit prices exact)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import pass_context
from jinja2.runtime import Context

from stekker.domain.money import Lang, Rounding, amount_text, unit_price_text
from stekker.domain.price_text import component_price_text
from stekker.domain.station_auth import authentication_of
from stekker.domain.timeutil import HOME_TIME_ZONE

HOME = ZoneInfo(HOME_TIME_ZONE)


def local(moment: datetime) -> datetime:
    """A UTC moment (naive means UTC, as the database returns it) in the home time zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(HOME)


def format_datetime(moment: datetime | None, *, seconds: bool = False) -> str:
    """`24-11-2026 14:05` (home time); an empty string for None."""
    if moment is None:
        return ""
    return local(moment).strftime("%d-%m-%Y %H:%M:%S" if seconds else "%d-%m-%Y %H:%M")


def format_date(moment: datetime | None) -> str:
    return "" if moment is None else local(moment).strftime("%d-%m-%Y")


def _grouped(digits: str) -> str:
    """`1234567` → `1.234.567`."""
    head = len(digits) % 3 or 3
    parts = [digits[:head], *(digits[i : i + 3] for i in range(head, len(digits), 3))]
    return ".".join(parts)


def format_decimal(value: Decimal | int | float, places: int = 2) -> str:
    """A number with `.` between thousands and `,` before the decimals: `1.234,56`."""
    quantum = Decimal(1).scaleb(-places)
    rounded = Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    whole, _, fraction = f"{abs(rounded):f}".partition(".")
    text = _grouped(whole)
    return f"{sign}{text},{fraction}" if places > 0 else f"{sign}{text}"


# the space between a currency and its amount ("€ 0,42", "SEK 3,00"): a line must not break there
_AMOUNT_SPACE = re.compile(r"(?<=[€£$]) (?=-?\d)|(?<=\b[A-Z]{3}) (?=-?\d)")


def keep_amounts_together(text: str) -> str:
    """`text` with a no-break space between each currency and its amount, so an amount never
    wraps over two lines (`€` at the end of one, `0,42` on the next) on a narrow screen."""
    return _AMOUNT_SPACE.sub("\u00a0", text)


def format_money(
    amount: Decimal | None, currency: str = "EUR", lang: Lang = "nl", bound: str | None = None
) -> str:
    """An amount in whole cents as billed (`€ 1.234,56` / `€1,234.56`); `bound` "max" or "min"
    rounds as billing applies that bound (down / up); an empty string for None."""
    if amount is None:
        return ""
    rounding = {"max": Rounding.MAXIMUM, "min": Rounding.MINIMUM}.get(bound or "", Rounding.BILLED)
    return amount_text(Decimal(amount), currency, lang, rounding)


def format_unit_price(price: Decimal | None, currency: str = "EUR", lang: Lang = "nl") -> str:
    """A price per kWh or per hour exactly as it is multiplied (`€ 0,4235`); "" for None."""
    if price is None:
        return ""
    return unit_price_text(Decimal(price), currency, lang)


def _lang(context: Context) -> Lang:
    return "en" if context.get("lang") == "en" else "nl"


@pass_context
def money_filter(
    context: Context, amount: Decimal | None, currency: str = "EUR", bound: str | None = None
) -> str:
    """`{{ total|money(currency) }}` in the page's language; `bound="max"` for a maximum."""
    return keep_amounts_together(format_money(amount, currency, _lang(context), bound))


@pass_context
def unit_price_filter(context: Context, price: Decimal | None, currency: str = "EUR") -> str:
    """`{{ price|unit_price(currency) }}` in the page's language."""
    return keep_amounts_together(format_unit_price(price, currency, _lang(context)))


@pass_context
def component_price_filter(context: Context, value: Decimal | None, kind: str, currency: str = "EUR") -> str:
    """`{{ c.price_incl_vat|component_price(c.kind, currency) }}`: a start fee in cents as billed,
    a price per kWh or hour exactly (`stekker.domain.price_text.component_price_text`)."""
    if value is None:
        return ""
    return keep_amounts_together(component_price_text(kind, Decimal(value), currency, _lang(context)))


def format_energy(wh: int | None) -> str:
    """Wh as kWh with one decimal (`12,3 kWh`); an empty string for None."""
    if wh is None:
        return ""
    return f"{format_decimal(Decimal(wh) / 1000, 1)} kWh"


def format_int(value: int | None) -> str:
    """`12.345`; an empty string for None."""
    if value is None:
        return ""
    text = _grouped(str(abs(value)))
    return f"-{text}" if value < 0 else text


def format_duration(span: timedelta, lang: str) -> str:
    """`2 u 05 min` / `2 h 05 min`; `3 d 4 u` past a day; minutes under an hour."""
    minutes = max(0, int(span.total_seconds() // 60))
    hour = "u" if lang == "nl" else "h"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} {hour}"
    if hours:
        return f"{hours} {hour} {mins:02d} min"
    return f"{mins} min"


def station_authentication(station: Any) -> str:
    """What a station connects with (`stekker.domain.station_auth`): password, certificate,
    none (registered without authentication) or missing; the console shows the last two as a risk."""
    return authentication_of(station.security_profile, station.password_hash is not None).value
