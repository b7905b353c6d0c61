"""A session in Europe/Amsterdam across midnight, the end of summer time and a tariff change,
from a 1.6 station over loopback to the CDR a user reads.

Saturday 24 October 2026 22:00 CEST (20:00 UTC) to Sunday 25 October 04:00 CET (03:00 UTC):
the clock on the wall moves 6 hours, but the clocks go back at 03:00 CEST, so 7 real hours
pass. The car draws 7 kW the whole time: 49 kWh. Version 2 of the tariff takes effect at
Sunday 00:00 local, in the middle of the session; the session is priced by version 1, valid
at its start. Version 1:

  element 1, Sundays only:     TIME 1.00/h (no VAT)
  element 2, 23:00-07:00:      ENERGY 0.20/kWh + 21 % VAT
  element 3, any time:         ENERGY 0.30/kWh + 21 % VAT

By hand:
  ENERGY 20:00-21:00 UTC (22:00-23:00 Sat):          7 kWh x 0.30 = 2.10 (2.541 incl.)
  ENERGY 21:00-03:00 UTC (23:00 Sat - 04:00 Sun):   42 kWh x 0.20 = 8.40 (10.164 incl.)
  TIME   22:00-03:00 UTC (Sunday, 5 real hours):     5 h x 1.00 = 5.00 (5.00 incl.)
  total 15.50 excl., 17.705 incl. exact; billed per line in cents: energy 12.705 -> 12.71, 17.71.
A wall-clock engine would bill 4 Sunday hours; version 2 (ENERGY 0.50) would bill 24.50.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from ocpp.v16 import call

from stekker.app import Stekker
from tests.observe import add_token
from tests.peers import ocpp_station
from tests.test_cdrs import add_tariff, cdrs_of, detail

START = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
V1 = {
    "elements": [
        {
            "restrictions": {"day_of_week": ["SUNDAY"]},
            "price_components": [{"type": "TIME", "price": 1.00, "step_size": 1}],
        },
        {
            "restrictions": {"start_time": "23:00", "end_time": "07:00"},
            "price_components": [{"type": "ENERGY", "price": 0.20, "vat": 21.0, "step_size": 1}],
        },
        {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1}]},
    ]
}
V2 = {"elements": [{"price_components": [{"type": "ENERGY", "price": 0.50, "vat": 21.0, "step_size": 1}]}]}


def at(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


async def test_session_over_midnight_dst_end_and_a_tariff_change(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    sunday_midnight_local = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # 00:00 CEST
    await add_tariff(
        server,
        V1,
        effective_from=START - timedelta(days=60),
        grace_minutes=0,
        versions=[(V2, sunday_midnight_local)],
    )
    await add_token(api, "NIGHT-OWL")
    async with ocpp_station(ocpp_url, "DST16") as cp:  # its offline queue, sent in order
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="NIGHT-OWL", meter_start=500_000, timestamp=at(0))
        )
        tx = started.transaction_id
        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Charging", timestamp=at(0))
        )
        for hour in range(1, 7):
            await cp.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=tx,
                    meter_value=[
                        {
                            "timestamp": at(hour),
                            "sampled_value": [
                                {
                                    "value": str(500_000 + 7000 * hour),
                                    "measurand": "Energy.Active.Import.Register",
                                }
                            ],
                        }
                    ],
                )
            )
        await cp.call(
            call.StopTransaction(
                meter_stop=549_000, timestamp=at(7), transaction_id=tx, reason="EVDisconnected"
            )
        )

    [row] = await cdrs_of(api, "DST16")
    assert (row["total_cost_excl_vat"], row["total_cost_incl_vat"]) == (15.5, 17.71)
    assert row["total_time_s"] == 7 * 3600 and row["total_energy_wh"] == 49_000
    cdr = await detail(api, row["cdr_uid"])
    doc = cdr["document"]
    assert doc["total_energy_cost"] == {"excl_vat": 10.5, "incl_vat": 12.71}
    assert doc["total_time_cost"] == {"excl_vat": 5, "incl_vat": 5}
    prices = [c["price"] for e in doc["tariffs"][0]["elements"] for c in e["price_components"]]
    assert prices == [1, 0.2, 0.3]  # version 1, the one valid at the start
    # the periods change price at 23:00 Saturday and at midnight, in UTC
    assert [p["start_date_time"] for p in doc["charging_periods"]] == [at(0), at(1), at(2)]
