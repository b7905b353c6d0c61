"""`stekker` operator commands: bulk jobs and configuration templates."""

from __future__ import annotations

import json
import time
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stekker.clikit import call_api, console, show_table, with_output
from stekker.invocation import stekker_command

job_app = typer.Typer(
    help="Bulk jobs: one function on many stations, with per-station progress.", no_args_is_help=True
)
template_app = typer.Typer(
    help="Desired configuration per group, and the drift from it.", no_args_is_help=True
)

_STATE_ORDER = (
    "queued",
    "waiting",
    "sent",
    "accepted",
    "rejected",
    "failed",
    "timed_out",
    "expired",
    "cancelled",
)
POLL_SECONDS = 0.5


def _parse_args(pairs: list[str], raw: str | None) -> dict[str, Any]:
    """`--arg k=v` pairs (v read as JSON when it is: numbers, true/false; else text), over `--args`."""
    args: dict[str, Any] = {}
    if raw:
        try:
            loaded = json.loads(raw)
        except ValueError as exc:
            raise typer.BadParameter(f"--args is not JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter("--args must be a JSON object")
        args.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--arg {pair!r}: write key=value")
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


def _counts_line(counts: dict[str, int]) -> str:
    return "  ".join(f"{state} {counts[state]}" for state in _STATE_ORDER if counts.get(state))


def _summary(job: dict[str, Any]) -> None:
    console.print(
        f"job {job['id']}: {job['function']} on {job['total']} station(s), [bold]{job['state']}[/]"
        f" — {_counts_line(job['counts'])}"
    )


def _watch(job_id: int) -> dict[str, Any]:
    """Poll the job until it finishes, with a progress bar; Ctrl-C offers to cancel it."""
    job: dict[str, Any] = call_api("GET", f"/api/jobs/{job_id}", params={"limit": 1})
    try:
        with Progress(
            TextColumn("[bold]job {task.fields[job_id]}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("job", total=job["total"], job_id=job_id, counts="")
            while True:
                progress.update(task, completed=job["done"], counts=_counts_line(job["counts"]))
                if job["finished_at"] is not None:
                    break
                time.sleep(POLL_SECONDS)
                job = call_api("GET", f"/api/jobs/{job_id}", params={"limit": 1})
    except KeyboardInterrupt:
        console.print(f"\njob {job_id} keeps running on the server.")
        if typer.confirm("Cancel it (queued and waiting stations stop; sent ones finish)?", default=False):
            job = call_api("POST", f"/api/jobs/{job_id}/cancel")
            _summary(job)
        else:
            cmd = stekker_command()
            console.print(
                f"Watch it with `{cmd} job show {job_id}`, cancel with `{cmd} job cancel {job_id}`.",
                markup=False,
            )
        raise typer.Exit(130) from None
    return job


def _problems(job_id: int) -> None:
    """The stations that did not accept, with what they said."""
    rows: list[dict[str, Any]] = []
    for state in ("rejected", "failed", "timed_out", "expired"):
        page = call_api("GET", f"/api/jobs/{job_id}", params={"state": state, "limit": 50})
        rows.extend(page["stations"])
    if rows:
        show_table(rows, ["station_id", "state", "status", "error"], "Stations that did not accept")


@job_app.command("run")
def run_job(
    function: str = typer.Argument(..., help="The remote function, e.g. reset, change_availability."),
    station: list[str] = typer.Option([], "--station", "-s", help="A station id (repeatable)."),
    group: str | None = typer.Option(None, "--group", "-g", help="Every station of a group."),
    location: int | None = typer.Option(None, "--location", "-l", help="Every station of a location (id)."),
    vendor: str | None = typer.Option(None, help="Only stations of this vendor."),
    model: str | None = typer.Option(None, help="Only stations of this model."),
    firmware: str | None = typer.Option(None, help="Only stations with this firmware version."),
    ocpp_version: str | None = typer.Option(None, help="Only stations speaking this, e.g. ocpp1.6."),
    online: bool | None = typer.Option(
        None, "--online/--offline", help="Only connected (or offline) stations."
    ),
    every: bool = typer.Option(False, "--all", help="Every active station (no other criterion needed)."),
    arg: list[str] = typer.Option([], "--arg", "-a", help="An argument as key=value (repeatable)."),
    args_json: str | None = typer.Option(None, "--args", help="All arguments as a JSON object."),
    concurrency: int | None = typer.Option(None, help="Stations served at once (default 20)."),
    timeout: float | None = typer.Option(None, help="Seconds each station has to answer."),
    offline_expiry: int | None = typer.Option(
        None, help="Seconds to wait for offline stations (default 24 h)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the stations it would run on."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Show progress until the job is done."),
) -> None:
    """Run FUNCTION on a selection of stations as a bulk job (operator or admin; the helpdesk
    acts on one station at a time: `stekker station reset|unlock|call`)."""
    selection: dict[str, Any] = {"station_ids": station, "all": every}
    for key, value in (
        ("group", group),
        ("location_id", location),
        ("vendor", vendor),
        ("model", model),
        ("firmware_version", firmware),
        ("ocpp_version", ocpp_version),
        ("online", online),
    ):
        if value is not None:
            selection[key] = value
    body: dict[str, Any] = {
        "function": function,
        "args": _parse_args(arg, args_json),
        "selection": selection,
        "dry_run": dry_run,
    }
    limits: dict[str, float | None] = {
        "concurrency": concurrency,
        "timeout": timeout,
        "offline_expiry_seconds": offline_expiry,
    }
    body.update({key: value for key, value in limits.items() if value is not None})
    job = call_api("POST", "/api/jobs", json=body)
    if dry_run:
        console.print(f"{function} would run on {job['count']} station(s): {', '.join(job['station_ids'])}")
        return
    console.print(f"job {job['id']} created: {function} on {job['total']} station(s)")
    if not wait:
        console.print(f"follow it with `{stekker_command()} job show {job['id']}`", markup=False)
        return
    _summary(_watch(job["id"]))
    _problems(job["id"])


@job_app.command("list")
@with_output
def list_jobs(
    state: str | None = typer.Option(None, help="running, completed or cancelled."),
    limit: int = typer.Option(20, help="How many, newest first."),
) -> None:
    """Bulk jobs, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    jobs = call_api("GET", "/api/jobs", params=params)
    rows = [
        {**row, "progress": f"{row['done']}/{row['total']}", "counts": _counts_line(row["counts"])}
        for row in jobs
    ]
    show_table(
        rows, ["id", "function", "state", "progress", "counts", "actor", "created_at"], "Jobs", data=jobs
    )


@job_app.command("show")
@with_output
def show_job(
    job_id: int = typer.Argument(..., help="The job's id."),
    state: str | None = typer.Option(None, help="Only stations in this state."),
    limit: int = typer.Option(100, help="Stations shown."),
) -> None:
    """A job's progress and its stations."""
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    job = call_api("GET", f"/api/jobs/{job_id}", params=params)
    _summary(job)
    show_table(
        job["stations"],
        ["station_id", "state", "status", "attempts", "error"],
        f"Stations of job {job_id}",
        data=job,
    )


@job_app.command("cancel")
def cancel_job(job_id: int = typer.Argument(..., help="The job's id.")) -> None:
    """Cancel a running job: queued and waiting stations stop; sent ones finish (operator or admin)."""
    _summary(call_api("POST", f"/api/jobs/{job_id}/cancel"))


# ---- templates ------------------------------------------------------------------------------


def _items(pairs: list[str], ocpp_version: str | None) -> list[dict[str, str]]:
    items = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--set {pair!r}: write Variable=value")
        items.append({"variable": key.strip(), "value": value, "ocpp_version": ocpp_version or ""})
    return items


@template_app.command("create")
def create_template(
    name: str = typer.Argument(..., help="The template's name."),
    group: str = typer.Option(..., "--group", "-g", help="The station group it is for."),
    set_: list[str] = typer.Option(
        ...,
        "--set",
        help="Variable=value, e.g. HeartbeatInterval=300 (1.6) or "
        "OCPPCommCtrlr.HeartbeatInterval=300 (2.0.1).",
    ),
    ocpp_version: str | None = typer.Option(None, help="Apply these items only to this version."),
    description: str | None = typer.Option(None, help="What the template is for."),
) -> None:
    """Keep a desired configuration for a group."""
    body = {"name": name, "group": group, "items": _items(set_, ocpp_version), "description": description}
    template = call_api("POST", "/api/templates", json=body)
    console.print(f"template {template['name']} (id {template['id']}, version {template['version']}) created")


@template_app.command("update")
def update_template(
    name: str = typer.Argument(..., help="The template's name or id."),
    set_: list[str] = typer.Option(..., "--set", help="Variable=value; replaces every item."),
    ocpp_version: str | None = typer.Option(None, help="Apply these items only to this version."),
) -> None:
    """Replace a template's items (its version goes up)."""
    template = call_api("PATCH", f"/api/templates/{name}", json={"items": _items(set_, ocpp_version)})
    console.print(f"template {template['name']} is now version {template['version']}")


@template_app.command("list")
@with_output
def list_templates(group: str | None = typer.Option(None, help="Only this group's.")) -> None:
    """Configuration templates."""
    templates = call_api("GET", "/api/templates", params={"group": group} if group else {})
    rows = [
        {**row, "items": ", ".join(f"{i['variable']}={i['value']}" for i in row["items"])}
        for row in templates
    ]
    show_table(rows, ["id", "name", "group", "version", "items", "updated_by"], "Templates", data=templates)


@template_app.command("delete")
def delete_template(name: str = typer.Argument(..., help="The template's name or id.")) -> None:
    """Delete a template (audited with its items)."""
    call_api("DELETE", f"/api/templates/{name}")
    console.print(f"template {name} deleted")


@template_app.command("drift")
@with_output
def drift(
    name: str = typer.Argument(..., help="The template's name or id."),
    all_stations: bool = typer.Option(False, "--all", help="Show stations without drift too."),
) -> None:
    """Where the group's stations differ from the template, per key and per station."""
    report = call_api("GET", f"/api/templates/{name}/drift", params={"drifting_only": not all_stations})
    totals = report["totals"]
    console.print(
        f"group {report['group']}: {report['stations_drifting']} of {report['station_count']} "
        "station(s) drift"
        f" — ok {totals['ok']}, differs {totals['differs']}, missing {totals['missing']}, "
        f"unknown {totals['unknown']}"
    )
    keys = [
        {**k, **{state: k["counts"][state] for state in ("ok", "differs", "missing", "unknown")}}
        for k in report["keys"]
    ]
    show_table(keys, ["variable", "desired", "ok", "differs", "missing", "unknown"], "Per key", data=report)
    rows = [
        {"station_id": s["station_id"], **e}
        for s in report["stations"]
        for e in s["entries"]
        if all_stations or e["state"] != "ok"
    ]
    if rows:
        show_table(
            rows, ["station_id", "variable", "desired", "actual", "state", "reported_at"], "Per station"
        )


@template_app.command("apply")
def apply_template(
    name: str = typer.Argument(..., help="The template's name or id."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the stations that would be changed."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Show progress until the job is done."),
) -> None:
    """Set the differing keys on every drifting station, as a bulk job."""
    result = call_api("POST", f"/api/templates/{name}/apply", json={"dry_run": dry_run})
    if result["skipped"]:
        console.print(f"skipped (never connected, OCPP version unknown): {', '.join(result['skipped'])}")
    if result["job"] is None:
        if dry_run:
            console.print(
                f"would change {len(result['station_ids'])} station(s): {', '.join(result['station_ids'])}"
            )
        else:
            console.print("no drift: nothing to apply")
        return
    job = result["job"]
    console.print(f"job {job['id']} created: set_variables on {job['total']} drifting station(s)")
    if wait:
        _summary(_watch(job["id"]))
        _problems(job["id"])


@template_app.command("refresh")
def refresh(
    name: str = typer.Argument(..., help="The template's name or id."),
    wait: bool = typer.Option(False, "--wait", "-w", help="Show progress until the job is done."),
) -> None:
    """Ask the group's stations for their configuration (a get_base_report job)."""
    job = call_api("POST", f"/api/templates/{name}/refresh", json={})
    console.print(f"job {job['id']} created: get_base_report on {job['total']} station(s)")
    if wait:
        _summary(_watch(job["id"]))
