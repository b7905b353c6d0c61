"""Which stations an operator means: explicit ids, a location, a group, or a filter on what
the stations reported. Bulk jobs, drift reports and helpdesk lists all resolve it here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingStation, StationGroup, StationGroupMember
from stekker.services.ports import CommandPort


class UnknownGroup(LookupError):
    """The selection names a group that does not exist."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Every criterion given must hold (AND); an empty selection means every active station.
    Retired stations are never selected."""

    station_ids: tuple[str, ...] = ()
    location_id: int | None = None
    group: str | None = None
    vendor: str | None = None
    model: str | None = None
    firmware_version: str | None = None
    ocpp_version: str | None = None
    online: bool | None = None


async def resolve(db: AsyncSession, selection: Selection, commands: CommandPort | None) -> list[str]:
    """The ids of the selected stations, sorted."""
    query = select(ChargingStation.id).where(ChargingStation.retired_at.is_(None))
    if selection.station_ids:
        query = query.where(ChargingStation.id.in_(selection.station_ids))
    if selection.location_id is not None:
        query = query.where(ChargingStation.location_id == selection.location_id)
    if selection.group is not None:
        group_id = await db.scalar(select(StationGroup.id).where(StationGroup.name == selection.group))
        if group_id is None:
            raise UnknownGroup(f"no group {selection.group!r}")
        members = select(StationGroupMember.station_id).where(StationGroupMember.group_id == group_id)
        query = query.where(ChargingStation.id.in_(members))
    for column, value in (
        (ChargingStation.vendor, selection.vendor),
        (ChargingStation.model, selection.model),
        (ChargingStation.firmware_version, selection.firmware_version),
        (ChargingStation.ocpp_version, selection.ocpp_version),
    ):
        if value is not None:
            query = query.where(column == value)
    ids = list((await db.execute(query.order_by(ChargingStation.id))).scalars())
    if selection.online is not None:
        # the live connection state is the gateway's, not the table's
        connected = set(commands.connected_stations()) if commands is not None else set()
        ids = [i for i in ids if (i in connected) == selection.online]
    return ids
