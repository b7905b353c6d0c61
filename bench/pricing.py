"""Price N synthetic sessions with the OCPI pricing engine and print sessions/s.

    .venv/bin/python bench/pricing.py [--sessions 100000] [--seed 1] [--stations 1000] [--per-day 3]

Sessions are deterministic (seeded): a charging period of 10 min to 10 h with
0-60 kWh and 6-64 A, then 0-3 h parked, starting at any minute of 2025 in
Europe/Amsterdam, priced in turn under the official OCPI examples tariff 4
(day of week, current, time of day, FLAT), tariff 7 (kWh and duration
thresholds) and tariff 14 (time of day, step_size). The reference run in the
same go is a trivial Decimal loop (energy x price per session), so the ratio
is comparable across machines.

Then "reprice a month": October 2025 (31 days, with the end of summer time) of a fleet of
``--stations`` stations with ``--per-day`` sessions each per day, the way CDRs are made: a
session's periods get the tariff's parking grace (``with_parking_grace``), are priced under a
Dutch-style time-of-day tariff and capped by a municipal maximum price (``apply_cap``). Sessions
are commuter-shaped: arrivals around 08:00, 13:00 and 19:00 local; charging at 11 kW, then
tapering at 3.7 kW for the last part; parked afterwards from minutes (daytime) to a night
(evening arrivals). The same reference loop runs over the month's sessions in the same go.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from stekker.domain.price_caps import PriceCapRule, apply_cap
from stekker.domain.pricing import SessionPeriod, price_session, with_parking_grace
from stekker.domain.tariffs import Tariff, tariff_from_ocpi

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ocpi" / "2.2.1"
NAMES = ("tariff_4_complex.json", "tariff_7_first_hour_kwh_free.json", "tariff_14_step_size.json")


def sessions(count: int, seed: int) -> list[list[SessionPeriod]]:
    rng = random.Random(seed)
    year = datetime(2025, 1, 1, tzinfo=UTC)
    result = []
    for _ in range(count):
        start = year + timedelta(minutes=rng.randrange(365 * 24 * 60))
        charged = start + timedelta(minutes=rng.randrange(10, 600))
        parked = charged + timedelta(minutes=rng.randrange(0, 180))
        current = Decimal(rng.randrange(6, 65))
        periods = [SessionPeriod(start, charged, rng.randrange(0, 60_000), True, current, current * 230)]
        if parked > charged:
            periods.append(SessionPeriod(charged, parked, 0, False, Decimal(0), Decimal(0)))
        result.append(periods)
    return result


# Day 0.39/kWh (07:00-23:00), night 0.29/kWh; idle fee 1.20/h from 09:00 to 20:00 in 5-minute steps;
# VAT 21 %. Parking grace 15 min. Municipal cap: 0.79/kWh, 2.40/h parking, 60.00 per session incl. VAT.
MONTH_TARIFF = tariff_from_ocpi(
    {
        "id": "month",
        "currency": "EUR",
        "elements": [
            {
                "price_components": [{"type": "ENERGY", "price": "0.39", "vat": 21, "step_size": 1}],
                "restrictions": {"start_time": "07:00", "end_time": "23:00"},
            },
            {"price_components": [{"type": "ENERGY", "price": "0.29", "vat": 21, "step_size": 1}]},
            {
                "price_components": [{"type": "PARKING_TIME", "price": "1.20", "vat": 21, "step_size": 300}],
                "restrictions": {"start_time": "09:00", "end_time": "20:00"},
            },
        ],
    }
)
MONTH_GRACE = timedelta(minutes=15)
MONTH_CAP = PriceCapRule("EUR", Decimal("0.79"), Decimal("60.00"), Decimal("2.40"))
MONTH_START = datetime(2025, 10, 1)
MONTH_DAYS = 31


def month_sessions(stations: int, per_day: int, seed: int, tz: ZoneInfo) -> list[list[SessionPeriod]]:
    rng = random.Random(seed)
    arrivals = (8, 13, 19)  # local hours around which drivers arrive
    result = []
    for _station in range(stations):
        for day in range(MONTH_DAYS):
            for number in range(per_day):
                hour = arrivals[number % len(arrivals)]
                local = MONTH_START + timedelta(days=day, hours=hour, minutes=rng.randrange(-90, 90))
                start = local.replace(tzinfo=tz).astimezone(UTC)
                fast_s = rng.randrange(15 * 60, 4 * 3600)  # at 11 kW
                slow_s = rng.randrange(0, 45 * 60)  # tapering at 3.7 kW
                fast_end = start + timedelta(seconds=fast_s)
                slow_end = fast_end + timedelta(seconds=slow_s)
                periods = [
                    SessionPeriod(
                        start, fast_end, fast_s * 11_000 // 3600, True, Decimal(16), Decimal(11_000)
                    )
                ]
                if slow_s:
                    periods.append(
                        SessionPeriod(
                            fast_end, slow_end, slow_s * 3_700 // 3600, True, Decimal(16), Decimal(3_700)
                        )
                    )
                parked_s = rng.randrange(8 * 3600, 12 * 3600) if hour >= 19 else rng.randrange(0, 3 * 3600)
                if parked_s:
                    parked_end = slow_end + timedelta(seconds=parked_s)
                    periods.append(SessionPeriod(slow_end, parked_end, 0, False, Decimal(0), Decimal(0)))
                result.append(periods)
    return result


def reprice_month(stations: int, per_day: int, seed: int, tz: ZoneInfo) -> None:
    work = month_sessions(stations, per_day, seed, tz)
    begin = time.perf_counter()
    reference = Decimal(0)
    price = Decimal("0.25")
    for periods in work:
        reference += sum(Decimal(p.energy_wh) for p in periods) * price / 1000
    reference_s = time.perf_counter() - begin

    begin = time.perf_counter()
    total = Decimal(0)
    capped = 0
    for periods in work:
        outcome = apply_cap(
            price_session(MONTH_TARIFF, with_parking_grace(periods, MONTH_GRACE), tz), MONTH_CAP
        )
        total += outcome.total_incl_vat
        capped += outcome.capped_by is not None
    engine_s = time.perf_counter() - begin

    print(
        f"reprice a month: {stations} stations x {per_day}/day x {MONTH_DAYS} days = {len(work)} sessions, "
        f"total incl. VAT {total}, {capped} capped (reference sum {reference:.4f})"
    )
    print(f"  reference loop: {len(work) / reference_s:,.0f} sessions/s ({reference_s:.3f} s)")
    print(f"  grace + price + cap: {len(work) / engine_s:,.0f} sessions/s ({engine_s:.3f} s for the month)")
    print(f"  ratio engine/reference time: {engine_s / reference_s:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stations", type=int, default=1000, help="fleet size for the month")
    parser.add_argument("--per-day", type=int, default=3, help="sessions per station per day")
    args = parser.parse_args()
    tariffs: list[Tariff] = [tariff_from_ocpi(json.loads((FIXTURES / n).read_text())) for n in NAMES]
    tz = ZoneInfo("Europe/Amsterdam")
    work = sessions(args.sessions, args.seed)

    begin = time.perf_counter()
    reference = Decimal(0)
    price = Decimal("0.25")
    for periods in work:
        reference += sum(Decimal(p.energy_wh) for p in periods) * price / 1000
    reference_s = time.perf_counter() - begin

    begin = time.perf_counter()
    total = Decimal(0)
    for number, periods in enumerate(work):
        total += price_session(tariffs[number % len(tariffs)], periods, tz).total_incl_vat
    engine_s = time.perf_counter() - begin

    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"sessions: {len(work)}, total incl. VAT {total} (reference sum {reference:.4f})")
    print(f"reference loop: {len(work) / reference_s:,.0f} sessions/s ({reference_s:.3f} s)")
    print(f"pricing engine: {len(work) / engine_s:,.0f} sessions/s ({engine_s:.3f} s)")
    print(f"ratio engine/reference time: {engine_s / reference_s:.1f}x")
    reprice_month(args.stations, args.per_day, args.seed, tz)


if __name__ == "__main__":
    main()
