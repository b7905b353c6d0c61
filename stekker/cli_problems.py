"""`stekker problem`: the problems drivers reported from the public EVSE page."""

from __future__ import annotations

from typing import Any

import typer

from stekker.clikit import call_api, console, show_table, with_output

problem_app = typer.Typer(
    help="Problems drivers reported at an EVSE (the public page's 'report a problem').", no_args_is_help=True
)

_KINDS = {
    "wont_start": "charging does not start",
    "stopped": "charging stopped unexpectedly",
    "damaged": "station or cable damaged",
    "blocked": "spot taken by a car that is not charging",
    "payment": "payment or charging card does not work",
    "other": "something else",
}
_COLUMNS = ["id", "reported_at", "evse_uid", "problem", "message", "contact", "language", "handled_by"]


@problem_app.command("list")
@with_output
def list_problems(
    every: bool = typer.Option(False, "--all", help="Handled ones too (default: only open ones)."),
    station: str | None = typer.Option(None, help="Only this station's."),
    limit: int = typer.Option(100, min=1, max=500),
) -> None:
    """Reported problems, newest first: the EVSE, when, what is wrong, the driver's words, contact."""
    params: dict[str, Any] = {"state": "all" if every else "open", "limit": limit}
    if station is not None:
        params["station_id"] = station
    reports: list[dict[str, Any]] = call_api("GET", "/api/problem-reports", params=params)
    rows = [{**r, "problem": _KINDS.get(r["kind"], r["kind"])} for r in reports]
    show_table(rows, _COLUMNS, "Problem reports" if every else "Open problem reports", data=reports)


@problem_app.command("handled")
def handled(
    report_id: int = typer.Argument(..., min=1, help="The report's id (from `problem list`)."),
) -> None:
    """Mark a report handled."""
    report = call_api("POST", f"/api/problem-reports/{report_id}/handled")
    console.print(f"problem report {report['id']} at {report['evse_uid']} is handled", markup=False)
