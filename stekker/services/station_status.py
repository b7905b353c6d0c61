"""The derived status of stations as stored (stekker.domain.station_status applied to the
database): the station's own report, its connectors' statuses and the chargingState of the
2.0.1 transactions running on its EVSEs. Two queries for any number of stations, so a list
page, the map and the API read the same words the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models import ChargingSession, ChargingStation, Connector, Evse, SessionStatus
from stekker.domain.station_status import StationStatus, evse_status, station_status


@dataclass(frozen=True, slots=True)
class DerivedStatus:
    """A station's one status and its EVSEs' (evse_number → status)."""

    status: StationStatus
    evses: dict[int, StationStatus] = field(default_factory=dict)


def derive(
    online: bool,
    reported: str | None,
    connectors: Iterable[tuple[int, str | None]],
    charging_states: Mapping[int, str | None],
) -> DerivedStatus:
    """The status from what is loaded: (evse_number, connector status) pairs and the running
    transaction's chargingState per EVSE number."""
    per_evse: dict[int, list[str | None]] = {}
    for number, status in connectors:
        per_evse.setdefault(number, []).append(status)
    for number in charging_states:
        per_evse.setdefault(number, [])
    evses = {
        number: evse_status(statuses, charging_states.get(number))
        for number, statuses in sorted(per_evse.items())
    }
    return DerivedStatus(station_status(online, evses.values(), reported), evses)


def of_station(
    station: ChargingStation, online: bool, charging_states: Mapping[int, str | None]
) -> DerivedStatus:
    """The status of a station loaded with its EVSEs and connectors."""
    pairs = [(e.evse_number, c.status) for e in station.evses for c in e.connectors]
    pairs += [(e.evse_number, None) for e in station.evses if not e.connectors]
    return derive(online, station.status, pairs, charging_states)


#: station ids per query: well under the bind-parameter limits of SQLite and asyncpg, so a
#: map of the whole fleet (tens of thousands of stations) reads in a few round trips
CHUNK = 2000


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]


async def charging_states(db: AsyncSession, station_ids: Sequence[str]) -> dict[str, dict[int, str | None]]:
    """Station id → EVSE number → chargingState of its running session (None for 1.6, whose
    connector status already says it). The latest start wins when a stale one lingers."""
    found: dict[str, dict[int, str | None]] = {s: {} for s in station_ids}
    for ids in _chunks(station_ids):
        rows = await db.execute(
            select(ChargingSession.station_id, ChargingSession.evse_number, ChargingSession.charging_state)
            .where(ChargingSession.station_id.in_(ids), ChargingSession.status == SessionStatus.ACTIVE)
            .order_by(ChargingSession.start_time, ChargingSession.id)
        )
        for station_id, evse_number, state in rows:
            found[station_id][evse_number] = state
    return found


async def statuses(
    db: AsyncSession, station_ids: Sequence[str], online: Mapping[str, bool] | None = None
) -> dict[str, DerivedStatus]:
    """Station id → derived status. `online` overrides the stored connection state (the API
    asks the gateway); without it the stored `online` column counts."""
    stations: dict[str, tuple[bool, str | None]] = {}
    connectors: dict[str, list[tuple[int, str | None]]] = {}
    for ids in _chunks(station_ids):
        found = await db.execute(
            select(ChargingStation.id, ChargingStation.online, ChargingStation.status).where(
                ChargingStation.id.in_(ids)
            )
        )
        for sid, on, reported in found:
            stations[sid] = (bool(on), reported)
            connectors[sid] = []
        rows = await db.execute(
            select(Evse.station_id, Evse.evse_number, Connector.status)
            .outerjoin(Connector, Connector.evse_id == Evse.id)
            .where(Evse.station_id.in_(ids))
        )
        for sid, number, status in rows:
            connectors[sid].append((number, status))
    running = await charging_states(db, list(stations))
    return {
        sid: derive(
            online.get(sid, on) if online is not None else on, reported, connectors[sid], running.get(sid, {})
        )
        for sid, (on, reported) in stations.items()
    }
