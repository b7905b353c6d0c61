"""What charging costs, in words and as plain data, for drivers (requirement 5).

Pure code, no I/O. ``summarize`` turns a ``Tariff`` (OCPI rules: per dimension the first
element whose restrictions hold applies) into a ``PriceSummary``: every price with and
without VAT, what it is for, and its restrictions in plain terms. ``describe`` writes that
summary as sentences in Dutch or English, incl. VAT as a driver pays it, money by the one
rule of ``stekker.domain.money``: unit prices exact ("€ 0,4235 per kWh" / "€0.4235 per kWh"),
amounts billed once (a start fee, a minimum or maximum) in whole cents as billed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from stekker.domain.money import Lang, Rounding, amount_text, unit_price_text
from stekker.domain.tariffs import (
    DayOfWeek,
    DimensionType,
    Price,
    PriceComponent,
    Tariff,
    TariffRestrictions,
)

LANGUAGES: tuple[Lang, ...] = ("nl", "en")

_KIND = {
    DimensionType.ENERGY: "energy",
    DimensionType.TIME: "charging_time",
    DimensionType.PARKING_TIME: "parking_time",
    DimensionType.FLAT: "start_fee",
}
_UNIT = {
    DimensionType.ENERGY: "kWh",
    DimensionType.TIME: "hour",
    DimensionType.PARKING_TIME: "hour",
    DimensionType.FLAT: "session",
}


@dataclass(frozen=True, slots=True)
class ComponentPrice:
    """One price of a tariff element: what it is for (`kind`: energy, charging_time,
    parking_time, start_fee), per which `unit` (kWh, hour, session), excl. and incl. VAT
    (exact, not rounded), the VAT percentage (None: no VAT applies) and the billing step
    (Wh for energy, seconds for time)."""

    kind: str
    unit: str
    price_excl_vat: Decimal
    price_incl_vat: Decimal
    vat_percent: Decimal | None
    step_size: int
    dimension: DimensionType


@dataclass(frozen=True, slots=True)
class ElementSummary:
    """A tariff element in plain terms: its prices and when they apply (`conditions`, the set
    restrictions as simple values; `when` the same in words per language, empty if always).
    `reservation` marks an element that prices a reservation, not charging."""

    prices: tuple[ComponentPrice, ...]
    conditions: dict[str, object]
    when: dict[str, str]
    reservation: str | None = None


@dataclass(frozen=True, slots=True)
class PriceSummary:
    """A tariff as a driver needs to know it: currency, elements in their order of precedence,
    the session's minimum and maximum total (incl. VAT when known) and the free parking time
    after charging before the idle fee starts."""

    currency: str
    elements: tuple[ElementSummary, ...]
    min_price: Price | None
    max_price: Price | None
    parking_grace_minutes: int
    free: bool = field(default=False)


# --- numbers, money, durations -------------------------------------------------------------


def incl_vat(price: Decimal, vat: Decimal | None) -> Decimal:
    """`price` plus `vat` percent, exact (no VAT → the same price)."""
    if vat is None:
        return price
    return (price * (100 + vat) / 100).normalize() if price else Decimal(0)


def _plain(value: Decimal) -> str:
    """A number without exponent or trailing zeros: 16, 0.5, 22.08."""
    text = f"{value.normalize():f}"
    return text


def _number(value: Decimal, lang: Lang) -> str:
    text = _plain(value)
    return text.replace(".", ",") if lang == "nl" else text


def duration_text(seconds: int, lang: Lang) -> str:
    """3600 → "1 uur" / "1 hour"; 5400 → "1 uur en 30 minuten" / "1 hour and 30 minutes"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts: list[str] = []
    if hours:
        parts.append(f"{hours} uur" if lang == "nl" else f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes:
        word = (
            ("minuut" if minutes == 1 else "minuten")
            if lang == "nl"
            else f"minute{'s' if minutes != 1 else ''}"
        )
        parts.append(f"{minutes} {word}")
    if secs or not parts:
        word = "seconden" if lang == "nl" else "seconds"
        parts.append(f"{secs} {word}")
    return (" en " if lang == "nl" else " and ").join(parts)


# --- restrictions in words ----------------------------------------------------------------------

_DAY_NAMES: dict[Lang, tuple[str, ...]] = {
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS: dict[Lang, tuple[str, ...]] = {
    "nl": tuple(
        "januari februari maart april mei juni juli augustus september oktober november december".split()
    ),
    "en": tuple(
        "January February March April May June July August September October November December".split()
    ),
}


def _and(items: Sequence[str], lang: Lang) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {'en' if lang == 'nl' else 'and'} {items[-1]}"


def days_text(days: frozenset[DayOfWeek], lang: Lang) -> str:
    """Runs of consecutive days shortened: "maandag t/m vrijdag", "Saturday and Sunday"."""
    indexes = sorted(d.iso_index for d in days)
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    names = _DAY_NAMES[lang]
    words: list[str] = []
    for run in runs:
        if len(run) >= 3:
            words.append(f"{names[run[0]]} {'t/m' if lang == 'nl' else 'to'} {names[run[-1]]}")
        else:
            words.extend(names[i] for i in run)
    return _and(words, lang)


def _date(value: date, lang: Lang) -> str:
    month = _MONTHS[lang][value.month - 1]
    return f"{value.day} {month} {value.year}" if lang == "nl" else f"{month} {value.day}, {value.year}"


def _bounds(low: str | None, high: str | None, lang: Lang, what: dict[Lang, tuple[str, str, str]]) -> str:
    """Words for an inclusive lower and exclusive upper bound; `what` gives the three forms
    (both, only lower, only upper) with {low} and {high} placeholders."""
    both, only_low, only_high = what[lang]
    if low is not None and high is not None:
        return both.format(low=low, high=high)
    if low is not None:
        return only_low.format(low=low)
    return only_high.format(high=high)


_KWH: dict[Lang, tuple[str, str, str]] = {
    "nl": ("van {low} tot {high} kWh geladen", "vanaf {low} kWh geladen", "voor de eerste {high} kWh"),
    "en": ("from {low} to {high} kWh charged", "from {low} kWh charged on", "for the first {high} kWh"),
}
_POWER: dict[Lang, tuple[str, str, str]] = {
    "nl": ("bij een laadvermogen van {low} tot {high} kW", "bij een laadvermogen van {low} kW of meer",
           "bij een laadvermogen onder {high} kW"),
    "en": ("when charging at {low} to {high} kW", "when charging at {low} kW or more",
           "when charging at less than {high} kW"),
}  # fmt: skip
_CURRENT: dict[Lang, tuple[str, str, str]] = {
    "nl": ("bij een laadstroom van {low} tot {high} A", "bij een laadstroom van {low} A of meer",
           "bij een laadstroom onder {high} A"),
    "en": ("when charging at {low} to {high} A", "when charging at {low} A or more",
           "when charging at less than {high} A"),
}  # fmt: skip
_DURATION: dict[Lang, tuple[str, str, str]] = {
    "nl": ("van {low} tot {high} na de start", "na {low}", "in de eerste {high}"),
    "en": ("from {low} to {high} after the start", "after {low}", "during the first {high}"),
}


def _present(low: object | None, high: object | None, zero_is_none: bool = True) -> bool:
    if zero_is_none and low is not None and not low:
        low = None
    return low is not None or high is not None


def restriction_text(r: TariffRestrictions, lang: Lang) -> str:
    """The restrictions as a phrase ("van 09:00 tot 18:00 op maandag t/m vrijdag"); "" if none."""
    parts: list[str] = []
    if r.start_time is not None or r.end_time is not None:
        start = r.start_time.strftime("%H:%M") if r.start_time else None
        end = r.end_time.strftime("%H:%M") if r.end_time else None
        if start != end:
            if start and end:
                parts.append(f"van {start} tot {end}" if lang == "nl" else f"from {start} to {end}")
            elif start:
                parts.append(f"vanaf {start}" if lang == "nl" else f"from {start}")
            else:
                parts.append(f"tot {end}" if lang == "nl" else f"until {end}")
    if r.day_of_week and len(r.day_of_week) < 7:
        parts.append(f"{'op' if lang == 'nl' else 'on'} {days_text(r.day_of_week, lang)}")
    if r.start_date is not None:
        parts.append(f"{'vanaf' if lang == 'nl' else 'from'} {_date(r.start_date, lang)}")
    if r.end_date is not None:
        parts.append(f"{'tot' if lang == 'nl' else 'until'} {_date(r.end_date, lang)}")
    for low, high, words in (
        (r.min_kwh, r.max_kwh, _KWH),
        (r.min_power, r.max_power, _POWER),
        (r.min_current, r.max_current, _CURRENT),
    ):
        if _present(low, high):
            parts.append(
                _bounds(
                    _number(low, lang) if low else None,
                    _number(high, lang) if high is not None else None,
                    lang,
                    words,
                )
            )
    if not r.min_duration and r.max_duration == 3600:
        parts.append("in het eerste uur" if lang == "nl" else "during the first hour")
    elif _present(r.min_duration, r.max_duration):
        parts.append(
            _bounds(
                duration_text(r.min_duration, lang) if r.min_duration else None,
                duration_text(r.max_duration, lang) if r.max_duration is not None else None,
                lang,
                _DURATION,
            )
        )
    return " ".join(parts)


def _conditions(r: TariffRestrictions) -> dict[str, object]:
    """The set restrictions as JSON-friendly values (times "HH:MM", days by name)."""
    out: dict[str, object] = {}
    for name in ("start_time", "end_time"):
        value = getattr(r, name)
        if value is not None:
            out[name] = value.strftime("%H:%M")
    for name in ("start_date", "end_date"):
        value = getattr(r, name)
        if value is not None:
            out[name] = value.isoformat()
    for name in ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power"):
        value = getattr(r, name)
        if value is not None:
            out[name] = value
    for name in ("min_duration", "max_duration"):
        value = getattr(r, name)
        if value is not None:
            out[name] = value
    if r.day_of_week:
        out["day_of_week"] = sorted((d.value for d in r.day_of_week), key=lambda d: DayOfWeek(d).iso_index)
    return out


# --- the summary --------------------------------------------------------------------------------


def _component(c: PriceComponent) -> ComponentPrice:
    return ComponentPrice(
        kind=_KIND[c.type],
        unit=_UNIT[c.type],
        price_excl_vat=c.price,
        price_incl_vat=incl_vat(c.price, c.vat),
        vat_percent=c.vat,
        step_size=c.step_size,
        dimension=c.type,
    )


def summarize(tariff: Tariff, parking_grace: timedelta = timedelta(0)) -> PriceSummary:
    """The tariff's prices and restrictions in plain terms, elements in the tariff's order."""
    elements = tuple(
        ElementSummary(
            prices=tuple(_component(c) for c in element.price_components),
            conditions=_conditions(element.restrictions),
            when={lang: restriction_text(element.restrictions, lang) for lang in LANGUAGES},
            reservation=None
            if element.restrictions.reservation is None
            else element.restrictions.reservation.value,
        )
        for element in tariff.elements
    )
    free = all(p.price_excl_vat == 0 for e in elements for p in e.prices) and (
        tariff.min_price is None or tariff.min_price.excl_vat == 0
    )
    return PriceSummary(
        currency=tariff.currency,
        elements=elements,
        min_price=tariff.min_price,
        max_price=tariff.max_price,
        parking_grace_minutes=int(parking_grace.total_seconds() // 60),
        free=free,
    )


# --- sentences ----------------------------------------------------------------------------------

_PER: dict[Lang, dict[DimensionType, str]] = {
    "nl": {
        DimensionType.ENERGY: "per kWh",
        DimensionType.TIME: "per uur",
        DimensionType.PARKING_TIME: "per uur",
        DimensionType.FLAT: "per laadsessie",
    },
    "en": {
        DimensionType.ENERGY: "per kWh",
        DimensionType.TIME: "per hour",
        DimensionType.PARKING_TIME: "per hour",
        DimensionType.FLAT: "per session",
    },
}


def _step_note(p: ComponentPrice, lang: Lang) -> str:
    """How a price is billed when its step is coarse enough to matter to a driver."""
    if p.dimension in (DimensionType.TIME, DimensionType.PARKING_TIME) and p.step_size >= 300:
        block = duration_text(p.step_size, lang)
        return f" (afgerekend per {block})" if lang == "nl" else f" (billed per {block})"
    if p.dimension is DimensionType.ENERGY and p.step_size >= 100:
        block = _number(Decimal(p.step_size) / 1000, lang)
        return f" (afgerekend per {block} kWh)" if lang == "nl" else f" (billed per {block} kWh)"
    return ""


def component_price_text(kind: str, value: Decimal, currency: str, lang: Lang) -> str:
    """`value` (a price of `kind`, see `ComponentPrice`, incl. or excl. VAT) as people read it
    (`stekker.domain.money`): a start fee is billed as a line of its own, so in whole cents as
    billed; a price per kWh or per hour exactly, as it is multiplied before the line is rounded."""
    if kind == _KIND[DimensionType.FLAT]:
        return amount_text(value, currency, lang)
    return unit_price_text(value, currency, lang)


def _price_phrase(p: ComponentPrice, currency: str, lang: Lang, once: bool = False) -> str:
    if p.price_incl_vat == 0:
        return "niets" if lang == "nl" else "nothing"
    per = _PER[lang][p.dimension]
    if once and p.dimension is DimensionType.FLAT:
        per = "eenmalig" if lang == "nl" else "once"
    return f"{component_price_text(p.kind, p.price_incl_vat, currency, lang)} {per}{_step_note(p, lang)}"


def _alternatives(
    summary: PriceSummary, dimensions: tuple[DimensionType, ...], lang: Lang
) -> list[tuple[str, bool]]:
    """Phrases of the non-reservation prices of `dimensions` in element order, each with whether
    it always applies (then later ones of the same dimension never do: OCPI takes the first)."""
    phrases: list[tuple[str, bool]] = []
    settled: set[DimensionType] = set()
    for element in summary.elements:
        if element.reservation is not None:
            continue
        for p in element.prices:
            if p.dimension not in dimensions or p.dimension in settled:
                continue
            when = element.when[lang]
            phrase = _price_phrase(p, summary.currency, lang)
            phrases.append((f"{phrase} {when}" if when else phrase, not when))
            if not when:
                settled.add(p.dimension)
    return phrases


def _join_alternatives(phrases: list[tuple[str, bool]], lang: Lang, say_otherwise_free: bool = False) -> str:
    """Alternatives in precedence order. `say_otherwise_free` adds that nothing is charged when
    none applies (worth saying for parking; for charging the restrictions usually cover all)."""
    texts = [text for text, _always in phrases]
    if len(phrases) > 1 and phrases[-1][1]:  # a final unrestricted price is the fallback
        texts[-1] = f"{'anders' if lang == 'nl' else 'otherwise'} {texts[-1]}"
    if say_otherwise_free and not any(always for _t, always in phrases):
        texts.append("anders niets" if lang == "nl" else "otherwise nothing")
    return "; ".join(texts)


def _charging_sentence(summary: PriceSummary, lang: Lang) -> str:
    running = _alternatives(summary, (DimensionType.ENERGY, DimensionType.TIME), lang)
    flat = _alternatives(summary, (DimensionType.FLAT,), lang)
    flat = [(text, always) for text, always in flat if not text.startswith(("niets", "nothing"))]
    if not running and not flat:
        return "Laden is gratis." if lang == "nl" else "Charging is free."
    lead = "Laden kost " if lang == "nl" else "Charging costs "
    body = _join_alternatives(running, lang) if running else ""
    if flat:
        extra = _join_alternatives(flat, lang)
        body = f"{body}, plus {extra}" if body else extra
    return f"{lead}{body}."


def _parking_sentence(summary: PriceSummary, lang: Lang) -> str:
    parking = _alternatives(summary, (DimensionType.PARKING_TIME,), lang)
    if not parking or all(text.startswith(("niets", "nothing")) for text, _a in parking):
        return ""
    grace = summary.parking_grace_minutes
    lead = "Parkeren na het laden kost " if lang == "nl" else "Parking after charging costs "
    body = _join_alternatives(parking, lang, say_otherwise_free=True)
    if not grace:
        return f"{lead}{body}."
    free = duration_text(grace * 60, lang)
    if len(parking) == 1 and parking[0][1]:  # one simple price: say it in one go
        tail = f"de eerste {free} gratis" if lang == "nl" else f"the first {free} free"
        return f"{lead}{body}, {tail}."
    if lang == "nl":
        return f"{lead}{body}. De eerste {free} na het laden zijn gratis."
    return f"{lead}{body}. The first {free} after charging are free."


def _reservation_sentences(summary: PriceSummary, lang: Lang) -> list[str]:
    sentences: list[str] = []
    for element in summary.elements:
        if element.reservation is None:
            continue
        prices = [
            _price_phrase(p, summary.currency, lang, once=True) for p in element.prices if p.price_incl_vat
        ]
        if not prices:
            continue
        if element.reservation == "RESERVATION_EXPIRES":
            lead = "Een verlopen reservering kost " if lang == "nl" else "An expired reservation costs "
        else:
            lead = "Reserveren kost " if lang == "nl" else "A reservation costs "
        sentences.append(f"{lead}{' plus '.join(prices)}.")
    return sentences


def _bound(price: Price) -> Decimal:
    return price.incl_vat if price.incl_vat is not None else price.excl_vat


def _limits_sentence(summary: PriceSummary, lang: Lang) -> str:
    low = summary.min_price if summary.min_price is not None and summary.min_price.excl_vat > 0 else None
    high = summary.max_price
    if low is None and high is None:
        return ""
    c = summary.currency
    words = {
        "nl": ("Een laadsessie kost", "minimaal", "maximaal", "en"),
        "en": ("A session costs", "at least", "at most", "and"),
    }[lang]
    bounds: list[str] = []
    if low is not None:
        # as billed: a minimum rounds up to the cent, a maximum down (stekker.domain.billing)
        bounds.append(f"{words[1]} {amount_text(_bound(low), c, lang, Rounding.MINIMUM)}")
    if high is not None:
        bounds.append(f"{words[2]} {amount_text(_bound(high), c, lang, Rounding.MAXIMUM)}")
    return f"{words[0]} {f' {words[3]} '.join(bounds)}."


def describe(summary: PriceSummary, lang: Lang) -> str:
    """The summary as a few sentences a driver reads on a display or an app, prices incl. VAT."""
    if summary.free:
        return "Laden en parkeren zijn gratis." if lang == "nl" else "Charging and parking are free."
    sentences = [
        _charging_sentence(summary, lang),
        _parking_sentence(summary, lang),
        _limits_sentence(summary, lang),
        *_reservation_sentences(summary, lang),
        "Prijzen zijn inclusief btw." if lang == "nl" else "Prices include VAT.",
    ]
    return " ".join(s for s in sentences if s)


def price_texts(tariff: Tariff, parking_grace: timedelta = timedelta(0)) -> dict[str, str]:
    """The tariff in words per language ("nl", "en")."""
    summary = summarize(tariff, parking_grace)
    return {lang: describe(summary, lang) for lang in LANGUAGES}


UNKNOWN_PRICE: dict[str, str] = {
    "nl": "Prijs onbekend, vraag de helpdesk.",
    "en": "Price unknown, please ask the helpdesk.",
}
