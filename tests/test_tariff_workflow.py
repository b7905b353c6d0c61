"""The tariff approval workflow (requirement 158) and the maximum price (157), through the API.

The operator drafts and submits, only the municipality approves or rejects, an approved
version takes effect at its chosen time and not before, and every step is in the history.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from stekker.app import Stekker
from stekker.bus import Event
from stekker.services import tariffs
from stekker.services.tariff_lookup import resolve_tariff
from tests.test_users_roles import add_user, bearer, make_admin

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ocpi" / "2.2.1"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def energy_tariff(price: str, vat: str = "21.0", **extra: Any) -> dict[str, Any]:
    return {
        "elements": [{"price_components": [{"type": "ENERGY", "price": price, "vat": vat, "step_size": 1}]}],
        **extra,
    }


class Clock:
    """The server's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def people(server: Stekker, api: httpx.AsyncClient, clock: Clock) -> dict[str, dict[str, str]]:
    """A logged-in user per role (logins last 12 hours of the test clock)."""
    root = await make_admin(api)
    headers = {"admin": bearer(root)}
    for role in ("operator", "municipality", "helpdesk", "read-only"):
        headers[role] = bearer(await add_user(api, root, role.replace("-", ""), role))
    return headers


@pytest.fixture
def clock(server: Stekker) -> Clock:
    clock = Clock(T0)
    server.ctx.clock = clock
    return clock


@pytest.fixture
def events(server: Stekker) -> list[Event]:
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    server.bus.subscribe("tariff.", collect)
    return seen


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def create(api: httpx.AsyncClient, who: dict[str, str], code: str, price: str, at: datetime) -> Any:
    body = {
        "code": code,
        "name": f"Tariff {code}",
        "content": energy_tariff(price),
        "effective_from": at.isoformat(),
    }
    return await ok(await api.post("/api/tariffs", json=body, headers=who), 201)


async def price_at(server: Stekker, at: datetime) -> tuple[str, int] | None:
    async with server.ctx.db() as db:
        found = await resolve_tariff(
            db,
            station_id="NOWHERE",
            evse_number=1,
            connector_number=1,
            party=None,
            energy_supplier=None,
            at=at,
        )
    return None if found is None else (str(found.tariff.elements[0].price_components[0].price), found.version)


async def wait_for(events: list[Event], topic: str) -> Event:
    import asyncio

    for _ in range(100):
        for event in events:
            if event.topic == topic:
                return event
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {topic} event among {[e.topic for e in events]}")


