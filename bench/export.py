"""Export of 10 million meter values (requirement 169): rows/s and peak memory per format.

    .venv/bin/python bench/export.py                      # 10,000,000 rows (generated once, cached)
    .venv/bin/python bench/export.py --rows 1000000       # a quicker run
    .venv/bin/python bench/export.py --formats csv --rows 100000

The database is a SQLite file with the real schema (our migrations), filled once with `--rows`
meter values of 1,000 stations over a year (energy register, power, current per phase, SoC)
and their sessions, and kept in `.cache/bench-export/` so later runs skip the generation.

Each export runs in a subprocess of its own, so each one's peak memory is its own: the child
reports `ru_maxrss` (the RSS high-water mark) after its imports and set-up, and again at the
end; the difference is what the export itself needed. The bytes are counted and dropped (as a
socket would take them), so the disk is not measured. In the same go:
- `stekker csv|jsonl|parquet`: `stekker.export.stream.export_bytes`, the code behind
  `GET /api/exports/meter_values` and `stekker export meter_values`, through the async engine;
- `stekker csv, pseudonymised`: the same with the pseudonymiser (what the municipality gets);
- `baseline: sqlite3 + csv`: the fastest simple streaming export: the sqlite3 module's cursor
  straight into csv.writer, no types, no guard: the reference for rows/s;
- `baseline: fetchall, then csv`: the naive export, every row in memory first, then written;
  its memory grows with the rows, so by default it only runs up to 2,000,000 rows
  (`--naive-max`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CACHE = ROOT / ".cache" / "bench-export"
STATIONS = 1_000
VALUES_PER_SESSION = 120  # 20 samples of 6 measurands: an hour and a half at 5-minute intervals
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a datetime in SQLite


# --------------------------------------------------------------------------- the database


def database_path(rows: int) -> Path:
    return CACHE / f"meter_values-{rows}.db"


def generate(path: Path, rows: int, seed: int = 1) -> float:
    """The real schema (migrations), then `rows` meter values in big transactions. Seconds taken."""
    from stekker.db.migrate import upgrade_sync

    began = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    upgrade_sync(f"sqlite+aiosqlite:///{partial}")
    rng = random.Random(seed)
    db = sqlite3.connect(partial)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    now = datetime(2026, 1, 1).strftime(_SQLITE_TIME)
    db.executemany(
        "INSERT INTO charging_stations (id, registration_status, online, reconnect_count, created_at) "
        "VALUES (?, 'Accepted', 0, 0, ?)",
        [(f"CP{n:04d}", now) for n in range(STATIONS)],
    )
    sessions = -(-rows // VALUES_PER_SESSION)
    written = 0
    for session_id in range(1, sessions + 1):
        station = f"CP{rng.randrange(STATIONS):04d}"
        begin = start + timedelta(seconds=rng.randrange(365 * 86_400))
        register = rng.randrange(10**6, 10**8)
        db.execute(
            "INSERT INTO sessions (id, station_id, evse_number, connector_number, start_key, token_uid, "
            "auth_status, status, start_time, meter_start_wh, offline, created_at, updated_at) "
            "VALUES (?, ?, 1, 1, ?, ?, 'Accepted', 'completed', ?, ?, 0, ?, ?)",
            (
                session_id,
                station,
                f"k{session_id}",
                f"{rng.getrandbits(56):014X}",
                begin.strftime(_SQLITE_TIME),
                register,
                now,
                now,
            ),
        )
        batch = []
        for sample in range(VALUES_PER_SESSION // 6):
            at = (begin + timedelta(minutes=5 * sample)).strftime(_SQLITE_TIME)
            register += rng.randrange(0, 1_000)
            amps = rng.uniform(6, 32)
            for measurand, phase, unit, value in (
                ("Energy.Active.Import.Register", None, "Wh", str(register)),
                ("Power.Active.Import", None, "W", f"{amps * 690:.1f}"),
                ("Current.Import", "L1", "A", f"{amps:.2f}"),
                ("Current.Import", "L2", "A", f"{amps * 0.98:.2f}"),
                ("Current.Import", "L3", "A", f"{amps * 1.01:.2f}"),
                ("SoC", None, "Percent", str(min(100, 20 + sample * 4))),
            ):
                batch.append((station, session_id, at, measurand, phase, unit, value))
        batch = batch[: rows - written]
        # two random sessions of one station can sample at the same moment: the schema stores
        # such a sample once (ux_meter_values_sample), so count what was stored
        cursor = db.executemany(
            "INSERT INTO meter_values (station_id, session_id, evse_number, connector_number, timestamp, "
            "measurand, phase, unit, context, location, format, value) "
            "VALUES (?, ?, 1, 1, ?, ?, ?, ?, 'Sample.Periodic', 'Outlet', 'Raw', ?) ON CONFLICT DO NOTHING",
            batch,
        )
        written += cursor.rowcount
        if session_id % 2_000 == 0:
            db.commit()
            print(f"\r  generated {written:,} of {rows:,} meter values", end="", file=sys.stderr, flush=True)
        if written >= rows:
            break
    db.commit()
    db.execute("ANALYZE")
    db.close()
    print(file=sys.stderr)
    partial.rename(path)
    return time.perf_counter() - began


# --------------------------------------------------------------------------- one export (child)


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


class _Discard:
    """Where the bytes go: counted, then dropped."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: str | bytes) -> int:
        self.bytes += len(data)
        return len(data)


