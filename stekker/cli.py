"""The `stekker` command: run the backoffice, simulate stations, and operate it from a shell."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.text import Text

from stekker import (
    cli_cdrs,
    cli_cluster,
    cli_diagnostics,
    cli_export,
    cli_helpdesk,
    cli_inventory,
    cli_jobs,
    cli_ocpi,
    cli_problems,
    cli_reports,
    cli_tariffs,
    cli_users,
)
from stekker.clikit import call_api, call_api_pages, console, show_record, show_table, with_output
from stekker.config import Settings, get_settings, warn_unknown_variables
from stekker.config_check import SettingsError
from stekker.invocation import activation_hint, stekker_command
from stekker.logconfig import setup_logging
from stekker.services.device_model import OCPP16_COMPONENT, parse_label

app = typer.Typer(help="Stekker: an open-source backoffice for Charge Point Operators.", no_args_is_help=True)
station_app = typer.Typer(
    help="Register and inspect charging stations (through the running API).", no_args_is_help=True
)
token_app = typer.Typer(help="Manage tokens: the cards and app ids that may charge.", no_args_is_help=True)
session_app = typer.Typer(help="Watch sessions and start or stop them remotely.", no_args_is_help=True)
app.add_typer(station_app, name="station")
app.add_typer(token_app, name="token")
app.add_typer(session_app, name="session")
for _sub_app, _name in (
    (cli_users.user_app, "user"),
    (cli_inventory.location_app, "location"),
    (cli_inventory.group_app, "group"),
    (cli_inventory.import_app, "import"),
    (cli_jobs.job_app, "job"),
    (cli_jobs.template_app, "template"),
    (cli_diagnostics.diagnostics_app, "diagnostics"),
    (cli_helpdesk.helpdesk_app, "helpdesk"),
    (cli_tariffs.tariff_app, "tariff"),
    (cli_cdrs.cdr_app, "cdr"),
    (cli_reports.report_app, "report"),
    (cli_export.export_app, "export"),
    (cli_ocpi.ocpi_app, "ocpi"),
    (cli_problems.problem_app, "problem"),
    (cli_cluster.cluster_app, "cluster"),
):
    app.add_typer(_sub_app, name=_name)


def _run(coro: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - not on every platform
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro)


def tune_gc() -> None:
    """Fewer, cheaper collections: with thousands of connections the default thresholds make
    full collections stall every station for 100+ ms (measured in bench/)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def cannot_start(reason: object) -> NoReturn:
    """A start refused for a reason the operator can fix (a setting, a file, a port in use):
    one line on stderr, exit code 2, no traceback (it is not a crash)."""
    typer.echo(f"stekker cannot start: {reason}", err=True)
    raise typer.Exit(2)


