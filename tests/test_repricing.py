"""Past sessions priced again from their CDRs (stekker.domain.repricing)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stekker.domain.pricing import price_session
from stekker.domain.repricing import periods_from_cdr
from stekker.domain.tariffs import tariff_from_ocpi

OCPI = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ocpi" / "2.2.1"
AMS = ZoneInfo("Europe/Amsterdam")


def test_the_official_cdr_example_reprices_to_its_own_total() -> None:
    """cdr_example.json: 1 h 58 min 23 s of charging under TIME EUR 2.00/h, step 300 s, 10 % VAT:
    7103 s rounds up to 7200 s = 2 h, so EUR 4.00 excl. and 4.40 incl., as the CDR says."""
    cdr = json.loads((OCPI / "cdr_example.json").read_text())
    periods = periods_from_cdr(cdr)
    assert [(p.start, p.end, p.charging) for p in periods] == [
        (datetime(2015, 6, 29, 21, 39, 9, tzinfo=UTC), datetime(2015, 6, 29, 23, 37, 32, tzinfo=UTC), True)
    ]
    assert periods[0].energy_wh == 15342  # only the total is given: spread over the charging time
    priced = price_session(tariff_from_ocpi(cdr["tariffs"][0]), periods, AMS)
    assert priced.total_excl_vat == Decimal(str(cdr["total_cost"]["excl_vat"]))
    assert priced.total_incl_vat == Decimal(str(cdr["total_cost"]["incl_vat"]))


def test_charging_and_parking_periods_come_back() -> None:
    cdr = {
        "start_date_time": "2026-03-01T10:00:00Z",
        "end_date_time": "2026-03-01T13:00:00Z",
        "total_energy": 12.5,
        "charging_periods": [
            {
                "start_date_time": "2026-03-01T10:00:00Z",
                "dimensions": [{"type": "ENERGY", "volume": 10}, {"type": "TIME", "volume": 1}],
            },
            {
                "start_date_time": "2026-03-01T11:00:00Z",
                "dimensions": [{"type": "ENERGY", "volume": 2.5}, {"type": "TIME", "volume": 1}],
            },
            {
                "start_date_time": "2026-03-01T12:00:00Z",
                "dimensions": [{"type": "PARKING_TIME", "volume": 1}],
            },
        ],
    }
    periods = periods_from_cdr(cdr)
    assert [(p.energy_wh, p.charging, (p.end - p.start).total_seconds()) for p in periods] == [
        (10000, True, 3600),
        (2500, True, 3600),
        (0, False, 3600),
    ]


def test_a_cdr_without_periods_is_one_charging_period() -> None:
    periods = periods_from_cdr(
        {
            "start_date_time": "2026-03-01T10:00:00+01:00",
            "end_date_time": "2026-03-01T11:00:00+01:00",
            "total_energy": 3,
        }
    )
    assert [(p.energy_wh, p.charging) for p in periods] == [(3000, True)]


@pytest.mark.parametrize(
    "cdr",
    [
        {},
        {"end_date_time": "yesterday"},
        {"end_date_time": "2026-03-01T10:00:00"},  # no offset
        {"end_date_time": "2026-03-01T10:00:00Z", "charging_periods": [{"dimensions": []}]},
    ],
)
def test_unreadable_cdrs_say_so(cdr: dict[str, object]) -> None:
    with pytest.raises((ValueError, KeyError)):
        periods_from_cdr(cdr)