async def test_draft_submit_approve_schedule_activate(
    server: Stekker,
    api: httpx.AsyncClient,
    people: dict[str, dict[str, str]],
    clock: Clock,
    events: list[Event],
) -> None:
    op, muni = people["operator"], people["municipality"]
    start = T0 + timedelta(hours=2)
    created = await create(api, op, "STD", "0.30", start)
    assert created["versions"][0]["status"] == "draft" and created["active_version"] is None

    submitted = await ok(await api.post("/api/tariffs/STD/versions/1/submit", headers=op))
    assert submitted["status"] == "submitted"
    assert (await wait_for(events, "tariff.submitted")).data["notify"] == "municipality"
    # the municipality reads the proposal against the reference sessions (no old version yet)
    comparison = await ok(await api.get("/api/tariffs/STD/versions/1/comparison", headers=muni))
    top_up = next(s for s in comparison["sessions"] if s["reference_session"]["name"] == "Short top-up")
    assert top_up["old"] is None
    assert Decimal(top_up["new"]["excl_vat"]) == Decimal("1.5")  # 5 kWh x 0.30
    assert Decimal(top_up["new"]["incl_vat"]) == Decimal("1.82")  # + 21 % VAT: 1.815, billed in cents

    approved = await ok(
        await api.post("/api/tariffs/STD/versions/1/approve", json={"comment": "akkoord"}, headers=muni)
    )
    assert approved["status"] == "scheduled"
    assert (await wait_for(events, "tariff.approved")).data == {
        "tariff": "STD", "version": 1, "by": "user:municipality", "notify": "operator", "comment": "akkoord"
    }  # fmt: skip

    # approved, but not before its time: nothing prices a session that starts earlier
    assert await price_at(server, start - timedelta(seconds=1)) is None
    assert await price_at(server, start) == ("0.30", 1)
    assert await tariffs.activate_due(server.ctx) == 0  # not yet due
    clock.now = start + timedelta(minutes=1)
    assert await tariffs.activate_due(server.ctx) == 1
    assert (await ok(await api.get("/api/tariffs/STD", headers=op)))["active_version"] == 1
    await wait_for(events, "tariff.activated")

    # version 2: the old price keeps pricing sessions that start before its effective time
    later = clock.now + timedelta(hours=3)
    draft = await ok(
        await api.put(
            "/api/tariffs/STD/draft",
            json={
                "content": energy_tariff("0.35"),
                "effective_from": later.isoformat(),
                "note": "energy costs",
            },
            headers=op,
        )
    )
    assert draft["version"] == 2 and draft["status"] == "draft"
    await ok(await api.post("/api/tariffs/STD/versions/2/submit", headers=op))
    comparison = await ok(await api.get("/api/tariffs/STD/versions/2/comparison", headers=muni))
    assert comparison["compared_with_version"] == 1
    top_up = next(s for s in comparison["sessions"] if s["reference_session"]["name"] == "Short top-up")
    assert Decimal(top_up["old"]["incl_vat"]) == Decimal("1.82")
    assert Decimal(top_up["new"]["incl_vat"]) == Decimal("2.12")  # 5 x 0.35 x 1.21 = 2.1175
    assert Decimal(top_up["difference_incl_vat"]) == Decimal("0.30")
    await ok(await api.post("/api/tariffs/STD/versions/2/approve", json={}, headers=muni))
    assert await price_at(server, later - timedelta(seconds=1)) == ("0.30", 1)
    assert await price_at(server, later) == ("0.35", 2)
    clock.now = later
    assert await tariffs.activate_due(server.ctx) == 1
    view = await ok(await api.get("/api/tariffs/STD", headers=op))
    assert [v["status"] for v in view["versions"]] == ["superseded", "active"]

    history = await ok(await api.get("/api/tariffs/STD/history", headers=people["read-only"]))
    steps = [(h["version"], h["from"], h["to"], h["actor"]) for h in history]
    assert steps == [
        (1, None, "draft", "user:operator"),
        (1, "draft", "submitted", "user:operator"),
        (1, "submitted", "scheduled", "user:municipality"),
        (1, "scheduled", "active", "system"),
        (2, None, "draft", "user:operator"),
        (2, "draft", "submitted", "user:operator"),
        (2, "submitted", "scheduled", "user:municipality"),
        (1, "active", "superseded", "system"),
        (2, "scheduled", "active", "system"),
    ]
    audit = await ok(
        await api.get("/api/audit", params={"action": "tariff.approved"}, headers=people["admin"])
    )
    assert {entry["detail"]["version"] for entry in audit} == {1, 2}


async def test_rejection_needs_a_comment_and_ends_the_proposal(
    server: Stekker,
    api: httpx.AsyncClient,
    people: dict[str, dict[str, str]],
    clock: Clock,
    events: list[Event],
) -> None:
    op, muni = people["operator"], people["municipality"]
    await create(api, op, "DC", "0.59", T0 + timedelta(days=1))
    await ok(await api.post("/api/tariffs/DC/versions/1/submit", headers=op))
    assert (await api.post("/api/tariffs/DC/versions/1/reject", json={}, headers=muni)).status_code == 422
    rejected = await ok(
        await api.post("/api/tariffs/DC/versions/1/reject", json={"comment": "te duur"}, headers=muni)
    )
    assert rejected["status"] == "rejected"
    assert rejected["transitions"][-1]["comment"] == "te duur"
    assert (await wait_for(events, "tariff.rejected")).data["comment"] == "te duur"
    refused = await api.post("/api/tariffs/DC/versions/1/approve", headers=muni)
    assert refused.status_code == 409 and "only a submitted version" in refused.json()["detail"]
    # the operator starts over with a new version
    again = await ok(
        await api.put(
            "/api/tariffs/DC/draft",
            json={"content": energy_tariff("0.49"), "effective_from": (T0 + timedelta(days=1)).isoformat()},
            headers=op,
        )
    )
    assert again["version"] == 2


FORBIDDEN_ROLES = [
    ("POST", "/api/tariffs/X/versions/1/approve", {}, {"municipality"}),
    ("POST", "/api/tariffs/X/versions/1/reject", {"comment": "nee"}, {"municipality"}),
    ("POST", "/api/tariffs/X/versions/1/submit", None, {"admin", "operator"}),
    ("POST", "/api/tariffs/X/versions/1/withdraw", {}, {"admin", "operator"}),
    ("PUT", "/api/tariffs/X/draft", {"content": energy_tariff("0.3")}, {"admin", "operator"}),
    ("POST", "/api/tariffs/caps", {"max_per_kwh": "0.5"}, {"municipality"}),
]


