"""Plugs as drivers know them: the names on cars and charging cables ("Type 2", "CCS",
"CHAdeMO") for OCPI's ConnectorType codes (`IEC_62196_T2`...), and a connector's power in kW.

The code stays what we store and publish (OCPI, open data); this name is for people (the
public EVSE page). Names are the same in Dutch and English except where a word is part of
it ("stopcontact" / "socket"). An unknown code is shown as it is.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Lang = Literal["nl", "en"]

_SAME_IN_BOTH: dict[str, str] = {
    "IEC_62196_T1": "Type 1",
    "IEC_62196_T1_COMBO": "CCS1",
    "IEC_62196_T2": "Type 2",
    "IEC_62196_T2_COMBO": "CCS",  # CCS2, the CCS of Europe
    "IEC_62196_T3A": "Type 3A",
    "IEC_62196_T3C": "Type 3C",
    "CHADEMO": "CHAdeMO",
    "CHAOJI": "ChaoJi",
    "GBT_AC": "GB/T AC",
    "GBT_DC": "GB/T DC",
    "TESLA_R": "Tesla Roadster",
    "TESLA_S": "Tesla",
    "NEMA_5_20": "NEMA 5-20",
    "NEMA_6_30": "NEMA 6-30",
    "NEMA_6_50": "NEMA 6-50",
    "NEMA_10_30": "NEMA 10-30",
    "NEMA_10_50": "NEMA 10-50",
    "NEMA_14_30": "NEMA 14-30",
    "NEMA_14_50": "NEMA 14-50",
}
_WORDED: dict[str, dict[Lang, str]] = {
    "DOMESTIC_F": {"nl": "Schuko-stopcontact", "en": "Schuko socket"},
    "IEC_60309_2_single_16": {"nl": "CEE-stekker blauw, 16 A", "en": "CEE plug blue, 16 A"},
    "IEC_60309_2_three_16": {"nl": "CEE-stekker rood, 16 A", "en": "CEE plug red, 16 A"},
    "IEC_60309_2_three_32": {"nl": "CEE-stekker rood, 32 A", "en": "CEE plug red, 32 A"},
    "IEC_60309_2_three_64": {"nl": "CEE-stekker rood, 63 A", "en": "CEE plug red, 63 A"},
    "PANTOGRAPH_BOTTOM_UP": {"nl": "Pantograaf (van onderen)", "en": "Pantograph (bottom up)"},
    "PANTOGRAPH_TOP_DOWN": {"nl": "Pantograaf (van boven)", "en": "Pantograph (top down)"},
}
_DOMESTIC = {"nl": "Stopcontact type {letter}", "en": "Type {letter} socket"}
_CABLE = {"nl": "{name} met vaste kabel", "en": "{name} with attached cable"}


def plug_name(standard: str, lang: Lang, connector_format: str | None = None) -> str:
    """The name people know for an OCPI ConnectorType; `connector_format` CABLE says the cable
    is attached (the driver needs none of their own), which matters for the AC plugs only."""
    if standard in _SAME_IN_BOTH:
        name = _SAME_IN_BOTH[standard]
    elif standard in _WORDED:
        name = _WORDED[standard][lang]
    elif standard.startswith("DOMESTIC_") and len(standard) == len("DOMESTIC_") + 1:
        name = _DOMESTIC[lang].format(letter=standard[-1])
    else:
        return standard
    if connector_format == "CABLE" and standard in ("IEC_62196_T1", "IEC_62196_T2"):
        return _CABLE[lang].format(name=name)
    return name


def max_power_w(power_type: str, voltage: int, amperage: int, given: int | None) -> int:
    """A connector's maximum power in W: the stored value, else volts x amperes x phases (3 for
    AC_3_PHASE, whose voltage is line to neutral; 1 for one phase and DC), as OCPI computes it."""
    if given is not None and given > 0:
        return given
    phases = 3 if power_type == "AC_3_PHASE" else 1
    return max(0, voltage) * max(0, amperage) * phases


def kilowatts(watts: int) -> Decimal:
    """W as kW for people: whole kW from 10 kW up (11, 22, 150), one decimal below (3.7, 7.4)."""
    kw = Decimal(watts) / 1000
    places = Decimal(1) if kw >= 10 else Decimal("0.1")
    return kw.quantize(places, rounding=ROUND_HALF_UP)
