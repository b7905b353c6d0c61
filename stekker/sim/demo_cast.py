"""Who holds which card in `stekker demo`, and what the simulation leaves to the person trying it.

The README's quick start charges with a card and on an EVSE of its own: `DEMO-0002` on `SIM002`
EVSE 1. If a simulated driver could hold that card, or be charging there, the reader's remote
start would be refused (a card in two sessions at once) or rejected (the EVSE is busy), some of
the time. So the reader's cards are never given to a simulated driver, that EVSE is never driven,
and every simulated driver has a card of its own (one per connector), which also keeps the
simulation itself from making sessions the central system must refuse.
"""

from __future__ import annotations

#: Connectors (2.0.1: EVSEs) per simulated station in the demo.
DEMO_CONNECTORS = 2

#: Cards for the person trying the demo; no simulated driver ever holds one.
READER_CARDS: tuple[str, ...] = ("DEMO-0001", "DEMO-0002", "DEMO-0003")

#: (station number, connector) the simulation leaves free: the README's remote start uses it.
READER_CONNECTOR = (2, 1)


def driver_card(station_number: int, connector: int) -> str:
    """The card of the simulated driver at a station's connector, e.g. DRIVER-001-1 at SIM001's first."""
    return f"DRIVER-{station_number:03d}-{connector}"


def driver_cards(stations: int, connectors: int = DEMO_CONNECTORS) -> list[str]:
    """Every simulated driver's card, in the order `stekker.sim.fleet.driver_cards` deals them
    (station by station, connector by connector), so each driver gets the card named after its seat."""
    return [driver_card(i, c) for i in range(1, stations + 1) for c in range(1, connectors + 1)]


def idle_connectors(stations: int) -> list[tuple[int, int]]:
    """The connectors no simulated driver uses: the reader's, when the demo has that station."""
    return [READER_CONNECTOR] if stations >= READER_CONNECTOR[0] else []