@app.command()
def serve(
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="What this process runs in a cluster: gateway, api, worker, or a comma list "
            "(e.g. api,worker). Unset: everything (one process). Needs STEKKER_REDIS_URL and PostgreSQL.",
        ),
    ] = None,
) -> None:
    """Run everything in one process: OCPP gateway, operator API (docs at /docs), OCPI, open
    data and the console; or, with --role, this process's part of a cluster (README: "Running a
    cluster"). Settings: STEKKER_* variables, else ./stekker.toml (see the README)."""
    from stekker.app import RedisUnreachable, Stekker
    from stekker.cluster.db_claim import ClusterConfigError, DatabaseInUse
    from stekker.cluster.node import RoleError, parse_roles
    from stekker.db.probe import DatabaseUnreachable
    from stekker.listeners import ListenerError
    from stekker.ocpp.tls import TlsConfigError

    try:
        settings = get_settings()
        server = Stekker(settings, roles=parse_roles(role))
    except (SettingsError, TlsConfigError, RoleError, ClusterConfigError) as exc:
        cannot_start(exc)
    setup_logging(settings.log_level, settings.log_format, server.node.node_id)
    warn_unknown_variables()
    tune_gc()
    try:
        _run(server.run_forever())
    except (ListenerError, DatabaseUnreachable, DatabaseInUse, RedisUnreachable) as exc:
        cannot_start(exc)  # bound and checked before anything is written


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (serve does this by itself too)."""
    from stekker.db.migrate import upgrade_sync

    settings = get_settings()
    upgrade_sync(settings.database_url)
    console.print(f"database at {settings.database_url.split('@')[-1]} is up to date")


@app.command()
def simulate(
    count: Annotated[int, typer.Option(help="How many stations.")] = 3,
    url: Annotated[str | None, typer.Option(help="Base URL; default ws://HOST:OCPP_PORT/ocpp")] = None,
    prefix: Annotated[str, typer.Option(help="Station ids are PREFIX001, PREFIX002, ...")] = "SIM",
    connectors: Annotated[int, typer.Option(help="Connectors per station.")] = 2,
    id_tag: Annotated[
        list[str] | None,
        typer.Option(
            help="The drivers' cards (repeatable), dealt one per connector; with fewer, a driver waits "
            "while its card is in a session elsewhere."
        ),
    ] = None,
    session_every: Annotated[float, typer.Option(help="Mean seconds between sessions.")] = 60.0,
    password: Annotated[str | None, typer.Option(help="Basic-auth password for every station.")] = None,
    ocpp: Annotated[
        str, typer.Option(help="OCPP version: 1.6, 2.0.1, or mixed (odd stations 1.6, even 2.0.1).")
    ] = "1.6",
) -> None:
    """Run simulated OCPP 1.6 and/or 2.0.1 stations that boot, charge and obey remote commands."""
    from stekker.sim.fleet import parse_ocpp_version, run_fleet

    try:
        version = parse_ocpp_version(ocpp)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ocpp") from None
    settings = get_settings()
    setup_logging(settings.log_level)
    base = url or f"ws://{settings.host}:{settings.ocpp_port}/ocpp"
    _run(
        run_fleet(
            base,
            count,
            prefix=prefix,
            connectors=connectors,
            id_tags=id_tag or ["DEMO-0001"],
            session_every=session_every,
            password=password,
            ocpp_version=version,
        )
    )


@app.command()
def demo(
    stations: Annotated[int, typer.Option(help="How many simulated stations.")] = 3,
    ocpp: Annotated[
        str, typer.Option(help="OCPP version of the stations: mixed (odd 1.6, even 2.0.1), 1.6 or 2.0.1.")
    ] = "mixed",
) -> None:
    """Serve on SQLite with a few simulated stations charging: the quickest way to see it work."""
    from stekker.sim.fleet import parse_ocpp_version

    try:
        version = parse_ocpp_version(ocpp)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ocpp") from None
    from stekker.db.probe import DatabaseUnreachable
    from stekker.listeners import ListenerError

    os.environ.setdefault("STEKKER_UNKNOWN_STATIONS", "accept")
    get_settings.cache_clear()
    settings = get_settings()
    setup_logging(settings.log_level)
    warn_unknown_variables()
    try:
        _run(_demo(settings, stations, version))
    except (ListenerError, DatabaseUnreachable) as exc:
        cannot_start(exc)


#: `stekker demo`: the Basic-auth password its simulated stations are registered with and send
#: (a demo runs on loopback; it shows stations with credentials, as production needs them)
DEMO_PASSWORD = "stekker-demo-station"


async def _demo(settings: Settings, count: int, version: str) -> None:
    from stekker.app import Stekker
    from stekker.services.inventory import seed_demo_locations
    from stekker.services.tariffs import seed_demo_tariff
    from stekker.services.tokens import TokenInput, upsert_token
    from stekker.sim import demo_cast
    from stekker.sim.fleet import parse_ocpp_version, run_fleet, version_of

    ocpp_version = parse_ocpp_version(version)

    server = Stekker(settings)
    await server.start()
    drivers = demo_cast.driver_cards(count)  # one card per simulated driver; the reader's are spare
    for tag in [*demo_cast.READER_CARDS, *drivers]:
        await upsert_token(server.ctx, "demo", TokenInput(uid=tag, visual_number=f"demo card {tag}"))
    await seed_demo_tariff(server.ctx)
    await seed_demo_locations(server.ctx, [f"SIM{n:03d}" for n in range(1, count + 1)], DEMO_PASSWORD)
    api = f"http://{settings.host}:{server.http_port}"
    lineup = ", ".join(f"SIM{i:03d} OCPP {version_of(i, ocpp_version)}" for i in range(1, min(count, 4) + 1))
    lineup += ", ..." if count > 4 else ""
    cmd = escape(stekker_command())  # as typed in another shell here: .venv/bin/stekker after make
    activate = activation_hint()
    then_plain = (
        f"  (or first `{escape(activate)}`: then plain `stekker ...` works in that shell)\n"
        if activate
        else ""
    )
    console.print(
        f"[bold green]Stekker is running[/] on {settings.database_url}\n"
        f"  stations connect at ws://{settings.host}:{server.ocpp_port}/ocpp/<station id>\n"
        f"  operator API: {api}/docs   live sessions: {api}/api/sessions?status=active\n"
        f"  open data: {api}/opendata   console: {api}/console/ (first: {cmd} user add NAME --role admin)\n"
        f"  try, in another shell: {cmd} session list   |   {cmd} station list   |   {cmd} cdr list\n"
        + then_plain
        + f"Starting {count} simulated stations ({lineup}). Ctrl-C stops everything."
    )
    stop = asyncio.Event()
    try:
        await run_fleet(
            f"ws://{settings.host}:{server.ocpp_port}/ocpp",
            count,
            prefix="SIM",
            connectors=demo_cast.DEMO_CONNECTORS,
            id_tags=drivers,
            idle_connectors=demo_cast.idle_connectors(count),
            session_every=45.0,
            meter_interval=10.0,
            stop_event=stop,
            ocpp_version=ocpp_version,
            password=DEMO_PASSWORD,
        )
    finally:
        stop.set()
        await server.stop()


# ---- operator commands: they talk to the running API ------------------------------------


@station_app.command("list")
@with_output
def station_list(
    every: Annotated[bool, typer.Option("--all-pages", help="Every station, page after page.")] = False,
) -> None:
    """Stations with their connection state (the first 1000 unless --all-pages)."""
    rows = call_api_pages("/api/stations", {"limit": 1000}, every=every)
    show_table(
        rows,
        ["id", "status", "online", "authentication", "vendor", "model", "firmware_version", "last_seen"],
        "Stations",
    )


@station_app.command("show")
@with_output
def station_show(station_id: str) -> None:
    """One station: its status (Offline, Faulted, Charging, Occupied, Reserved, Available,
    Unavailable, Unknown), connection, make, and each EVSE's status and connectors."""
    station = call_api("GET", f"/api/stations/{quote(station_id, safe='')}")
    show_table(
        [station],
        ["id", "status", "online", "ocpp_version", "vendor", "model", "firmware_version", "last_seen"],
        f"Station {station_id}",
    )
    evses = [
        {
            **evse,
            "connectors": ", ".join(
                f"{c['connector_number']}: {c['standard']} {c['status'] or 'Unknown'}"
                for c in evse["connectors"]
            ),
        }
        for evse in station["evses"]
    ]
    show_table(evses, ["evse_number", "evse_id", "status", "connectors"], "EVSEs")


