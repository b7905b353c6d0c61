"""`stekker problem`: the problems drivers reported from the public EVSE page."""

from __future__ import annotations

from typing import Any

import typer

from stekker.clikit import call_api, console

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


def _print(report: dict[str, Any]) -> None:
    """One report as a block: its head line, the driver's words indented, contact and state."""
    when = str(report["reported_at"])[:19].replace("T", " ")
    kind = _KINDS.get(report["kind"], report["kind"])
    console.print(f"#{report['id']}  {when} UTC  {report['evse_uid']}  {kind}", markup=False, highlight=False)
    for line in (report["message"] or "").splitlines() or ["(no words)"]:
        console.print(f"    {line}", markup=False, highlight=False)
    state = f"handled by {report['handled_by']}" if report["handled_at"] else "open"
    contact = report["contact"] or "none"
    console.print(
        f"    contact: {contact}; language: {report['language']}; {state}", markup=False, highlight=False
    )


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
    reports: list[dict[str, Any]] = call_api("GET", "/api/problem-reports", params=params)
    if not reports:
        console.print("no problem reports" if every else "no open problem reports")
    for report in reports:
        _print(report)


@problem_app.command("handled")
def handled(
    report_id: int = typer.Argument(..., min=1, help="The report's id (from `problem list`)."),
) -> None:
    """Mark a report handled."""
    report = call_api("POST", f"/api/problem-reports/{report_id}/handled")
    console.print(f"problem report {report['id']} at {report['evse_uid']} is handled", markup=False)