async def test_who_may_take_each_step(
    server: Stekker, api: httpx.AsyncClient, people: dict[str, dict[str, str]], clock: Clock
) -> None:
    for method, path, body, allowed in FORBIDDEN_ROLES:
        for role, headers in people.items():
            response = await api.request(method, path, json=body, headers=headers)
            if role in allowed:
                assert response.status_code != 403, (role, path, response.text)
            else:
                assert response.status_code == 403, (role, path, response.text)
                assert "may not" in response.json()["detail"]
    # every role that may read, reads
    for headers in people.values():
        assert (await api.get("/api/tariffs", headers=headers)).status_code == 200
        assert (await api.get("/api/tariffs/caps", headers=headers)).status_code == 200


async def test_forbidden_transitions(
    server: Stekker, api: httpx.AsyncClient, people: dict[str, dict[str, str]], clock: Clock
) -> None:
    op, muni = people["operator"], people["municipality"]
    soon = T0 + timedelta(hours=1)
    await create(api, op, "T", "0.30", soon)

    async def refused(path: str, who: dict[str, str], status: int, words: str, body: Any = None) -> None:
        response = await api.post(f"/api/tariffs/T/versions/{path}", json=body, headers=who)
        assert response.status_code == status, response.text
        assert words in response.json()["detail"], response.json()

    await refused("1/approve", muni, 409, "only a submitted version")
    await refused("1/reject", muni, 409, "only a submitted version", {"comment": "x"})
    await refused("9/submit", op, 404, "no version 9")
    await ok(await api.post("/api/tariffs/T/versions/1/submit", headers=op))
    await refused("1/submit", op, 409, "only a draft version")
    changed = await api.put("/api/tariffs/T/draft", json={"content": energy_tariff("0.2")}, headers=op)
    assert changed.status_code == 409 and "withdraw it" in changed.json()["detail"]
    # the effective time passed while the municipality was reading: approving is refused
    clock.now = soon + timedelta(seconds=1)
    await refused("1/approve", muni, 409, "not in the future")
    await ok(await api.post("/api/tariffs/T/versions/1/withdraw", json={"comment": "new date"}, headers=op))
    await refused("1/withdraw", op, 409, "can be withdrawn")
    await refused("1/submit", op, 409, "only a draft version")

    # a draft whose time is already past cannot be submitted
    past = await ok(
        await api.put(
            "/api/tariffs/T/draft",
            json={"content": energy_tariff("0.3"), "effective_from": T0.isoformat()},
            headers=op,
        )
    )
    await refused(f"{past['version']}/submit", op, 409, "not in the future")
    # an active version cannot be withdrawn
    later = clock.now + timedelta(hours=1)
    await api.put(
        "/api/tariffs/T/draft",
        json={"content": energy_tariff("0.3"), "effective_from": later.isoformat()},
        headers=op,
    )
    await ok(await api.post(f"/api/tariffs/T/versions/{past['version']}/submit", headers=op))
    await ok(await api.post(f"/api/tariffs/T/versions/{past['version']}/approve", headers=muni))
    clock.now = later
    assert await tariffs.activate_due(server.ctx) == 1
    await refused(f"{past['version']}/withdraw", op, 409, "can be withdrawn")


async def test_maximum_price_refuses_a_proposal_and_explains(
    server: Stekker, api: httpx.AsyncClient, people: dict[str, dict[str, str]], clock: Clock
) -> None:
    op, muni = people["operator"], people["municipality"]
    cap = await ok(
        await api.post(
            "/api/tariffs/caps",
            json={"max_per_kwh": "0.50", "max_per_session": "40", "comment": "raad"},
            headers=muni,
        ),
        201,
    )
    assert cap["affected_tariffs"] == [] and cap["set_by"] == "user:municipality"
    await create(api, op, "HIGH", "0.45", T0 + timedelta(days=1))  # 0.5445 incl. VAT > 0.50
    response = await api.post("/api/tariffs/HIGH/versions/1/submit", headers=op)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "over_cap"
    assert "maximum price" in body["detail"] and "Short top-up" in body["detail"]
    assert {b["bound"] for b in body["breaches"]} >= {"cap.per_kwh"}
    top_up = next(b for b in body["breaches"] if b["reference_session"] == "Short top-up")
    assert Decimal(top_up["cost_incl_vat"]) == Decimal("2.72") and Decimal(top_up["cap_incl_vat"]) == Decimal(
        "2.5"
    )
    # still a draft; the comparison shows it over the cap
    view = await ok(await api.get("/api/tariffs/HIGH/versions/1", headers=muni))
    assert view["status"] == "draft"
    comparison = await ok(await api.get("/api/tariffs/HIGH/versions/1/comparison", headers=muni))
    assert all(
        s["new"]["over_cap"] for s in comparison["sessions"] if Decimal(s["reference_session"]["energy_kwh"])
    )
    # a price under the cap passes
    await api.put(
        "/api/tariffs/HIGH/draft",
        json={"content": energy_tariff("0.41"), "effective_from": (T0 + timedelta(days=1)).isoformat()},
        headers=op,
    )
    await ok(await api.post("/api/tariffs/HIGH/versions/1/submit", headers=op))
    await ok(await api.post("/api/tariffs/HIGH/versions/1/approve", headers=muni))

    # a lower cap set later lists the approved tariff it now caps; history keeps both
    lower = await ok(await api.post("/api/tariffs/caps", json={"max_per_kwh": "0.45"}, headers=muni), 201)
    assert lower["affected_tariffs"][0]["tariff"] == "HIGH"
    caps = await ok(await api.get("/api/tariffs/caps", headers=op))
    assert Decimal(caps["current"]["max_per_kwh"]) == Decimal("0.45") and len(caps["history"]) == 2


