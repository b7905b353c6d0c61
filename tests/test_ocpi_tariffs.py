"""OCPI 2.2.1 Tariffs (CPO, sender): what a registered partner reads at /ocpi/2.2.1/tariffs.

Published: per tariff, the approved version in effect now, unless it retires the tariff; a
contract tariff agreed with particular eMSPs only to those eMSPs. Each object is checked
against the structure of every official tariff example.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models_tariffs import TariffRecord, TariffTransition, TariffVersion
from stekker.ocpi.tariff_objects import current_and_next, numbers, tariff_type
from tests.test_ocpi_locations import (
    fixture,
    ok,
    partner,
    refused,
    shape_problems,
)

BASE = "/ocpi/2.2.1/tariffs"
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ocpi" / "2.2.1"
#: Spec fields we fill that no official tariff example shows.
NOT_IN_EXAMPLES = {"start_date_time": str, "end_date_time": str}
REQUIRED = ("country_code", "party_id", "id", "currency", "elements", "last_updated")


def tariff_examples() -> list[Any]:
    return [fixture(p.name) for p in sorted(FIXTURES.glob("tariff_*.json")) if "elements" in fixture(p.name)]


def assert_tariff_conforms(tariff: dict[str, Any]) -> None:
    problems = shape_problems(tariff, tariff_examples(), extra=NOT_IN_EXAMPLES)
    assert not problems, problems
    for key in REQUIRED:
        assert key in tariff, key
    assert tariff["elements"], "OCPI: a tariff has at least one element"


def _body(name: str, **extra: Any) -> dict[str, Any]:
    ours = ("id", "currency", "country_code", "party_id", "last_updated", "start_date_time", "end_date_time")
    body = {k: v for k, v in fixture(name).items() if k not in ours}
    return {**body, **extra}


async def add_tariff(
    server: Stekker,
    code: str,
    versions: list[tuple[str, datetime, dict[str, Any] | None]],
    *,
    audience: str = "all",
    parties: list[str] | None = None,
) -> list[int]:
    """A tariff with versions (status, effective_from, content; None content: retires it)."""
    ids: list[int] = []

    async def job(db: AsyncSession) -> None:
        record = TariffRecord(code=code, name=code, currency="EUR", created_by="test")
        db.add(record)
        await db.flush()
        for number, (status, at, content) in enumerate(versions, start=1):
            row = TariffVersion(
                tariff_id=record.id,
                version=number,
                status=status,
                content=content or {},
                applies_to=[{"all": True}],
                audience=audience,
                parties=parties or [],
                energy_suppliers=[],
                effective_from=at,
                ends_tariff=content is None,
                created_by="test",
            )
            db.add(row)
            await db.flush()
            ids.append(row.id)

    await server.ctx.write(job)
    return ids


def test_pure_pieces() -> None:
    from decimal import Decimal

    assert numbers({"a": [Decimal("0.25"), Decimal("2")], "b": "x"}) == {"a": [0.25, 2], "b": "x"}
    assert tariff_type({}, "adhoc") == "AD_HOC_PAYMENT"
    assert tariff_type({}, "contract") == "REGULAR"
    assert tariff_type({}, "all") is None  # OCPI: no type is valid for every session
    assert tariff_type({"type": "PROFILE_GREEN"}, "all") == "PROFILE_GREEN"
    assert tariff_type({"type": "BOGUS"}, "adhoc") == "AD_HOC_PAYMENT"
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def v(id_: int, days: int) -> TariffVersion:
        return TariffVersion(id=id_, effective_from=now + timedelta(days=days))

    past, present, future, later = v(1, -10), v(2, -1), v(3, 5), v(4, 9)
    assert current_and_next([later, past, future, present], now) == (present, future)
    assert current_and_next([future], now) == (None, future)
    assert current_and_next([past], now) == (past, None)


async def test_a_partner_reads_the_tariffs_in_effect(api: httpx.AsyncClient, server: Stekker) -> None:
    headers = await partner(server)
    now = server.ctx.now()
    day = timedelta(days=1)
    await add_tariff(
        server,
        "ADHOC",
        [
            ("superseded", now - 9 * day, _body("tariff_9_025kwh_start.json")),
            ("active", now - day, _body("tariff_2_alt_text.json")),
            ("scheduled", now + 7 * day, _body("tariff_8_simple_025kwh.json")),
        ],
        audience="adhoc",
    )
    await add_tariff(server, "EVERYONE", [("active", now - 2 * day, _body("tariff_4_complex.json"))])
    await add_tariff(
        server,
        "MINMAX",
        [("active", now - 2 * day, _body("tariff_12_025kwh_min_price.json")), ("scheduled", now + day, None)],
    )
    await add_tariff(
        server,
        "ABC-DEAL",
        [("active", now - day, _body("tariff_1_simple_2hour.json"))],
        audience="contract",
        parties=["NL-ABC"],
    )
    await add_tariff(
        server,
        "XYZ-DEAL",
        [("active", now - day, _body("tariff_1_simple_2hour.json"))],
        audience="contract",
        parties=["NL-XYZ"],
    )
    await add_tariff(
        server,
        "CONTRACT",
        [("active", now - day, _body("tariff_5_free_of_charge.json"))],
        audience="contract",
    )
    await add_tariff(
        server,
        "RETIRED",
        [("superseded", now - 9 * day, _body("tariff_1_simple_2hour.json")), ("active", now - day, None)],
    )
    await add_tariff(server, "NOT-YET", [("scheduled", now + day, _body("tariff_1_simple_2hour.json"))])
    await add_tariff(
        server,
        "DRAFT",
        [
            ("draft", now - day, _body("tariff_1_simple_2hour.json")),
            ("rejected", now - day, _body("tariff_1_simple_2hour.json")),
        ],
    )

    response = await api.get(BASE, headers=headers)
    data = await ok(response)
    assert response.headers["X-Total-Count"] == "5" and response.headers["X-Limit"] == "100"
    by_id = {t["id"]: t for t in data}
    assert list(by_id) == ["ABC-DEAL", "ADHOC", "CONTRACT", "EVERYONE", "MINMAX"]
    for tariff in data:
        assert_tariff_conforms(tariff)
        assert tariff["country_code"] == "NL" and tariff["party_id"] == "STK" and tariff["currency"] == "EUR"
        assert tariff["last_updated"].endswith("Z")

    adhoc = by_id["ADHOC"]
    assert adhoc["type"] == "AD_HOC_PAYMENT"
    assert adhoc["tariff_alt_text"] == fixture("tariff_2_alt_text.json")["tariff_alt_text"]
    assert adhoc["elements"] == fixture("tariff_2_alt_text.json")["elements"]
    assert isinstance(adhoc["elements"][0]["price_components"][0]["price"], float)
    start = (now - day).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert adhoc["start_date_time"] == start and adhoc["last_updated"] == start
    assert adhoc["end_date_time"] == (now + 7 * day).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert by_id["EVERYONE"]["type"] == "REGULAR"  # the version states it
    assert "end_date_time" not in by_id["EVERYONE"]
    assert "type" not in by_id["MINMAX"]  # for everybody, and it says nothing: valid for all sessions
    assert by_id["CONTRACT"]["type"] == "REGULAR"
    assert by_id["MINMAX"]["min_price"] == {"excl_vat": 0.5, "incl_vat": 0.55}
    assert by_id["MINMAX"]["end_date_time"] == (now + day).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # another eMSP sees its own deal; a hub speaking for both sees both
    xyz = await partner(server, "xyz-token", party="XYZ")
    assert [t["id"] for t in await ok(await api.get(BASE, headers=xyz))] == [
        "ADHOC",
        "CONTRACT",
        "EVERYONE",
        "MINMAX",
        "XYZ-DEAL",
    ]
    from stekker.services.ocpi_partners import add_registered_partner

    await add_registered_partner(
        server.ctx,
        name="hub",
        country_code="NL",
        party_id="HUB",
        role="HUB",
        token="hub-token",
        extra_roles=[("NL", "ABC", "EMSP"), ("NL", "XYZ", "EMSP")],
    )
    from tests.test_ocpi_locations import auth

    hub = [t["id"] for t in await ok(await api.get(BASE, headers=auth("hub-token")))]
    assert "ABC-DEAL" in hub and "XYZ-DEAL" in hub


async def test_last_updated_follows_the_approval_workflow(api: httpx.AsyncClient, server: Stekker) -> None:
    headers = await partner(server)
    t0 = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
    ids = await add_tariff(
        server,
        "STD",
        [
            ("active", t0, _body("tariff_8_simple_025kwh.json")),
            ("scheduled", datetime(2099, 1, 1, tzinfo=UTC), None),
        ],
    )
    await add_tariff(
        server, "OLD", [("active", datetime(2024, 1, 1, tzinfo=UTC), _body("tariff_8_simple_025kwh.json"))]
    )

    async def ids_of(**params: str) -> list[str]:
        return [t["id"] for t in await ok(await api.get(BASE, params=params, headers=headers))]

    assert await ids_of(date_from="2025-01-01T08:00:00Z") == ["STD"]
    assert await ids_of(date_to="2025-01-01T08:00:00Z") == ["OLD"]
    # the retirement was approved in March: the published object changed then (end_date_time)
    approved_at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)

    async def approve(db: AsyncSession) -> None:
        tariff_id = (await db.execute(select(TariffRecord.id).where(TariffRecord.code == "STD"))).scalar_one()
        db.add(
            TariffTransition(
                tariff_id=tariff_id,
                version_id=ids[1],
                from_status="submitted",
                to_status="scheduled",
                actor="muni",
                role="municipality",
                at=approved_at,
            )
        )
        db.add(
            TariffTransition(
                tariff_id=tariff_id,
                version_id=ids[1],
                from_status="draft",
                to_status="submitted",
                actor="op",
                role="operator",
                at=datetime(2025, 4, 1, tzinfo=UTC),
            )
        )

    await server.ctx.write(approve)
    std = (await ok(await api.get(BASE, params={"date_from": "2025-02-01T00:00:00Z"}, headers=headers)))[0]
    assert std["last_updated"] == "2025-03-01T09:30:00Z" and std["end_date_time"] == "2099-01-01T00:00:00Z"


async def test_pagination_and_hostile_input(api: httpx.AsyncClient, server: Stekker) -> None:
    headers = await partner(server)
    now = server.ctx.now()
    codes = [f"T{n}" for n in range(5)]
    for code in codes:
        await add_tariff(
            server, code, [("active", now - timedelta(hours=1), _body("tariff_8_simple_025kwh.json"))]
        )
    response = await api.get(BASE, params={"limit": 2}, headers=headers)
    seen = [t["id"] for t in await ok(response)]
    while "Link" in response.headers:
        link = response.headers["Link"]
        response = await api.get(link[1 : link.index(">")], headers=headers)
        seen += [t["id"] for t in await ok(response)]
    assert seen == codes
    beyond = await api.get(BASE, params={"offset": 99}, headers=headers)
    assert await ok(beyond) == [] and beyond.headers["X-Total-Count"] == "5"
    huge = await api.get(BASE, params={"limit": 100_000}, headers=headers)
    assert len(await ok(huge)) == 5 and huge.headers["X-Limit"] == "100"
    for params in ({"limit": 0}, {"limit": -5}, {"offset": "x"}, {"date_from": "2025-02-30T00:00:00Z"}):
        await refused(await api.get(BASE, params=params, headers=headers), 200, 2001)
    for bad in ({}, {"Authorization": "Token"}, {"Authorization": "Token bm9wZQ=="}):
        await refused(await api.get(BASE, headers=bad), 401, 2000)
