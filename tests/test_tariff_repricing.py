"""The comparison of a tariff proposal repriced on the real sessions of the last days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from stekker.app import Stekker
from tests.observe import add_token
from tests.test_cdrs import TARIFF, add_tariff, base_time, cdrs_of, session_16


async def test_last_months_sessions_repriced_under_a_proposal(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """The session of tests/test_cdrs.py cost 10.41 incl. VAT. Under the proposal (ENERGY 0.40,
    PARKING_TIME 2.40, 21 % VAT, no grace): 22 kWh x 0.40 = 8.80 and 1 h parked x 2.40 = 2.40,
    11.20 excl.; billed in cents per line 10.648 -> 10.65 and 2.904 -> 2.90 = 13.55 incl."""
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    await add_token(api, "CARD-R")
    await session_16(ocpp_url, "REPRICE", "CARD-R", base)
    await cdrs_of(api, "REPRICE")

    proposal = {
        "elements": [
            {
                "price_components": [
                    {"type": "ENERGY", "price": 0.40, "vat": 21.0},
                    {"type": "PARKING_TIME", "price": 2.40, "vat": 21.0},
                ]
            }
        ]
    }
    when = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    draft = await api.put("/api/tariffs/STD/draft", json={"content": proposal, "effective_from": when})
    assert draft.status_code == 200, draft.text
    version = draft.json()["version"]
    response = await api.get(f"/api/tariffs/STD/versions/{version}/comparison", params={"history_days": 30})
    assert response.status_code == 200, response.text
    history = response.json()["history"]
    assert history["sessions"] == 1 and history["skipped"] == 0 and not history["truncated"]
    assert Decimal(history["old_incl_vat"]) == Decimal("10.41")
    assert Decimal(history["new_incl_vat"]) == Decimal("13.55")
    assert Decimal(history["difference_incl_vat"]) == Decimal("3.14")
    # the municipality reads when a session parks
    rule = response.json()["parking_rule"]
    assert "after the car charged" in rule and "5 min" in rule
    # the sessions of a day when there were none
    none = await api.get(f"/api/tariffs/STD/versions/{version}/comparison", params={"history_days": 1})
    assert none.json()["history"]["sessions"] in (0, 1)  # base is a day ago: at the edge
    for bad in ("0", "367", "x", "-1"):
        refused = await api.get(
            f"/api/tariffs/STD/versions/{version}/comparison", params={"history_days": bad}
        )
        assert refused.status_code == 422, bad