@station_app.command("add")
def station_add(
    station_id: str,
    password: Annotated[str | None, typer.Option(help="Basic-auth password, 16-40 characters.")] = None,
    evses: Annotated[int, typer.Option(help="Number of EVSEs to create now.")] = 0,
    security_profile: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=3,
            help="Lowest OCPP security profile it may connect at: 1 password, 2 password over TLS, "
            "3 TLS client certificate with CN = station id. Unset: password iff one is given.",
        ),
    ] = None,
    no_authentication: Annotated[
        bool,
        typer.Option(
            "--no-authentication",
            help="Let it connect without any credentials (security profile 0): anyone who knows its id "
            "can then connect as it. Audited and shown as a risk; without it a station needs a "
            "password or security profile 3.",
        ),
    ] = False,
) -> None:
    """Register a station so it may connect (with a password, or a certificate: profile 3)."""
    body: dict[str, Any] = {
        "id": station_id,
        "password": password,
        "evse_count": evses,
        "security_profile": security_profile,
    }
    if no_authentication:
        body["authentication"] = "none"
    console.print_json(json.dumps(call_api("POST", "/api/stations", json=body)))


def _variable_body(label: str) -> dict[str, Any]:
    try:
        ref = parse_label(label)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    return {
        "component": "" if ref.component == OCPP16_COMPONENT else ref.component,
        "variable": ref.variable,
        "component_instance": ref.component_instance,
        "variable_instance": ref.variable_instance,
        "evse": ref.evse_number,
        "connector": ref.connector_number,
        "attribute_type": ref.attribute_type,
    }


