"""Pushes to roaming partners: persistent, in order per object, retried with backoff, dead
letters visible and retryable. A partner's OCPI server over loopback receives them."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stekker.app import Stekker
from stekker.services import ocpi_outbox, ocpi_partners
from stekker.services.ocpi_outbox import OutboxWorker
from tests.test_ocpi_credentials import serving
from tests.test_tariff_workflow import Clock


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"ocpi_push_max_attempts": 3}


class Receiver:
    """A partner's sessions receiver: records what arrives; `down` makes it fail."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, Any, dict[str, str]]] = []
        self.down = False
        self.port = 0

    def app(self) -> Starlette:
        async def sessions(request: Request) -> JSONResponse:
            if self.down:
                return JSONResponse({"status_code": 3000, "status_message": "maintenance"}, 503)
            body = await request.json()
            self.received.append((request.method, request.url.path, body, dict(request.headers)))
            return JSONResponse({"status_code": 1000, "timestamp": "2026-11-24T00:00:00Z"})

        return Starlette(routes=[Route("/sessions/{rest:path}", sessions, methods=["PUT", "PATCH", "POST"])])


async def partner_with(server: Stekker, url: str) -> int:
    return await ocpi_partners.add_registered_partner(
        server.ctx,
        name="ABC",
        country_code="NL",
        party_id="ABC",
        token="their-C",
        endpoints={"sessions:RECEIVER": url},
        outgoing_token="their-B",
    )


async def push(server: Stekker, key: str, method: str, n: int) -> None:
    queued = await ocpi_outbox.enqueue_for_partners(
        server.ctx, module="sessions", role="RECEIVER", kind="sessions", key=key, method=method,
        path=f"/NL/STK/{key}", body={"n": n},
    )  # fmt: skip
    assert queued == 1


async def test_pushes_arrive_in_order_per_object_and_survive_a_partner_outage(
    server: Stekker, api: httpx.AsyncClient
) -> None:
    await server.ocpi_outbox.stop()  # this test drives the rounds itself
    clock = Clock(server.ctx.now())
    server.ctx.clock = clock
    receiver = Receiver()
    async with serving(receiver):  # type: ignore[arg-type]
        await partner_with(server, f"http://127.0.0.1:{receiver.port}/sessions")
        worker = OutboxWorker(server.ctx, httpx.AsyncClient(timeout=5))
        for n, (key, method) in enumerate([("s1", "PUT"), ("s1", "PATCH"), ("s2", "PUT"), ("s1", "PATCH")]):
            await push(server, key, method, n)

        assert await worker.deliver_due() == 2  # s1's first and s2's first; s1's next wait for it
        assert await worker.deliver_due() == 1
        assert await worker.deliver_due() == 1
        assert await worker.deliver_due() == 0
        assert [(m, p, b["n"]) for m, p, b, _ in receiver.received] == [
            ("PUT", "/sessions/NL/STK/s1", 0),
            ("PUT", "/sessions/NL/STK/s2", 2),
            ("PATCH", "/sessions/NL/STK/s1", 1),
            ("PATCH", "/sessions/NL/STK/s1", 3),
        ]
        headers = receiver.received[0][3]
        assert headers["authorization"] == "Token " + base64.b64encode(b"their-B").decode()
        assert (headers["ocpi-to-country-code"], headers["ocpi-to-party-id"]) == ("NL", "ABC")
        assert (headers["ocpi-from-country-code"], headers["ocpi-from-party-id"]) == ("NL", "STK")
        assert headers["x-request-id"]

        # the partner goes down: the push waits, backing off, and the station side never notices
        receiver.down = True
        receiver.received.clear()
        await push(server, "s3", "PUT", 10)
        assert await worker.deliver_due() == 0
        [item] = await ocpi_outbox.list_items(server.ctx, status="pending", partner_id=None, limit=10)
        assert item["attempts"] == 1 and "HTTP 503" in item["last_error"]
        assert await worker.deliver_due() == 0  # not due again for 5 s
        clock.now += timedelta(seconds=5)
        assert await worker.deliver_due() == 0
        clock.now += timedelta(seconds=10)
        assert await worker.deliver_due() == 0  # third attempt: out of attempts
        dead = (await api.get("/api/ocpi/outbox", params={"status": "dead"})).json()
        assert [(d["key"], d["attempts"]) for d in dead] == [("s3", 3)]
        assert "maintenance" in dead[0]["last_error"]

        # back up; the operator retries the dead letter
        receiver.down = False
        retried = await api.post(f"/api/ocpi/outbox/{dead[0]['id']}/retry")
        assert retried.status_code == 200 and retried.json()["status"] == "pending"
        assert await worker.deliver_due() == 1
        assert [b["n"] for _, _, b, _ in receiver.received] == [10]
        again = await api.post(f"/api/ocpi/outbox/{dead[0]['id']}/retry")
        assert again.status_code == 409
        await worker.stop()


