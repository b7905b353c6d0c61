"""Benchmark orchestrator: baseline vs Stekker, same machine, same load, one table.

For each station count N and each server it starts the server as a subprocess on a free
loopback port, runs bench/loadgen.py (its own process) against it, samples the server's RSS
before the stations connect and at the end of the measured phase, stops the server, and
finally prints a markdown table and writes it with the machine description to
bench/results/latest.md (git-ignored). Paste the table into bench/README.md by hand.

    .venv/bin/python bench/run.py                       # N = 1000,5000, 30 s each, both servers
    .venv/bin/python bench/run.py --quick               # smoke run: N = 100, 5 s
    .venv/bin/python bench/run.py --servers baseline --stations 1000 --duration 20
    .venv/bin/python bench/run.py --quick --ocpp 1.6,2.0.1,mixed   # Stekker per OCPP version

With `--ocpp` other than 1.6 the stations speak OCPP 2.0.1 (or a mix); the baseline speaks 1.6
only, so it runs for 1.6 alone and every row of the same N is compared with that 1.6 baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SERVERS = ("baseline", "stekker", "stekker-pg")
OCPP_VERSIONS = ("1.6", "2.0.1", "mixed")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
STDERR_TAIL_LINES = 15


@dataclass
class ServerSpec:
    """How to start one server under test."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ocpp_port: int
    workdir: Path

    @property
    def url(self) -> str:
        """Base URL stations append their id to."""
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp/"


@dataclass
class RunResult:
    """One (server, N) cell of the table."""

    server: str
    stations: int
    ocpp: str = "1.6"
    ok: bool = False
    failure: str = ""
    stderr_tail: list[str] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)
    rss_before: int | None = None
    rss_after: int | None = None
    server_cpu_s: float | None = None

    @property
    def label(self) -> str:
        """The server, with the OCPP version when it is not 1.6."""
        return self.server if self.ocpp == "1.6" else f"{self.server} ({self.ocpp})"

    @property
    def rss_per_conn_kib(self) -> float | None:
        """Server memory growth per connected station."""
        connected = self.load.get("stations_connected") or 0
        if self.rss_before is None or self.rss_after is None or connected <= 0:
            return None
        return (self.rss_after - self.rss_before) / connected / 1024.0

    @property
    def server_cpu_pct(self) -> float | None:
        """Server CPU time during the measured phase as % of one core."""
        seconds = self.load.get("measured_seconds")
        if self.server_cpu_s is None or not seconds:
            return None
        return 100.0 * self.server_cpu_s / float(seconds)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    """A currently unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_spec(name: str, workdir: Path, args: argparse.Namespace) -> ServerSpec:
    """Command line and environment for `baseline` or `stekker`."""
    port = free_port()
    env = dict(os.environ)
    if name == "baseline":
        argv = [sys.executable, str(BENCH_DIR / "baseline_ocpp_cs.py"), "--port", str(port)]
        if args.baseline_uvloop:
            argv.append("--uvloop")
        return ServerSpec(name, argv, env, port, workdir)
    http_port = free_port()
    while http_port == port:
        http_port = free_port()
    database_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    if name == "stekker-pg":
        database_url = args.pg_database_url
    env.update(
        STEKKER_DATABASE_URL=database_url,
        STEKKER_HOST="127.0.0.1",
        STEKKER_OCPP_PORT=str(port),
        STEKKER_HTTP_PORT=str(http_port),
        STEKKER_UNKNOWN_STATIONS="accept",
        STEKKER_LOG_LEVEL="WARNING",
    )
    return ServerSpec(name, [str(Path(sys.executable).parent / "stekker"), "serve"], env, port, workdir)


def tail(path: Path, lines: int = STDERR_TAIL_LINES) -> list[str]:
    """Last lines of a text file ([] if missing)."""
    try:
        with path.open(errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=lines)]
    except OSError:
        return []


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, limit_s: float) -> str:
    """'' once 127.0.0.1:port accepts, else why not (process exited or timed out)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"server exited with code {proc.returncode} before listening"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return ""
        except OSError:
            time.sleep(0.2)
    return f"port {port} not accepting after {limit_s:.0f} s"


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT, then SIGKILL if it is still running after STOP_TIMEOUT_S."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)