async def _stekker(path: Path, fmt: str, pseudonymise: bool) -> dict[str, Any]:
    from sqlalchemy import text

    from stekker.db.engine import make_engine, make_session_factory
    from stekker.export.formats import WRITERS, ExportFormat
    from stekker.export.pseudonym import Pseudonymiser
    from stekker.export.records import METER_VALUES
    from stekker.export.stream import ExportFilter, ExportProgress, export_bytes

    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    factory = make_session_factory(engine)
    writer = WRITERS[ExportFormat(fmt)](METER_VALUES.columns, {"kind": METER_VALUES.name})
    pseudonymiser = Pseudonymiser(b"bench-key-bench-key-bench-key-32") if pseudonymise else None
    progress = ExportProgress()
    sink = _Discard()
    async with factory() as db:  # connect and warm up before the baseline memory reading
        await db.execute(text("SELECT 1"))
    setup = _rss_kib()
    began = time.perf_counter()
    async for chunk in export_bytes(factory, METER_VALUES, ExportFilter(), writer, pseudonymiser, progress):
        sink.write(chunk)
    seconds = time.perf_counter() - began
    await engine.dispose()
    return {"rows": progress.rows, "bytes": sink.bytes, "seconds": seconds, "setup_kib": setup}


def _baseline_stream(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(path)
    setup = _rss_kib()
    began = time.perf_counter()
    sink = _Discard()
    writer = csv.writer(sink, lineterminator="\r\n")  # type: ignore[arg-type]
    cursor = db.execute("SELECT * FROM meter_values ORDER BY id")
    writer.writerow([d[0] for d in cursor.description])
    rows = 0
    while batch := cursor.fetchmany(5_000):
        writer.writerows(batch)
        rows += len(batch)
    return {"rows": rows, "bytes": sink.bytes, "seconds": time.perf_counter() - began, "setup_kib": setup}


def _baseline_fetchall(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(path)
    setup = _rss_kib()
    began = time.perf_counter()
    cursor = db.execute("SELECT * FROM meter_values ORDER BY id")
    header = [d[0] for d in cursor.description]
    everything = cursor.fetchall()
    sink = _Discard()
    writer = csv.writer(sink, lineterminator="\r\n")  # type: ignore[arg-type]
    writer.writerow(header)
    writer.writerows(everything)
    return {
        "rows": len(everything),
        "bytes": sink.bytes,
        "seconds": time.perf_counter() - began,
        "setup_kib": setup,
    }


def child(path: Path, what: str) -> None:
    """Run one export and print its numbers as one JSON line."""
    if what == "baseline-stream":
        result = _baseline_stream(path)
    elif what == "baseline-fetchall":
        result = _baseline_fetchall(path)
    else:
        fmt, _, extra = what.partition("+")
        result = asyncio.run(_stekker(path, fmt, pseudonymise=extra == "pseudonymised"))
    result["peak_kib"] = _rss_kib()
    print(json.dumps(result))


# --------------------------------------------------------------------------- the run (parent)

LABELS = {
    "baseline-stream": "baseline: sqlite3 + csv (streamed)",
    "baseline-fetchall": "baseline: fetchall, then csv",
    "csv": "stekker csv",
    "csv+pseudonymised": "stekker csv, pseudonymised",
    "jsonl": "stekker jsonl",
    "parquet": "stekker parquet",
}


def run_child(path: Path, what: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", what, "--db", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{what} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def table(results: list[tuple[str, dict[str, Any]]], reference: float | None) -> str:
    lines = [
        "| export | rows | rows/s | time s | output MB | peak RSS MiB | export's own MiB "
        "| rows/s vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for what, r in results:
        rate = r["rows"] / r["seconds"] if r["seconds"] else 0.0
        ratio = (
            "reference" if what == "baseline-stream" else (f"x{rate / reference:.2f}" if reference else "-")
        )
        lines.append(
            f"| {LABELS[what]} | {r['rows']:,} | {rate:,.0f} | {r['seconds']:.1f} | {r['bytes'] / 1e6:,.0f} "
            f"| {r['peak_kib'] / 1024:,.0f} | {(r['peak_kib'] - r['setup_kib']) / 1024:,.0f} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000, help="meter values in the database")
    p.add_argument("--formats", default="csv,jsonl,parquet", help="comma-separated: csv, jsonl, parquet")
    p.add_argument("--pseudonymised", action=argparse.BooleanOptionalAction, default=True,
                   help="also run CSV with the pseudonymiser")  # fmt: skip
    p.add_argument("--naive-max", type=int, default=2_000_000, help="run the fetchall baseline up to this")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.db, args.child)
        return 0

    sys.path.insert(0, str(BENCH_DIR))
    from run import machine_info

    path = database_path(args.rows)
    if path.exists():
        print(f"database: {path} (cached)", file=sys.stderr)
    else:
        print(f"generating {args.rows:,} meter values into {path} ...", file=sys.stderr)
        print(f"  took {generate(path, args.rows):.0f} s", file=sys.stderr)
    runs = ["baseline-stream"]
    if args.rows <= args.naive_max:
        runs.append("baseline-fetchall")
    for fmt in args.formats.split(","):
        runs.append(fmt.strip())
        if fmt.strip() == "csv" and args.pseudonymised:
            runs.append("csv+pseudonymised")
    results = []
    for what in runs:
        print(f"  {LABELS[what]} ...", file=sys.stderr, flush=True)
        results.append((what, run_child(path, what)))
    base = dict(results)["baseline-stream"]
    reference = base["rows"] / base["seconds"] if base["seconds"] else None
    info = machine_info()
    print(
        f"Machine: {info['cpu']}, {info['cores']} cores ({os.cpu_count()} nproc), {info['ram']} RAM, "
        f"{info['python']}, {info['os']}, {info['date']}, git {info['git commit']}."
    )
    size = path.stat().st_size / 1e9
    print(f"Command: .venv/bin/python bench/export.py --rows {args.rows}; database {size:.2f} GB")
    if args.rows > args.naive_max:
        print(f"(fetchall baseline skipped above {args.naive_max:,} rows: its memory grows with the rows)")
    print()
    print(table(results, reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