async def test_pushes_to_a_partner_that_left_are_dead_at_once(
    server: Stekker, api: httpx.AsyncClient
) -> None:
    await server.ocpi_outbox.stop()
    partner_id = await partner_with(server, "http://127.0.0.1:9/sessions")
    await push(server, "s9", "PUT", 1)
    await ocpi_partners.unregister(server.ctx, partner_id, "test")
    worker = OutboxWorker(server.ctx, httpx.AsyncClient(timeout=1))
    assert await worker.deliver_due() == 0
    [dead] = await ocpi_outbox.list_items(server.ctx, status="dead", partner_id=partner_id, limit=10)
    assert "unregistered" in dead["last_error"] and dead["attempts"] == 1
    await worker.stop()


async def test_only_partners_with_the_endpoint_and_party_get_a_push(server: Stekker) -> None:
    await partner_with(server, "http://127.0.0.1:9/sessions")
    await ocpi_partners.add_registered_partner(
        server.ctx, name="No sessions", country_code="DE", party_id="XYZ", token="other", endpoints={}
    )
    assert await ocpi_outbox.enqueue_for_partners(
        server.ctx, module="sessions", role="RECEIVER", kind="sessions", key="k", method="PUT", path="/x",
        body={}, parties={("DE", "XYZ")},
    ) == 0  # fmt: skip
    assert await ocpi_outbox.enqueue_for_partners(
        server.ctx, module="sessions", role="RECEIVER", kind="sessions", key="k", method="PUT", path="/x",
        body={}, parties={("NL", "ABC")},
    ) == 1  # fmt: skip


async def test_outbox_api_refuses_bad_input(api: httpx.AsyncClient) -> None:
    for params in ({"status": "lost"}, {"limit": 0}, {"limit": 5000}, {"partner_id": -1}):
        assert (await api.get("/api/ocpi/outbox", params=params)).status_code == 422, params
    assert (await api.post("/api/ocpi/outbox/999/retry")).status_code == 404
    assert (await api.post("/api/ocpi/outbox/0/retry")).status_code == 422


async def test_a_cdr_is_retried_for_a_week_not_hours(server: Stekker) -> None:
    await server.ocpi_outbox.stop()
    clock = Clock(server.ctx.now())
    server.ctx.clock = clock
    partner_id = await ocpi_partners.add_registered_partner(
        server.ctx, name="Down", country_code="NL", party_id="DWN", token="down-C",
        endpoints={"cdrs:RECEIVER": "http://127.0.0.1:9/cdrs"}, outgoing_token="down-B",
    )  # fmt: skip
    queued = await ocpi_outbox.enqueue_for_partners(
        server.ctx, module="cdrs", role="RECEIVER", kind="cdrs", key="session:1", method="POST", path="",
        body={"id": "CDR-1-1"},
    )  # fmt: skip
    assert queued == 1
    worker = OutboxWorker(server.ctx, httpx.AsyncClient(timeout=1))
    for _ in range(5):  # beyond this test's general limit of 3 attempts
        await worker.deliver_due()
        clock.now += ocpi_outbox.LONGEST_RETRY
    [item] = await ocpi_outbox.list_items(server.ctx, status="pending", partner_id=partner_id, limit=5)
    assert item["attempts"] == 5 and item["kind"] == "cdrs"
    await worker.stop()