@contextmanager
def running_server(spec: ServerSpec, stderr_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start the server with stdout/stderr to a file; always stop it on exit."""
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            spec.argv, env=spec.env, cwd=spec.workdir, stdin=subprocess.DEVNULL, stdout=err, stderr=err
        )
        try:
            yield proc
        finally:
            stop_server(proc)


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and its descendants (the console script may fork workers)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def rss_bytes(pid: int) -> int | None:
    """Resident memory of the process tree."""
    total = 0
    for p in process_tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total or None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of the process tree so far."""
    total = 0.0
    for p in process_tree(pid):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


# --------------------------------------------------------------------------- load generator


def loadgen_argv(url: str, stations: int, args: argparse.Namespace, ocpp: str = "1.6") -> list[str]:
    """Command line of bench/loadgen.py."""
    return [
        sys.executable,
        str(BENCH_DIR / "loadgen.py"),
        "--ocpp", ocpp,
        "--url", url,
        "--stations", str(stations),
        "--rate", str(args.rate),
        "--duration", str(args.duration),
        "--ramp-concurrency", str(args.ramp_concurrency),
        "--hold-after",
    ]  # fmt: skip


def loadgen_limit_s(stations: int, args: argparse.Namespace) -> float:
    """Wall-clock seconds after which run.py kills the load generator."""
    return max(60.0, stations / 50.0) + float(args.duration) + 120.0


def read_events(stream: IO[str], on_event: Callable[[str], None], log: list[str]) -> None:
    """Call on_event for each `EVENT name` line; keep every other line in `log`."""
    for line in stream:
        line = line.rstrip("\n")
        if line.startswith("EVENT "):
            on_event(line[6:])
        else:
            log.append(line)


def run_loadgen(
    url: str, stations: int, args: argparse.Namespace, server_pid: int, result: RunResult
) -> None:
    """Run loadgen against `url`, sampling server CPU/RSS at its phase events."""
    proc = subprocess.Popen(
        loadgen_argv(url, stations, args, result.ocpp),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    stdin = proc.stdin
    cpu_start: list[float | None] = [None]

    def on_event(name: str) -> None:
        if name == "measured_start":
            cpu_start[0] = cpu_seconds(server_pid)
        elif name == "measured_end":
            result.rss_after = rss_bytes(server_pid)
            cpu_end = cpu_seconds(server_pid)
            if cpu_start[0] is not None and cpu_end is not None:
                result.server_cpu_s = cpu_end - cpu_start[0]
            try:
                stdin.write("release\n")
                stdin.flush()
            except OSError:
                pass  # the load generator already exited; its own timeout releases it anyway

    watchdog = threading.Timer(loadgen_limit_s(stations, args), proc.kill)
    watchdog.daemon = True
    watchdog.start()
    stdout_lines: list[str] = []
    reader = threading.Thread(target=lambda: stdout_lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    stderr_log: list[str] = []
    try:
        read_events(proc.stderr, on_event, stderr_log)
        proc.wait()
        reader.join(5)
    finally:
        watchdog.cancel()
    parse_loadgen_output(proc.returncode, stdout_lines, stderr_log, result)


def parse_loadgen_output(
    code: int, stdout_lines: list[str], stderr_log: list[str], result: RunResult
) -> None:
    """Fill result.load from the JSON line, or mark the run failed."""
    lines = [line for line in stdout_lines if line.strip()]
    try:
        result.load = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        result.load = {}
    if code == 0 and "msgs_per_s" in result.load:
        result.ok = True
        return
    result.failure = result.load.get("error") or f"load generator exited with code {code}"
    result.stderr_tail = stderr_log[-STDERR_TAIL_LINES:]


# --------------------------------------------------------------------------- one cell


@contextmanager
def fresh_pg_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one run (dropped afterwards); yields its async URL."""
    import uuid

    name = f"stekker_bench_{uuid.uuid4().hex[:8]}"

    def psql(sql: str) -> None:
        subprocess.run(["psql", admin_url, "-qAtc", sql], check=True, capture_output=True)

    psql(f'CREATE DATABASE "{name}"')
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_one(name: str, stations: int, args: argparse.Namespace, ocpp: str = "1.6") -> RunResult:
    """Start server `name` (with a fresh PostgreSQL database for stekker-pg), load it with stations
    speaking `ocpp`, stop it."""
    if name != "stekker-pg":
        return _run_one(name, stations, args, ocpp)
    try:
        with fresh_pg_database(args.postgres_admin_url) as url:
            args.pg_database_url = url
            return _run_one(name, stations, args, ocpp)
    except (OSError, subprocess.CalledProcessError) as exc:
        result = RunResult(server=name, stations=stations, ocpp=ocpp)
        result.failure = f"no PostgreSQL at {args.postgres_admin_url}: {exc}"
        return result


def _run_one(name: str, stations: int, args: argparse.Namespace, ocpp: str) -> RunResult:
    """Start server `name`, load it with `stations`, stop it; never raises for server failures."""
    result = RunResult(server=name, stations=stations, ocpp=ocpp)
    with tempfile.TemporaryDirectory(prefix=f"stekker-bench-{name}-") as tmp:
        workdir = Path(tmp)
        spec = server_spec(name, workdir, args)
        stderr_path = workdir / "server.log"
        print(f"[bench] {result.label} N={stations}: starting server on port {spec.ocpp_port}", flush=True)
        try:
            with running_server(spec, stderr_path) as proc:
                why = wait_until_listening(proc, spec.ocpp_port, START_TIMEOUT_S)
                if why:
                    result.failure = why
                else:
                    time.sleep(0.5)  # let start-up allocations settle before the "before" sample
                    result.rss_before = rss_bytes(proc.pid)
                    run_loadgen(spec.url, stations, args, proc.pid, result)
                    if result.ok and proc.poll() is not None:
                        result.ok, result.failure = False, f"server died (code {proc.returncode})"
        except OSError as exc:
            result.failure = f"cannot start server: {exc}"
        if not result.ok:
            result.stderr_tail = result.stderr_tail or tail(stderr_path)
    print(f"[bench] {result.label} N={stations}: {summary_line(result)}", flush=True)
    return result


def summary_line(r: RunResult) -> str:
    """One-line progress report."""
    if not r.ok:
        return f"FAILED: {r.failure}"
    load = r.load
    return (
        f"{load['stations_connected']}/{r.stations} connected, {load['msgs_per_s']} msg/s, "
        f"p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, errors {load['errors']}"
    )


# --------------------------------------------------------------------------- report


def fmt(value: float | int | None, digits: int = 1) -> str:
    """Number for the table, '-' when unknown."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def ratio_cell(r: RunResult, baseline: RunResult | None) -> str:
    """Stekker vs baseline for the same N: msgs/s ratio and p99 ratio."""
    if r.server == "baseline" and r.ocpp == "1.6":
        return "reference" if r.ok else "-"
    if not r.ok or baseline is None or not baseline.ok:
        return "-"
    parts = []
    if baseline.load.get("msgs_per_s"):
        parts.append(f"msgs/s x{r.load['msgs_per_s'] / baseline.load['msgs_per_s']:.2f}")
    if baseline.load.get("p99_ms") and r.load.get("p99_ms") is not None:
        parts.append(f"p99 x{r.load['p99_ms'] / baseline.load['p99_ms']:.2f}")
    return ", ".join(parts) or "-"


TABLE_HEADER = (
    "| server | stations | connected | msgs/s | p50 ms | p99 ms | max ms | errors | RSS per conn KiB "
    "| server CPU % | vs baseline (same N) |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def table_row(r: RunResult, baseline: RunResult | None) -> str:
    """One markdown row."""
    if not r.ok:
        reason = r.failure.replace("|", "\\|")
        return f"| {r.label} | {r.stations} | FAILED | - | - | - | - | - | - | - | {reason} |"
    load = r.load
    cells = [
        r.label,
        str(r.stations),
        str(load["stations_connected"]),
        fmt(load["msgs_per_s"]),
        fmt(load["p50_ms"], 2),
        fmt(load["p99_ms"], 2),
        fmt(load["max_ms"], 2),
        str(load["errors"]),
        fmt(r.rss_per_conn_kib),
        fmt(r.server_cpu_pct, 0),
        ratio_cell(r, baseline),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown_table(results: list[RunResult]) -> str:
    """The results table, baseline row first for each N."""
    baselines = {r.stations: r for r in results if r.server == "baseline" and r.ocpp == "1.6"}
    rows = [table_row(r, baselines.get(r.stations)) for r in results]
    return "\n".join([TABLE_HEADER, *rows])


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    """HEAD commit (+ '-dirty' if the tree has changes), or a note when there is none."""

    def git(*a: str) -> str:
        out = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    return (head or "no commit yet") + ("-dirty" if dirty else "")


def machine_info() -> dict[str, str]:
    """What the numbers were measured on."""
    mem = psutil.virtual_memory().total
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": f"{psutil.cpu_count(logical=True)} logical / {psutil.cpu_count(logical=False)} physical",
        "ram": f"{mem / 2**30:.1f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "git commit": git_commit(),
    }


def load_description(args: argparse.Namespace) -> str:
    """The load parameters as one line."""
    mixes = {
        "1.6": "1.6: 4 MeterValues : 1 Heartbeat",
        "2.0.1": "2.0.1: 7 TransactionEvent Updated : 2 Heartbeat : 1 StatusNotification",
        "mixed": "mixed: half the stations each",
    }
    mix = "; ".join(mixes[v] for v in args.ocpp_versions)
    return (
        f"rate {args.rate} msg/s per station (jittered; {mix}), measured phase "
        f"{args.duration:g} s, connections opened {args.ramp_concurrency} at a time, "
        f"baseline loop: {'uvloop' if args.baseline_uvloop else 'asyncio (documented style)'}"
    )


def failures_section(results: list[RunResult]) -> str:
    """Stderr tails of failed runs."""
    parts = []
    for r in results:
        if r.ok:
            continue
        body = "\n".join(r.stderr_tail) or "(no output)"
        parts.append(f"### {r.server}, N={r.stations}: {r.failure}\n\n```\n{body}\n```\n")
    return "\n## Failures\n\n" + "\n".join(parts) if parts else ""


def report(results: list[RunResult], args: argparse.Namespace) -> str:
    """Full markdown report: machine, load, table, failures, raw numbers."""
    machine = "\n".join(f"- {k}: {v}" for k, v in machine_info().items())
    raw = json.dumps(
        [
            {"server": r.server, "ocpp": r.ocpp, "stations": r.stations, "ok": r.ok, "failure": r.failure,
             **r.load, "rss_before": r.rss_before, "rss_after": r.rss_after, "server_cpu_s": r.server_cpu_s}
            for r in results
        ],
        indent=1,
    )  # fmt: skip
    return (
        f"# Stekker benchmark\n\n## Machine\n\n{machine}\n\n## Load\n\n{load_description(args)}\n\n"
        f"## Results\n\n{markdown_table(results)}\n"
        f"{failures_section(results)}\n## Raw\n\n```json\n{raw}\n```\n"
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description="Benchmark Stekker against the ocpp-package baseline.")
    p.add_argument("--stations", default="1000,5000", help="comma-separated station counts")
    p.add_argument(
        "--servers", default="baseline,stekker", help="comma-separated: baseline,stekker,stekker-pg"
    )
    p.add_argument(
        "--postgres-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="for stekker-pg: a server where a throw-away database can be created",
    )
    p.add_argument(
        "--ocpp",
        default="1.6",
        help="comma-separated OCPP versions of the stations: 1.6,2.0.1,mixed (the baseline: 1.6 only)",
    )
    p.add_argument("--rate", type=float, default=0.2, help="messages per second per station")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of the measured phase")
    p.add_argument("--ramp-concurrency", type=int, default=200)
    p.add_argument("--baseline-uvloop", action="store_true", help="run the baseline on uvloop")
    p.add_argument("--quick", action="store_true", help="smoke run: N=100, 5 s")
    p.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.md")
    args = p.parse_args(argv)
    if args.quick:
        args.stations, args.duration = "100", 5.0
    args.station_counts = [int(n) for n in str(args.stations).split(",") if n.strip()]
    args.server_names = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(args.server_names) - set(SERVERS)
    if unknown:
        p.error(f"unknown server(s): {', '.join(sorted(unknown))}; choose from {', '.join(SERVERS)}")
    args.ocpp_versions = [v.strip() for v in str(args.ocpp).split(",") if v.strip()]
    unknown = set(args.ocpp_versions) - set(OCPP_VERSIONS)
    if unknown or not args.ocpp_versions:
        p.error(
            f"unknown OCPP version(s): {', '.join(sorted(unknown))}; choose from {', '.join(OCPP_VERSIONS)}"
        )
    return args


def planned_runs(args: argparse.Namespace) -> list[tuple[str, int, str]]:
    """(server, N, OCPP version) for every run, the baseline first for each N. The baseline speaks
    OCPP 1.6 only: it runs when 1.6 is among the versions."""
    runs: list[tuple[str, int, str]] = []
    for n in args.station_counts:
        if "baseline" in args.server_names and "1.6" in args.ocpp_versions:
            runs.append(("baseline", n, "1.6"))
        others = [name for name in args.server_names if name != "baseline"]
        runs += [(name, n, version) for version in args.ocpp_versions for name in others]
    return runs


def main(argv: list[str] | None = None) -> int:
    """Run every (N, server) pair, print and write the report; exit 1 if any run failed."""
    args = parse_args(argv)
    runs = planned_runs(args)
    if "baseline" in args.server_names and "1.6" not in args.ocpp_versions:
        print(
            "[bench] the baseline speaks OCPP 1.6 only: add 1.6 to --ocpp to compare against it", flush=True
        )
    results = [run_one(name, n, args, version) for name, n, version in runs]
    text = report(results, args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print()
    print(markdown_table(results))
    print(f"\nFull report (machine, load, raw numbers): {args.output}")
    print(
        "To publish: paste the table and the Machine/Load lines into the Results section of bench/README.md."
    )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
