"""Primary keys of connectors, learnt once per process, so a StatusNotification needs no lookup."""

from __future__ import annotations


class ConnectorDirectory:
    """(station id, EVSE number, connector number) → connector primary key.

    Connectors are created once and never renumbered; when a station's inventory is
    changed by an operator, `forget` drops what we knew about it.
    """

    def __init__(self) -> None:
        self._keys: dict[tuple[str, int, int], int] = {}

    def connector(self, station_id: str, evse_number: int, connector_number: int) -> int | None:
        return self._keys.get((station_id, evse_number, connector_number))

    def remember(self, station_id: str, evse_number: int, connector_number: int, pk: int) -> None:
        self._keys[(station_id, evse_number, connector_number)] = pk

    def forget(self, station_id: str) -> None:
        for key in [k for k in self._keys if k[0] == station_id]:
            del self._keys[key]