async def test_a_tariff_in_another_currency_than_the_cap_is_refused(
    server: Stekker, api: httpx.AsyncClient, people: dict[str, dict[str, str]], clock: Clock
) -> None:
    await ok(
        await api.post("/api/tariffs/caps", json={"max_per_kwh": "0.50"}, headers=people["municipality"]), 201
    )
    body = {
        "code": "CHF",
        "name": "Swiss",
        "currency": "CHF",
        "content": energy_tariff("0.10"),
        "effective_from": (T0 + timedelta(days=1)).isoformat(),
    }
    await ok(await api.post("/api/tariffs", json=body, headers=people["operator"]), 201)
    response = await api.post("/api/tariffs/CHF/versions/1/submit", headers=people["operator"])
    assert response.status_code == 422 and "EUR" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"content": {"elements": []}}, "at least one element"),
        ({"content": energy_tariff("-1")}, "cannot be negative"),
        ({"content": {"elements": [{"price_components": [{"type": "BEER", "price": 1}]}]}}, "known type"),
        ({"content": {"elements": "x"}}, "elements"),
        ({"content": {"id": "OTHER", **energy_tariff("0.3")}}, "unknown tariff fields"),
        ({"content": energy_tariff("0.3"), "applies_to": [{"station": "X"}]}, "a target is"),
        ({"content": energy_tariff("0.3"), "applies_to": []}, "applies_to is empty"),
        ({"content": energy_tariff("0.3"), "parties": ["NL-ABC"]}, "audience 'contract'"),
        ({"content": {"elements": [{"price_components": [{"type": "ENERGY", "price": "NaN"}]}]}}, "finite"),
    ],
)
async def test_bad_drafts_are_422_and_change_nothing(
    server: Stekker,
    api: httpx.AsyncClient,
    people: dict[str, dict[str, str]],
    clock: Clock,
    body: Any,
    words: str,
) -> None:
    await create(api, people["operator"], "OK", "0.30", T0 + timedelta(days=1))
    response = await api.put("/api/tariffs/OK/draft", json=body, headers=people["operator"])
    assert response.status_code == 422, response.text
    assert words in json.dumps(response.json()), response.json()
    view = await ok(await api.get("/api/tariffs/OK/versions/1", headers=people["operator"]))
    assert view["content"] == energy_tariff("0.30")