_RESULT_COLUMNS = ["label", "status", "value", "reason"]


@station_app.command("config")
@with_output
def station_config(
    station_id: str,
    component: Annotated[str | None, typer.Option(help="Only this component (OCPP16 for 1.6 keys).")] = None,
    refresh: Annotated[bool, typer.Option(help="Ask the station for a full report first.")] = False,
) -> None:
    """The configuration a station reported (2.0.1 device model or 1.6 keys)."""
    if refresh:
        report = call_api(
            "POST", f"/api/stations/{station_id}/reports", json={"report_base": "FullInventory"}
        )
        console.print(f"report requested: {report['status']} (request {report['request_id']})")
    params = {"component": component} if component else {}
    rows = call_api("GET", f"/api/stations/{station_id}/variables", params=params)
    show_table(
        rows,
        ["label", "value", "mutability", "unit", "source", "updated_at"],
        f"Configuration of {station_id}",
    )
    reports = call_api("GET", f"/api/stations/{station_id}/reports", params={"limit": 1})
    if reports:
        console.print(report_line(reports[0]))


def report_line(report: dict[str, Any]) -> str:
    """One line on the latest report: complete, still coming, or which parts never came."""
    head = f"last report (request {report['request_id']}, {len(report['parts_received'])} part(s))"
    missing = ", ".join(str(n) for n in report["missing_parts"])
    if report["complete"]:
        return f"{head}: complete"
    if not report["finished"]:
        return f"{head}: still coming" + (f", parts {missing} missing so far" if missing else "")
    return f"{head}: incomplete, part(s) {missing} never arrived; request a new report"


@station_app.command("get")
@with_output
def station_get(
    station_id: str,
    variables: Annotated[list[str], typer.Argument(help="Component.Variable (2.0.1) or a 1.6 key.")],
) -> None:
    """Ask a station for current values, e.g. `AuthCtrlr.LocalPreAuthorize` or `HeartbeatInterval`."""
    body = {"items": [_variable_body(label) for label in variables]}
    show_table(
        call_api("POST", f"/api/stations/{station_id}/variables/get", json=body), _RESULT_COLUMNS, station_id
    )


@station_app.command("set")
@with_output
def station_set(
    station_id: str,
    assignments: Annotated[list[str], typer.Argument(help="Component.Variable=value or Key=value.")],
) -> None:
    """Change values on a station; shows what it answered for each."""
    items = []
    for assignment in assignments:
        label, sep, value = assignment.partition("=")
        if not sep:
            console.print(f"[red]{assignment!r}: write Component.Variable=value[/]")
            raise typer.Exit(2)
        items.append({**_variable_body(label), "value": value})
    result = call_api("POST", f"/api/stations/{station_id}/variables/set", json={"items": items})
    show_table(result, _RESULT_COLUMNS, station_id)


# ---- remote functions ---------------------------------------------------------------------


