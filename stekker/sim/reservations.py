"""Reservations (ReserveNow / CancelReservation) on a simulated station's outlets, for every OCPP version:
which outlet may take one, moving a reservation id from one outlet to another, and expiring them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from stekker.sim.hardware import Connector, Reservation
from stekker.sim.timeutil import utc_now

__all__ = ["ReservationBook"]

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


class ReservationBook:
    """The reservations held on a station's outlets, each with a timer that expires it.

    ``spawn`` starts a station-owned task; ``on_expired`` tells the station a reservation ran out (it
    updates statuses and, in 2.0.1, sends ReservationStatusUpdate)."""

    def __init__(
        self, spawn: Spawn, on_expired: Callable[[Connector[Any], Reservation], Awaitable[None]]
    ) -> None:
        self._spawn = spawn
        self._on_expired = on_expired
        self._timers: dict[int, asyncio.Task[Any]] = {}

    def timers(self) -> list[asyncio.Task[Any]]:
        return list(self._timers.values())

    @staticmethod
    def refusal(c: Connector[Any], reservation_id: int, station_inoperative: bool) -> str | None:
        """The ReserveNow status refusing a reservation on ``c`` (Faulted, Unavailable, Occupied), if any."""
        if c.status == "Faulted":
            return "Faulted"
        if c.inoperative or station_inoperative or c.status == "Unavailable":
            return "Unavailable"
        same = c.reservation is not None and c.reservation.reservation_id == reservation_id
        if not same and (c.reservation is not None or not c.is_free_for()):
            return "Occupied"
        return None

    def place(
        self, outlets: Iterable[Connector[Any]], c: Connector[Any], reservation: Reservation
    ) -> list[Connector[Any]]:
        """Hold ``reservation`` on ``c``; the same reservation id elsewhere is moved here. Returns the
        outlets it was taken from."""
        moved = [
            o
            for o in outlets
            if o is not c
            and o.reservation is not None
            and o.reservation.reservation_id == reservation.reservation_id
        ]
        for other in [*moved, c]:
            self.drop(other)
        c.reservation = reservation
        self._timers[reservation.reservation_id] = self._spawn(
            self._expire(c, reservation), f"reservation{reservation.reservation_id}"
        )
        return moved

    def cancel(self, outlets: Iterable[Connector[Any]], reservation_id: int) -> Connector[Any] | None:
        """Drop the reservation ``reservation_id``; returns the outlet that held it, if any."""
        for c in outlets:
            if c.reservation is not None and c.reservation.reservation_id == reservation_id:
                self.drop(c)
                return c
        return None

    def drop(self, c: Connector[Any]) -> None:
        """Forget the reservation on ``c`` (used, cancelled or replaced)."""
        if c.reservation is not None:
            timer = self._timers.pop(c.reservation.reservation_id, None)
            if timer is not None and timer is not asyncio.current_task():
                timer.cancel()
        c.reservation = None

    async def _expire(self, c: Connector[Any], reservation: Reservation) -> None:
        await asyncio.sleep(max(0.0, (reservation.expiry - utc_now()).total_seconds()))
        if c.reservation is reservation:
            self._timers.pop(reservation.reservation_id, None)
            c.reservation = None
            await self._on_expired(c, reservation)
