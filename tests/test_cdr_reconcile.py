"""A session closed when the next one started (`Superseded`) whose real stop arrives later:
its CDR is corrected by itself, with a credit and a new CDR, never edited."""

from __future__ import annotations

from datetime import timedelta

import httpx
from ocpp.v16 import call

from stekker.app import Stekker
from tests.observe import add_token, eventually
from tests.peers import ocpp_station
from tests.test_cdrs import TARIFF, add_tariff, base_time, iso


async def test_the_real_stop_of_a_superseded_session_corrects_its_cdr(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    """First CDR: closed at the next start (1:00) with the last register we had, 0 Wh, and the
    hour counted as parked (10 min grace, 50 min x 2.40 = 2.00 excl., 2.42 incl.). The real
    stop says 0:50 and 3 kWh: 3 x 0.30 = 0.90 excl., 1.089 incl. (1.09 in cents), all charging."""
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))
    await add_token(api, "CARD-LATE")
    async with ocpp_station(ocpp_url, "LATE16") as cp:
        first = await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag="CARD-LATE", meter_start=1000, timestamp=iso(base, 0)
            )
        )
        await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag="CARD-LATE", meter_start=4000, timestamp=iso(base, 60)
            )
        )

        async def cdrs_now() -> list[dict[str, object]] | None:
            rows: list[dict[str, object]] = (
                await api.get("/api/cdrs", params={"station_id": "LATE16"})
            ).json()
            return rows or None

        [superseded] = await eventually(cdrs_now)
        assert superseded["total_cost_incl_vat"] == 2.42 and superseded["total_energy_wh"] == 0
        # the station's queued stop of the first transaction, with the real end
        await cp.call(
            call.StopTransaction(
                meter_stop=4000, timestamp=iso(base, 50), transaction_id=first.transaction_id, reason="Local"
            )
        )

        async def corrected() -> list[dict[str, object]] | None:
            rows: list[dict[str, object]] = (
                await api.get("/api/cdrs", params={"station_id": "LATE16"})
            ).json()
            return rows if len(rows) == 3 else None

        rows = await eventually(corrected)
    by_kind = {(r["kind"], r["cdr_uid"] == superseded["cdr_uid"]): r for r in rows}
    original = by_kind[("charge", True)]
    credit = by_kind[("credit", False)]
    new = by_kind[("charge", False)]
    assert original.pop("credited_by_cdr_uid") == credit["cdr_uid"]
    assert superseded.pop("credited_by_cdr_uid") is None
    assert original == superseded  # never edited
    assert credit["total_cost_incl_vat"] == -2.42 and credit["credits_cdr_uid"] == superseded["cdr_uid"]
    assert new["replaces_cdr_uid"] == superseded["cdr_uid"]
    assert (new["total_energy_wh"], new["total_cost_excl_vat"], new["total_cost_incl_vat"]) == (
        3000,
        0.9,
        1.09,
    )
    assert new["end_time"].startswith(iso(base, 50)[:16])
    assert "real end" in str(new["reason"])
