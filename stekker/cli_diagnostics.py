"""`stekker` operator commands: diagnostics and logs."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from stekker.clikit import api_client, call_api, console, show_record, show_table, unreachable, with_output

diagnostics_app = typer.Typer(
    help="Request diagnostics and logs from stations and download them.", no_args_is_help=True
)

_COLUMNS = ["id", "station_id", "log_type", "state", "station_status", "file_name", "file_size", "reason"]


class LogType(StrEnum):
    DIAGNOSTICS = "DiagnosticsLog"
    SECURITY = "SecurityLog"


@diagnostics_app.command("request")
@with_output
def request(
    stations: Annotated[list[str] | None, typer.Argument(help="Station ids.")] = None,
    group: Annotated[str | None, typer.Option(help="Every station of this group.")] = None,
    location_id: Annotated[int | None, typer.Option(help="Every station of this location.")] = None,
    log_type: Annotated[LogType, typer.Option("--type", help="Which log.")] = LogType.DIAGNOSTICS,
    start: Annotated[str | None, typer.Option(help="Oldest entries wanted (ISO 8601).")] = None,
    stop: Annotated[str | None, typer.Option(help="Newest entries wanted (ISO 8601).")] = None,
) -> None:
    """Ask stations to upload diagnostics to Stekker; shows each station's answer."""
    body: dict[str, Any] = {"station_ids": stations or [], "log_type": log_type.value}
    for key, value in (("group", group), ("location_id", location_id), ("start", start), ("stop", stop)):
        if value is not None:
            body[key] = value
    rows = call_api("POST", "/api/diagnostics", json=body)
    show_table(rows, _COLUMNS, "Diagnostics requested")


@diagnostics_app.command("list")
@with_output
def list_requests(
    station: Annotated[str | None, typer.Option(help="Only this station.")] = None,
    state: Annotated[str | None, typer.Option(help="Only this state (e.g. uploaded, expired).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """Diagnostics requests, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if station:
        params["station_id"] = station
    if state:
        params["state"] = state
    show_table(call_api("GET", "/api/diagnostics", params=params), _COLUMNS, "Diagnostics")


@diagnostics_app.command("get")
@with_output
def get(
    request_id: Annotated[int, typer.Argument(help="The request's id.")],
    save: Annotated[Path | None, typer.Option("--save", help="Download the file to this path.")] = None,
) -> None:
    """Show a request; with --save, download its file."""
    row = call_api("GET", f"/api/diagnostics/{request_id}")
    show_record(row, [*_COLUMNS, "file_sha256", "expires_at", "uploaded_at"], f"Diagnostics {request_id}")
    if save is None:
        return
    try:
        with api_client() as client, client.stream("GET", f"/api/diagnostics/{request_id}/file") as response:
            if response.status_code >= 400:
                response.read()
                console.print(f"[red]{response.status_code}[/] {response.json().get('detail')}")
                raise typer.Exit(1)
            with save.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
    except httpx.ConnectError:
        unreachable()
    console.print(f"saved {save} ({save.stat().st_size} bytes)")
