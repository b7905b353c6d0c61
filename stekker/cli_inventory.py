"""`stekker` operator commands: locations, groups and imports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stekker.clikit import api_client, call_api, console, show_record, show_table, unreachable, with_output
from stekker.domain.timeutil import HOME_TIME_ZONE

location_app = typer.Typer(help="Locations: the places stations stand.", no_args_is_help=True)
group_app = typer.Typer(
    help="Station groups (districts, batches) for selection and desired configuration.", no_args_is_help=True
)
import_app = typer.Typer(
    help="Import stations and tokens from CSV or JSON, with a dry run.", no_args_is_help=True
)

_LOCATION_COLUMNS = ["id", "name", "city", "stations", "retired"]


def _location_row(location: dict[str, Any]) -> dict[str, Any]:
    retired = location["retired_at"] and location["retired_at"][:10]
    return {**location, "stations": ", ".join(location["station_ids"]), "retired": retired}


@location_app.command("add")
def location_add(
    name: str,
    address: Annotated[str, typer.Option(help="Street and number.")],
    city: Annotated[str, typer.Option()],
    latitude: Annotated[str, typer.Option("--lat", help="WGS84 degrees, e.g. 52.370216.")],
    longitude: Annotated[str, typer.Option("--lon", help="WGS84 degrees, e.g. 4.895168.")],
    postal_code: Annotated[str | None, typer.Option()] = None,
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-3.")] = "NLD",
    time_zone: Annotated[str, typer.Option(help="IANA time zone.")] = HOME_TIME_ZONE,
    opening_times: Annotated[str | None, typer.Option(help="OCPI Hours as JSON; omit for 24/7.")] = None,
) -> None:
    """Add a location."""
    body: dict[str, Any] = {
        "name": name,
        "address": address,
        "city": city,
        "latitude": latitude,
        "longitude": longitude,
        "postal_code": postal_code,
        "country": country,
        "time_zone": time_zone,
    }
    if opening_times is not None:
        try:
            body["opening_times"] = json.loads(opening_times)
        except ValueError:
            console.print("[red]--opening-times is not JSON[/]")
            raise typer.Exit(2) from None
    location = call_api("POST", "/api/locations", json=body)
    console.print(f"location [bold]{location['id']}[/] {escape(location['name'])} added")


@location_app.command("list")
@with_output
def location_list(
    include_retired: Annotated[bool, typer.Option("--all", help="Also retired locations.")] = False,
) -> None:
    """List locations and the stations in service at each."""
    rows = call_api("GET", "/api/locations", params={"include_retired": include_retired, "limit": 1000})
    show_table([_location_row(r) for r in rows], _LOCATION_COLUMNS, "Locations", data=rows)


@location_app.command("show")
@with_output
def location_show(location_id: int) -> None:
    """Show one location."""
    location = call_api("GET", f"/api/locations/{location_id}")
    shown = _location_row(location)
    fields = [key for key in shown if key != "station_ids"]
    show_record(shown, fields, f"Location {location_id}", data=location)


@location_app.command("retire")
def location_retire(location_id: int) -> None:
    """Retire a location (its stations must be moved or retired first)."""
    call_api("POST", f"/api/locations/{location_id}/retire")
    console.print(f"location {location_id} retired")


@group_app.command("add")
def group_add(name: str, description: Annotated[str | None, typer.Option()] = None) -> None:
    """Create a group."""
    group = call_api("POST", "/api/groups", json={"name": name, "description": description})
    console.print(f"group [bold]{escape(group['name'])}[/] (id {group['id']}) created")


@group_app.command("list")
@with_output
def group_list() -> None:
    """List groups with their number of stations."""
    show_table(call_api("GET", "/api/groups"), ["id", "name", "member_count", "description"], "Groups")


@group_app.command("show")
@with_output
def group_show(group: Annotated[str, typer.Argument(help="Group name or id.")]) -> None:
    """Show a group and its stations."""
    found = call_api("GET", f"/api/groups/{group}")
    fields = ["id", "name", "description", "member_count", "station_ids"]
    show_record(found, [f for f in fields if f in found], f"Group {found['name']}")


@group_app.command("add-stations")
def group_add_stations(
    group: Annotated[str, typer.Argument(help="Group name or id.")], station_ids: list[str]
) -> None:
    """Put stations in a group."""
    found = call_api("POST", f"/api/groups/{group}/members", json={"station_ids": station_ids})
    console.print(f"group {escape(found['name'])}: {found['member_count']} station(s)")


@group_app.command("remove-stations")
def group_remove_stations(
    group: Annotated[str, typer.Argument(help="Group name or id.")], station_ids: list[str]
) -> None:
    """Take stations out of a group."""
    found = call_api("POST", f"/api/groups/{group}/members/remove", json={"station_ids": station_ids})
    console.print(f"group {escape(found['name'])}: {found['member_count']} station(s)")


def _change_text(changes: dict[str, list[Any]]) -> str:
    return "; ".join(
        f"{name}: {old if old is not None else '—'} → {new}" for name, (old, new) in changes.items()
    )


def show_report(report: dict[str, Any]) -> None:
    """The import report as a table (unchanged rows only counted) and the totals."""
    title = f"Import {report['kind']}: " + ("applied" if report["applied"] else "dry run, nothing changed")
    table = Table(title=title)
    for column in ("line", "key", "action", "changes / errors"):
        table.add_column(column)
    colours = {"create": "green", "update": "yellow", "error": "red"}
    for row in report["rows"]:
        if row["action"] == "unchanged":
            continue
        detail = "; ".join(row["errors"]) if row["errors"] else _change_text(row["changes"])
        colour = colours.get(row["action"], "white")
        # file contents are data, never rich markup
        table.add_row(
            Text(str(row["line"])), Text(row["key"]), Text(row["action"], style=colour), Text(detail)
        )
    console.print(table)
    totals = report["totals"]
    console.print(
        f"rows {totals['rows']}: [green]create {totals['create']}[/], [yellow]update {totals['update']}[/], "
        f"unchanged {totals['unchanged']}, [red]error {totals['error']}[/]"
    )
    if report.get("new_groups"):
        console.print(f"new groups: {escape(', '.join(report['new_groups']))}")


def _import(kind: str, path: Path, apply: bool) -> None:
    try:
        body = path.read_bytes()
    except OSError as exc:
        console.print(f"[red]cannot read {escape(str(path))}:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    media = "application/json" if path.suffix.lower() == ".json" else "text/csv"
    try:
        with api_client() as client:
            response = client.post(
                f"/api/import/{kind}",
                content=body,
                params={"dry_run": "false" if apply else "true"},
                headers={"Content-Type": media},
            )
    except httpx.ConnectError:
        unreachable()
    try:
        answer = response.json()
    except ValueError:
        answer = {"detail": response.text}
    report = answer.get("report", answer) if isinstance(answer, dict) else None
    if isinstance(report, dict) and "rows" in report:
        show_report(report)
    if response.status_code >= 400:
        console.print(f"[red]{response.status_code}[/] {escape(str(answer.get('detail')))}")
        raise typer.Exit(1)
    if report and report["totals"]["error"]:
        raise typer.Exit(1)
    if not apply:
        console.print("dry run: run again with --apply to make these changes")


@import_app.command("stations")
def import_stations(
    file: Annotated[Path, typer.Argument(help="CSV (comma or semicolon) or .json file.")],
    apply: Annotated[bool, typer.Option("--apply", help="Make the changes (default: dry run).")] = False,
) -> None:
    """Import stations: id, location_id or location, evse_count, security_profile,
    registration_status, groups (';'-separated), password, notes."""
    _import("stations", file, apply)


@import_app.command("tokens")
def import_tokens(
    file: Annotated[Path, typer.Argument(help="CSV (comma or semicolon) or .json file.")],
    apply: Annotated[bool, typer.Option("--apply", help="Make the changes (default: dry run).")] = False,
) -> None:
    """Import tokens: uid, country_code, party_id, type, status, expires_at, group_id,
    contract_id, visual_number, issuer, allow_concurrent."""
    _import("tokens", file, apply)
