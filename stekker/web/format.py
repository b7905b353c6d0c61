"""How the console and the public pages write dates, money, energy and numbers: the Dutch way
(`24-11-2026 14:05`, `€ 1.234,56`, `12,3 kWh`) in both languages, as the issue asks, in the
home time zone (times are UTC inside)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from stekker.domain.price_text import money
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


def format_money(amount: Decimal | None, currency: str = "EUR") -> str:
    """`€ 1.234,56`, a per-kWh price with its own decimals (`€ 0,275`), as the driver's price
    text writes money (`domain.price_text.money`); an empty string for None."""
    if amount is None:
        return ""
    return money(Decimal(amount), currency, "nl")


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