def _arg_value(text: str) -> Any:
    """A --arg value: JSON when it reads as JSON (numbers, true, objects), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _function_args(pairs: list[str], raw: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if raw:
        try:
            loaded = json.loads(raw)
        except ValueError as exc:
            console.print(f"[red]--json is not valid JSON:[/] {exc}")
            raise typer.Exit(2) from None
        if not isinstance(loaded, dict):
            console.print('[red]--json must be an object, e.g. \'{"type": "Hard"}\'[/]')
            raise typer.Exit(2)
        args.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            console.print(f"[red]{pair!r}: write --arg key=value[/]")
            raise typer.Exit(2)
        args[key] = _arg_value(value)
    return args


def _exit_if_unknown(result: dict[str, Any]) -> None:
    """202 outcome_unknown: the station received the call, then disconnected without answering."""
    if result.get("error") == "outcome_unknown":
        console.print(Text.assemble(("outcome unknown", "yellow"), " ", str(result.get("detail"))))
        raise typer.Exit(1)


def _run_function(station_id: str, name: str, args: dict[str, Any], timeout: float | None = None) -> None:
    body: dict[str, Any] = {"args": args}
    if timeout is not None:
        body["timeout"] = timeout
    result = call_api("POST", f"/api/stations/{station_id}/functions/{name}", json=body)
    _exit_if_unknown(result)
    colour = "green" if result["accepted"] else "yellow"
    console.print(f"station {station_id} answered [bold {colour}]{result['status']}[/] to {name}")
    extra = {k: v for k, v in result["reply"].items() if k != "status" and v is not None}
    if extra:
        console.print_json(json.dumps(extra))
    if not result["accepted"]:
        raise typer.Exit(1)


@station_app.command("functions")
@with_output
def station_functions() -> None:
    """Every remote function, who may run it, and its arguments."""
    functions = call_api("GET", "/api/stations/functions")
    rows = []
    for row in functions:
        properties = row["args_schema"].get("properties", {})
        required = set(row["args_schema"].get("required", []))
        arguments = ", ".join(f"{k}{'' if k in required else '?'}" for k in properties)
        rows.append({**row, "arguments": arguments})
    show_table(rows, ["name", "summary", "arguments", "roles"], "Remote functions", data=functions)


@station_app.command("call")
def station_call(
    station_id: str,
    function: Annotated[str, typer.Argument(help="A function name (see `stekker station functions`).")],
    arg: Annotated[
        list[str] | None, typer.Option("--arg", help="key=value (value read as JSON if it is); repeatable.")
    ] = None,
    raw_json: Annotated[str | None, typer.Option("--json", help="All arguments as a JSON object.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait for the station (max 300).")] = None,
) -> None:
    """Run any remote function, e.g. `station call CP1 reset --arg type=Hard`."""
    _run_function(station_id, function, _function_args(arg or [], raw_json), timeout)


@station_app.command("reset")
def station_reset(
    station_id: str,
    hard: Annotated[
        bool, typer.Option("--hard", help="Now, ending sessions (default: soft, when idle).")
    ] = False,
) -> None:
    """Restart a station."""
    _run_function(station_id, "reset", {"type": "Hard" if hard else "Soft"})


@station_app.command("unlock")
def station_unlock(station_id: str, evse: int, connector: Annotated[int, typer.Argument()] = 1) -> None:
    """Release the cable in a connector."""
    _run_function(station_id, "unlock_connector", {"evse_number": evse, "connector_number": connector})


@station_app.command("availability")
def station_availability(
    station_id: str,
    state: Annotated[str, typer.Argument(help="operative or inoperative")],
    evse: Annotated[int | None, typer.Option(help="Only this EVSE; default the whole station.")] = None,
) -> None:
    """Take a station or EVSE out of service, or back in."""
    if state.lower() not in ("operative", "inoperative"):
        console.print(f"[red]{state!r}: write operative or inoperative[/]")
        raise typer.Exit(2)
    args: dict[str, Any] = {"operative": state.lower() == "operative"}
    if evse is not None:
        args["evse_number"] = evse
    _run_function(station_id, "change_availability", args)


@station_app.command("trigger")
def station_trigger(
    station_id: str,
    message: Annotated[str, typer.Argument(help="StatusNotification, MeterValues, Heartbeat, ...")],
    evse: Annotated[int | None, typer.Option(help="Only about this EVSE.")] = None,
) -> None:
    """Make a station send a message now."""
    args: dict[str, Any] = {"message": message}
    if evse is not None:
        args["evse_number"] = evse
    _run_function(station_id, "trigger_message", args)


@station_app.command("firmware")
@with_output
def station_firmware(
    station_id: str,
    url: Annotated[str | None, typer.Argument(help="Firmware URL; omit to list the updates so far.")] = None,
    at: Annotated[str | None, typer.Option(help="Download from then on (ISO 8601 with offset).")] = None,
) -> None:
    """Update a station's firmware, or show its firmware updates and their progress."""
    if url is not None:
        args: dict[str, Any] = {"location": url}
        if at is not None:
            args["retrieve_at"] = at
        _run_function(station_id, "update_firmware", args)
        return
    rows = call_api("GET", f"/api/stations/{station_id}/firmware")
    show_table(
        rows,
        ["id", "location", "answer", "status"],
        f"Firmware of {station_id}",
    )


