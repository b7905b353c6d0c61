"""`stekker problem`: the problems drivers reported from the public EVSE page."""

from __future__ import annotations

from typing import Any

import typer

from stekker.clikit import call_api, console, show_table

problem_app = typer.Typer(
    help="Problems drivers reported at an EVSE (the public page's 'report a problem').", no_args_is_help=True
)

_COLUMNS = ["id", "reported_at", "evse_uid", "kind", "message", "contact", "language", "handled_by"]


@problem_app.command("list")
def list_problems(
    every: bool = typer.Option(False, "--all", help="Handled ones too (default: only open ones)."),
    station: str | None = typer.Option(None, help="Only this station's."),
    limit: int = typer.Option(100, min=1, max=500),
) -> None:
    """Reported problems, newest first: the EVSE, when, what kind, the driver's words, contact."""
    params: dict[str, Any] = {"state": "all" if every else "open", "limit": limit}
    if station is not None:
        params["station_id"] = station
    rows: list[dict[str, Any]] = call_api("GET", "/api/problem-reports", params=params)
    show_table(rows, _COLUMNS, "Problem reports" if every else "Open problem reports")


@problem_app.command("handled")
def handled(
    report_id: int = typer.Argument(..., min=1, help="The report's id (from `problem list`)."),
) -> None:
    """Mark a report handled."""
    report = call_api("POST", f"/api/problem-reports/{report_id}/handled")
    console.print(f"problem report {report['id']} at {report['evse_uid']} is handled", markup=False)
