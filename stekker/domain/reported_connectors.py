"""What a station's own report says about its connectors, in OCPI's words. Pure rules, no I/O.

A station that registers itself (STEKKER_UNKNOWN_STATIONS=accept) gets connectors we have to
assume (Type 2 socket, AC 3-phase, 230 V, 32 A) until the station or an operator says better.
A 2.0.1 station says better in its base report: `Connector.ConnectorType` per connector (OCPP
2.0.1 Part 2, ConnectorEnumType), `EVSE.Power` with its maxLimit in W and `SupplyPhases`. A 1.6
station only tells how many connectors it has (`NumberOfConnectors`, StatusNotification
connectorIds); their type stays assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# OCPP 2.0.1 ConnectorEnumType -> OCPI (standard, format, power type); None: AC, phases to read.
# c... is a cable, s... a socket.
_TYPES: dict[str, tuple[str, str, str | None]] = {
    "cCCS1": ("IEC_62196_T1_COMBO", "CABLE", "DC"),
    "cCCS2": ("IEC_62196_T2_COMBO", "CABLE", "DC"),
    "cG105": ("CHADEMO", "CABLE", "DC"),
    "cChaoJi": ("CHAOJI", "CABLE", "DC"),
    "cTesla": ("TESLA_S", "CABLE", "DC"),
    "cType1": ("IEC_62196_T1", "CABLE", "AC_1_PHASE"),
    "cType2": ("IEC_62196_T2", "CABLE", None),
    "sType2": ("IEC_62196_T2", "SOCKET", None),
    "sType3": ("IEC_62196_T3C", "SOCKET", None),
    "s309-1P-16A": ("IEC_60309_2_single_16", "SOCKET", "AC_1_PHASE"),
    "s309-3P-16A": ("IEC_60309_2_three_16", "SOCKET", "AC_3_PHASE"),
    "s309-3P-32A": ("IEC_60309_2_three_32", "SOCKET", "AC_3_PHASE"),
    "sCEE-7-7": ("DOMESTIC_F", "SOCKET", "AC_1_PHASE"),
    "sBS1361": ("DOMESTIC_G", "SOCKET", "AC_1_PHASE"),
}

AC_VOLTAGE = 230  # phase to neutral, as OCPI counts AC voltage
# A DC report carries power, not voltage: 500 V is the rating of the common 50 kW CCS/CHAdeMO
# units, so 50 kW reads 500 V 100 A; the power itself is stored as reported.
DC_VOLTAGE = 500


@dataclass(frozen=True, slots=True)
class ReportedConnector:
    """A connector's physical data as derived from a report, ready for the `connectors` row."""

    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None


def reported_connector(
    connector_type: str, power_w: float | None, supply_phases: int | None
) -> ReportedConnector | None:
    """The connector a station describes, or None for a type we cannot name (Unknown,
    Undetermined, Other..., wireless): then it stays assumed."""
    known = _TYPES.get(connector_type)
    if known is None:
        return None
    standard, form, power_type = known
    if power_type is None:
        power_type = "AC_1_PHASE" if supply_phases == 1 else "AC_3_PHASE"
    power = int(power_w) if power_w is not None and power_w > 0 else None
    if power_type == "DC":
        voltage, lines = DC_VOLTAGE, 1
    else:
        voltage, lines = AC_VOLTAGE, (3 if power_type == "AC_3_PHASE" else 1)
    if power is None:
        amperage = 125 if power_type == "DC" else (16 if standard.endswith("_16") else 32)
    else:
        amperage = max(1, math.ceil(power / (voltage * lines)))
    return ReportedConnector(standard, form, power_type, voltage, amperage, power)
