"""Charge point simulator, OCPP 1.6J and 2.0.1.

`SimulatedStation` models one OCPP 1.6J charge point and `SimulatedStation201` one OCPP 2.0.1 charging
station (client side, over WebSocket) with their outlets, energy meters, configuration (1.6 keys, 2.0.1
device model), local authorization and charging sessions. `run_fleet` runs many of them (one version or a
mix) against a central system, reconnecting on failure and generating charging sessions, for demos, tests
and load generation.
"""

from stekker.sim.fleet import run_fleet
from stekker.sim.station import SimulatedStation
from stekker.sim.station201 import SimulatedStation201

__all__ = ["SimulatedStation", "SimulatedStation201", "run_fleet"]