@token_app.command("add")
def token_add(
    uid: str,
    contract_id: Annotated[str | None, typer.Option()] = None,
    blocked: Annotated[bool, typer.Option(help="Create it blocked.")] = False,
    energy_supplier: Annotated[
        str | None, typer.Option(help="The driver's electricity supplier (for the supplier report).")
    ] = None,
    energy_contract_id: Annotated[
        str | None, typer.Option(help="The driver's contract id at that supplier.")
    ] = None,
) -> None:
    """Create or update a token."""
    body = {
        "uid": uid,
        "contract_id": contract_id,
        "status": "blocked" if blocked else "active",
        "energy_supplier": energy_supplier,
        "energy_contract_id": energy_contract_id,
    }
    console.print_json(json.dumps(call_api("PUT", "/api/tokens", json=body)))


@token_app.command("supplier")
def token_supplier(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `stekker token list`).")],
    supplier: Annotated[str | None, typer.Option("--supplier", help="Electricity supplier name.")] = None,
    contract: Annotated[str | None, typer.Option("--contract", help="Contract id at the supplier.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove supplier and contract.")] = False,
) -> None:
    """Set (or clear) the energy supplier contract of a token; new sessions record it at their start."""
    if clear and (supplier or contract):
        raise typer.BadParameter("--clear cannot go with --supplier or --contract")
    if not clear and supplier is None and contract is None:
        raise typer.BadParameter("give --supplier (and optionally --contract), or --clear")
    body: dict[str, Any] = {}
    if clear:
        body = {"energy_supplier": None, "energy_contract_id": None}
    else:
        if supplier is not None:
            body["energy_supplier"] = supplier
        if contract is not None:
            body["energy_contract_id"] = contract
    token = call_api("PATCH", f"/api/tokens/{token_id}", json=body)
    show_table([token], ["id", "uid", "energy_supplier", "energy_contract_id"], "Token")


@token_app.command("list")
@with_output
def token_list(
    every: Annotated[bool, typer.Option("--all-pages", help="Every token, page after page.")] = False,
) -> None:
    """Tokens (the first 1000 unless --all-pages)."""
    show_table(
        call_api_pages("/api/tokens", {"limit": 1000}, every=every),
        ["id", "uid", "type", "status", "contract_id", "energy_supplier", "energy_contract_id", "expires_at"],
        "Tokens",
    )


@session_app.command("list")
@with_output
def session_list(
    active: Annotated[bool, typer.Option("--active/--all", help="Only running sessions.")] = True,
    station: Annotated[str | None, typer.Option(help="Only this station.")] = None,
    every: Annotated[bool, typer.Option("--all-pages", help="Every matching session, page by page.")] = False,
) -> None:
    """Sessions, newest first, with the energy so far (the newest 200 unless --all-pages)."""
    params: dict[str, Any] = {"limit": 200}
    if active:
        params["status"] = "active"
    if station:
        params["station_id"] = station
    rows = call_api_pages("/api/sessions", params, every=every)
    show_table(
        rows,
        [
            "id",
            "station_id",
            "evse_number",
            "token_uid",
            "auth_status",
            "status",
            "start_time",
            "energy_wh",
            "stop_reason",
        ],
        "Sessions",
    )


@session_app.command("show")
@with_output
def session_show(session_id: int) -> None:
    """One session: station, EVSE, token, times, energy so far, who started it remotely."""
    session = call_api("GET", f"/api/sessions/{session_id}")
    show_record(
        session,
        [
            "id",
            "status",
            "station_id",
            "evse_number",
            "connector_number",
            "transaction_id",
            "token_uid",
            "auth_status",
            "charging_state",
            "start_time",
            "stop_time",
            "energy_wh",
            "stop_reason",
            "offline",
            "started_remotely_by",
            "remote_start_id",
        ],
        f"Session {session_id}",
    )