async def test_hostile_requests(
    server: Stekker, api: httpx.AsyncClient, people: dict[str, dict[str, str]], clock: Clock
) -> None:
    op = people["operator"]
    cases: list[tuple[str, str, Any, int]] = [
        ("GET", "/api/tariffs/%00", None, 422),
        ("GET", "/api/tariffs/" + "A" * 100, None, 422),
        ("GET", "/api/tariffs/NOPE", None, 404),
        ("GET", "/api/tariffs/NOPE/versions/99999999999", None, 422),
        ("POST", "/api/tariffs", {"code": "<script>", "name": "x", "content": energy_tariff("1")}, 422),
        (
            "POST",
            "/api/tariffs",
            {"code": "A", "name": "x", "currency": "euro", "content": energy_tariff("1")},
            422,
        ),
        (
            "POST",
            "/api/tariffs",
            {
                "code": "A",
                "name": "x",
                "content": energy_tariff("1"),
                "effective_from": "2026-12-01T00:00:00",
            },
            422,
        ),
        ("POST", "/api/tariffs", {"code": "A", "name": "x", "content": energy_tariff("1"), "extra": 1}, 422),
        (
            "POST",
            "/api/tariffs",
            {
                "code": "A",
                "name": "x",
                "content": {"elements": [{"price_components": [{"type": "ENERGY", "price": 1}]}] * 51},
            },
            422,
        ),
        (
            "POST",
            "/api/tariffs",
            {"code": "A", "name": "x", "parking_grace_minutes": -1, "content": energy_tariff("1")},
            422,
        ),
        ("POST", "/api/tariffs", "not json", 422),
    ]
    for method, path, body, status in cases:
        response = await api.request(method, path, json=body, headers=op)
        assert response.status_code == status, (path, body, response.text)
    assert await ok(await api.get("/api/tariffs", headers=op)) == []
    muni = people["municipality"]
    for body in (
        {"max_per_kwh": "-0.1"},
        {"max_per_kwh": "abc"},
        {"currency": "eur"},
        {"effective_from": "2020-01-01T00:00:00Z"},
        {"reference_sessions": [{"name": "x"}]},
        {
            "reference_sessions": [
                {"name": "x", "day": "FUNDAY", "start": "10:00", "charging_minutes": 10, "energy_kwh": 1}
            ]
        },
    ):
        response = await api.post("/api/tariffs/caps", json=body, headers=muni)
        assert response.status_code == 422, (body, response.text)
    assert (await ok(await api.get("/api/tariffs/caps", headers=muni)))["current"] is None


async def test_cli_walks_the_workflow(
    server: Stekker, api: httpx.AsyncClient, cli: Callable[..., Any], clock: Clock, tmp_path: Path
) -> None:
    """On the open demo API (no users) the admin drafts and submits; approval needs a municipality user."""
    tariff_file = tmp_path / "t.json"
    tariff_file.write_text(json.dumps(json.loads((FIXTURES / "tariff_1_simple_2hour.json").read_text())))
    when = (T0 + timedelta(days=2)).isoformat()
    result = await cli(
        "tariff",
        "create",
        "AC1",
        "--name",
        "Standard AC",
        "--file",
        str(tariff_file),
        "--effective-from",
        when,
    )
    assert result.exit_code == 0, result.output
    result = await cli("tariff", "submit", "AC1", "1")
    assert result.exit_code == 0, result.output
    assert "submitted" in result.output
    result = await cli("tariff", "compare", "AC1", "1")
    assert result.exit_code == 0, result.output
    assert "Short top-up" in result.output
    result = await cli("tariff", "approve", "AC1", "1")
    assert result.exit_code == 1 and "may not" in result.output
    result = await cli("tariff", "show", "AC1")
    assert result.exit_code == 0 and "submitted" in result.output


async def test_retiring_a_tariff_is_a_change_the_municipality_approves(
    server: Stekker,
    api: httpx.AsyncClient,
    people: dict[str, dict[str, str]],
    clock: Clock,
    events: list[Event],
) -> None:
    op, muni = people["operator"], people["municipality"]
    start = T0 + timedelta(hours=1)
    await create(api, op, "OLD", "0.30", start)
    await ok(await api.post("/api/tariffs/OLD/versions/1/submit", headers=op))
    await ok(await api.post("/api/tariffs/OLD/versions/1/approve", headers=muni))
    end = T0 + timedelta(hours=5)
    retire = await ok(
        await api.put(
            "/api/tariffs/OLD/draft",
            json={"ends_tariff": True, "effective_from": end.isoformat(), "note": "replaced by NEW"},
            headers=op,
        )
    )
    assert retire["version"] == 2 and retire["ends_tariff"] is True
    await ok(await api.post("/api/tariffs/OLD/versions/2/submit", headers=op))
    comparison = await ok(await api.get("/api/tariffs/OLD/versions/2/comparison", headers=muni))
    assert comparison["ends_tariff"] and all(s["new"] is None and s["old"] for s in comparison["sessions"])
    await ok(await api.post("/api/tariffs/OLD/versions/2/approve", headers=muni))
    assert await price_at(server, end - timedelta(seconds=1)) == ("0.30", 1)
    assert await price_at(server, end) is None  # retired: nothing prices with it any more
    clock.now = end
    assert await tariffs.activate_due(server.ctx) == 2  # version 1 took effect, then the retirement
    assert (await ok(await api.get("/api/tariffs/OLD", headers=op)))["retired"] is True
    await wait_for(events, "tariff.retired")
