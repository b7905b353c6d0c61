"""OCPP 1.6J charge point simulator.

`SimulatedStation` models one charge point (client side of OCPP 1.6J over WebSocket) with its connectors,
energy meters, configuration keys, local authorization list and charging sessions. `run_fleet` runs many of
them against a central system, reconnecting on failure and generating charging sessions, for demos, tests
and load generation.
"""

from stekker.sim.fleet import run_fleet
from stekker.sim.station import SimulatedStation

__all__ = ["SimulatedStation", "run_fleet"]