@session_app.command("start")
def session_start(
    station_id: str,
    token: Annotated[str, typer.Option(help="The idTag to charge with.")],
    evse: Annotated[int | None, typer.Option(help="EVSE (1.6 connector) number.")] = None,
    profile: Annotated[
        typer.FileText | None,
        typer.Option(help="A TxProfile for the transaction: a JSON file in set_charging_profile's shape."),
    ] = None,
) -> None:
    """Remote start: ask a station to start charging for a token."""
    body: dict[str, Any] = {"token_uid": token, "evse_number": evse}
    if profile is not None:
        try:
            body["profile"] = json.loads(profile.read())
        except ValueError as exc:
            console.print(f"[red]--profile is not valid JSON:[/] {exc}")
            raise typer.Exit(2) from None
    result = call_api("POST", f"/api/stations/{station_id}/remote-start", json=body)
    _exit_if_unknown(result)
    console.print(f"station {station_id} answered [bold]{result['status']}[/]")
    if result["status"] != "Accepted":
        raise typer.Exit(1)
    if result.get("session_id") is not None:
        session = result["session_id"]
        console.print(f"session {session} began: `{stekker_command()} session show {session}`", markup=False)
    elif result.get("remote_start_id") is not None:
        started = result["remote_start_id"]
        console.print(
            f"the session has not begun yet (the car may not be plugged in); "
            f"follow it with `{stekker_command()} session follow {started}`",
            markup=False,
        )


#: how often `session follow` asks again
FOLLOW_POLL_SECONDS = 0.5


@session_app.command("follow")
def session_follow(
    remote_start_id: Annotated[int, typer.Argument(help="The remote start `session start` named.")],
    wait: Annotated[float, typer.Option(min=0, help="Seconds to keep asking.")] = 60.0,
) -> None:
    """Wait for the session a remote start leads to, and print its id."""
    deadline = time.monotonic() + wait
    while True:
        state = call_api("GET", f"/api/sessions/remote-starts/{remote_start_id}")
        if state["session_id"] is not None:
            session = state["session_id"]
            console.print(
                f"session {session} began at {state['station_id']}: "
                f"`{stekker_command()} session show {session}`",
                markup=False,
            )
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(FOLLOW_POLL_SECONDS)
    answer = state["answer"] or "no answer yet"
    console.print(
        f"remote start {remote_start_id} at {state['station_id']} ({answer}): the session has not begun yet",
        markup=False,
    )
    raise typer.Exit(1)


@session_app.command("stop")
def session_stop(
    session_id: Annotated[int | None, typer.Argument(help="The session's id (see session list).")] = None,
    station: Annotated[
        str | None, typer.Option(help="Instead of an id: the session running on this station.")
    ] = None,
    evse: Annotated[
        int | None, typer.Option(help="With --station: the EVSE (1.6 connector) it runs on.")
    ] = None,
) -> None:
    """Remote stop: ask the station to stop a running session, by id or by where it runs."""
    if (session_id is None) == (station is None):
        console.print("[red]name the session: its id, or --station (and --evse)[/]")
        raise typer.Exit(2)
    if station is not None:
        session_id = _running_session_at(station, evse)
    result = call_api("POST", f"/api/sessions/{session_id}/remote-stop")
    console.print(f"station {result['station_id']} answered [bold]{result['status']}[/]")
    if result["status"] != "Accepted":
        raise typer.Exit(1)


#: A session the station was just asked to start appears once the station reports it started.
_SESSION_APPEARS_WITHIN = 10.0


def _running_session_at(station_id: str, evse: int | None) -> int:
    """The id of the one session running on the station (on that EVSE); exit 1 when none appears
    within a few seconds (a remote start's session shows up when the station reports it)."""
    params = {"status": "active", "station_id": station_id, "limit": 1000}
    deadline = time.monotonic() + _SESSION_APPEARS_WITHIN
    while True:
        rows = [
            row
            for row in call_api_pages("/api/sessions", params, every=True)
            if evse is None or row["evse_number"] == evse
        ]
        if len(rows) == 1:
            return int(rows[0]["id"])
        if len(rows) > 1:
            ids = ", ".join(str(row["id"]) for row in rows)
            console.print(
                f"[red]{len(rows)} sessions run on {station_id} ({ids}): name one, or the --evse[/]"
            )
            raise typer.Exit(2)
        if time.monotonic() >= deadline:
            where = station_id if evse is None else f"{station_id} EVSE {evse}"
            console.print(f"[red]no session is running on {where}[/]")
            raise typer.Exit(1)
        time.sleep(0.5)


def main() -> None:
    """The `stekker` command: `app`, with a settings file or value that cannot be used said in
    one line instead of a traceback (every command reads the settings, if only for the API's
    address)."""
    try:
        app()
    except SettingsError as exc:
        typer.echo(f"stekker cannot start: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
