"""Price N synthetic sessions with the OCPI pricing engine and print sessions/s.

    .venv/bin/python bench/pricing.py [--sessions 100000] [--seed 1]

Sessions are deterministic (seeded): a charging period of 10 min to 10 h with
0-60 kWh and 6-64 A, then 0-3 h parked, starting at any minute of 2025 in
Europe/Amsterdam, priced in turn under the official OCPI examples tariff 4
(day of week, current, time of day, FLAT), tariff 7 (kWh and duration
thresholds) and tariff 14 (time of day, step_size). The reference run in the
same go is a trivial Decimal loop (energy x price per session), so the ratio
is comparable across machines.
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

from stekker.domain.pricing import SessionPeriod, price_session
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
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


if __name__ == "__main__":
    main()
