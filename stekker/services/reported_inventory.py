"""Take a station's connectors from what it reports, instead of our placeholder.

Called inside the transaction that stores the last part of a configuration report, when every
part is in `station_variables`. Only connectors still `assumed` (or not there yet) are filled
in: what an operator entered, or a report already gave, stays.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import StationVariable
from stekker.domain.reported_connectors import reported_connector
from stekker.services.context import ServiceContext
from stekker.services.stations import ensure_connector, ensure_evse

log = logging.getLogger(__name__)

#: The most EVSEs or connectors a report may create, so a station cannot fill the table.
MAX_REPORTED = 64

_INVENTORY = ("EVSE", "Connector", "OCPP16")
_READ = ("Power", "SupplyPhases", "ConnectorType", "NumberOfConnectors")


def _integer(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except ValueError:
        return None


async def apply_reported_inventory(db: AsyncSession, ctx: ServiceContext, station_id: str) -> int:
    """Create or fill in the EVSEs and connectors the station's report describes; returns how
    many connectors were taken from the report."""
    rows = (
        (
            await db.execute(
                select(StationVariable).where(
                    StationVariable.station_id == station_id,
                    StationVariable.component.in_(_INVENTORY),
                    StationVariable.variable.in_(_READ),
                    StationVariable.attribute_type == "Actual",
                )
            )
        )
        .scalars()
        .all()
    )
    power: dict[int, Decimal] = {}
    phases: dict[tuple[int, int], int] = {}
    types: dict[tuple[int, int], str] = {}
    count_16: int | None = None
    for row in rows:
        if row.component == "OCPP16" and row.variable == "NumberOfConnectors":
            count_16 = _integer(row.value)
        elif row.component == "EVSE" and row.variable == "Power" and row.max_limit is not None:
            power[row.evse_number] = row.max_limit
        elif row.variable == "SupplyPhases" and (n := _integer(row.value)) is not None:
            phases[(row.evse_number, row.connector_number)] = n
        elif row.component == "Connector" and row.variable == "ConnectorType" and row.value:
            types[(row.evse_number, row.connector_number)] = row.value
    if count_16 is not None and 0 < count_16 <= MAX_REPORTED:
        # 1.6 tells only how many: connector n is EVSE n, its type stays assumed
        for number in range(1, count_16 + 1):
            await ensure_connector(db, await ensure_evse(db, ctx, station_id, number), 1)
    taken = 0
    for evse_number, connector_number in sorted(types)[:MAX_REPORTED]:
        if evse_number < 1 or connector_number < 1:
            continue
        key = (evse_number, connector_number)
        supply = phases.get(key, phases.get((evse_number, 0)))
        watts = power.get(evse_number)
        found = reported_connector(types[key], None if watts is None else float(watts), supply)
        if found is None:
            continue
        connector = await ensure_connector(
            db, await ensure_evse(db, ctx, station_id, evse_number), connector_number
        )
        if not connector.assumed:
            continue
        connector.standard = found.standard
        connector.format = found.format
        connector.power_type = found.power_type
        connector.max_voltage = found.max_voltage
        connector.max_amperage = found.max_amperage
        connector.max_electric_power = found.max_electric_power
        connector.assumed = False
        taken += 1
    return taken
