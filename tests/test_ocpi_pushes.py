"""Pushes of locations, EVSE status and tariffs to a partner's OCPI receivers over loopback:
a status within seconds of the station's StatusNotification; a tariff when the municipality's
approved version takes effect (and its DELETE when retired)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from ocpp.v16 import call
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stekker.app import Stekker
from stekker.bus import Event
from stekker.services import ocpi_partners
from tests.peers import ocpp_station
from tests.test_ocpi_credentials import serving
from tests.test_ocpi_locations import TWO_EVSES, add_location, add_station, add_tariff


class Receivers:
    """A partner's locations and tariffs receivers: records every push."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, Any]] = []
        self.port = 0

    def app(self) -> Starlette:
        async def take(request: Request) -> JSONResponse:
            body = await request.json() if request.method != "DELETE" else None
            self.received.append((request.method, request.url.path, body))
            return JSONResponse({"status_code": 1000, "timestamp": "2026-11-24T00:00:00Z"})

        methods = ["PUT", "PATCH", "DELETE"]
        return Starlette(routes=[Route("/{rest:path}", take, methods=methods)])

    async def wait_for(
        self, method: str, path: str, seconds: float = 10, where: Callable[[Any], bool] = lambda _: True
    ) -> Any:
        for _ in range(int(seconds / 0.05)):
            for got_method, got_path, body in self.received:
                if (got_method, got_path) == (method, path) and where(body):
                    return body
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {method} {path} among {[(m, p) for m, p, _ in self.received]}")


async def test_status_location_and_tariff_pushes(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    receivers = Receivers()
    async with serving(receivers):  # type: ignore[arg-type]
        base = f"http://127.0.0.1:{receivers.port}"
        await ocpi_partners.add_registered_partner(
            server.ctx, name="NAP", country_code="NL", party_id="NDW", role="NAP", token="nap-token",
            endpoints={"locations:RECEIVER": f"{base}/locations", "tariffs:RECEIVER": f"{base}/tariffs"},
            outgoing_token="nap-B",
        )  # fmt: skip
        await add_tariff(server, "STD")
        location_id = await add_location(api, "Stationsplein")
        await add_station(api, "PUSH1", location_id, TWO_EVSES)
        # the location, as soon as the station is registered there
        # (one PUT per change: the station, then each EVSE added to it)
        location = await receivers.wait_for(
            "PUT", f"/locations/NL/STK/{location_id}", where=lambda body: len(body["evses"]) == 2
        )
        assert [e["uid"] for e in location["evses"]] == ["NL*STK*E0001*1", "NL*STK*E0001*2"]
        assert location["evses"][0]["connectors"][0]["tariff_ids"] == ["STD"]
        for field in ("opening_times", "energy_mix"):  # the national access point wants them
            assert field in location, field
        assert all("parking_restrictions" in e for e in location["evses"])

        async with ocpp_station(ocpp_url, "PUSH1") as cp:
            await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
            patch = await receivers.wait_for("PATCH", f"/locations/NL/STK/{location_id}/NL*STK*E0001*1")
        assert patch["status"] == "CHARGING" and patch["last_updated"].endswith("Z")

        # a tariff the municipality approved takes effect (the workflow's event): PUT to the receiver
        receivers.received.clear()
        await server.bus.publish(Event("tariff.activated", {"tariff": "STD", "version": 1}))
        pushed = await receivers.wait_for("PUT", "/tariffs/NL/STK/STD")
        assert pushed["id"] == "STD" and pushed["currency"] == "EUR" and pushed["elements"]
        await add_tariff(server, "OLD", ends=True)
        await server.bus.publish(Event("tariff.retired", {"tariff": "OLD", "version": 1}))
        assert await receivers.wait_for("DELETE", "/tariffs/NL/STK/OLD") is None
