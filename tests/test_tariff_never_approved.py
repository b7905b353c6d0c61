"""A tariff in force that was never approved says so in the API and the CLI; one that went
through the municipality's approval does not."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from stekker.app import Stekker
from stekker.db.models_users import Role
from stekker.services import tariffs
from stekker.services.tariffs import DEMO_TARIFF, Draft, seed_demo_tariff

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_the_demo_tariff_is_shown_as_never_approved(
    server: Stekker, api: httpx.AsyncClient, cli: Any
) -> None:
    ctx = server.ctx
    assert await seed_demo_tariff(ctx)
    # a proper one: drafted, submitted, approved by the municipality, then in force
    await tariffs.create_tariff(
        ctx,
        actor="user:op",
        code="OK",
        name="Approved",
        currency="EUR",
        draft=Draft(content=DEMO_TARIFF, effective_from=ctx.now() + timedelta(seconds=2)),
    )
    await tariffs.submit(ctx, actor="user:op", code="OK", version=1)
    await tariffs.approve(ctx, actor="user:gem", role=Role.MUNICIPALITY, code="OK", version=1)

    listed = {t["code"]: t for t in (await api.get("/api/tariffs")).json()}
    assert listed["DEMO"]["active_never_approved"] is True
    assert listed["OK"]["active_never_approved"] is False
    ok = (await api.get("/api/tariffs/OK")).json()
    assert [(v["status"], v["never_approved"]) for v in ok["versions"]] == [("scheduled", False)]
    demo = (await api.get("/api/tariffs/DEMO/versions/1")).json()
    assert (demo["status"], demo["never_approved"]) == ("active", True)

    result = await cli("tariff", "show", "DEMO", "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["versions"][0]["never_approved"] is True

    missing = await api.get("/api/tariffs/NOPE")
    assert missing.status_code == 404
