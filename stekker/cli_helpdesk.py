"""`stekker` operator commands: the helpdesk."""

from __future__ import annotations

import time
from typing import Any

import typer

from stekker.clikit import call_api, console, show_table, with_output

helpdesk_app = typer.Typer(help="Find a driver's session and stop and release it.", no_args_is_help=True)

_STEP_STYLE = {"ok": "green", "failed": "red", "skipped": "dim", "running": "yellow", "pending": "dim"}
_FLOW_STYLE = {"released": "green", "failed": "red", "timed_out": "red", "running": "yellow"}


def _card(session: dict[str, Any]) -> str:
    return str(session.get("token_uid") or session.get("token_uid_masked") or "")


@helpdesk_app.command("find")
@with_output
def find(
    query: str = typer.Argument(
        help="Station id, EVSE id (or the part on the sticker), STATION/2, or card number."
    ),
    limit: int = typer.Option(20, help="At most this many sessions."),
) -> None:
    """Find sessions and stations by whatever the driver can read out."""
    found = call_api("GET", "/api/helpdesk/search", params={"q": query, "limit": limit})
    sessions = [
        {
            **s,
            "card": _card(s),
            "online": "yes" if s["station_online"] else "OFFLINE",
            "kWh": "" if s["energy_wh"] is None else f"{s['energy_wh'] / 1000:.2f}",
        }
        for s in found["sessions"]
    ]
    if sessions:
        show_table(
            sessions,
            [
                "session_id",
                "status",
                "station_id",
                "online",
                "evse_id",
                "evse_number",
                "connector_status",
                "card",
                "start_time",
                "kWh",
                "matched_by",
            ],
            f"Sessions matching {query!r}",
            data=found,
        )
    stations = [
        {
            **s,
            "online": "yes" if s["online"] else f"OFFLINE since {s['disconnected_at'] or '?'}",
            "connectors": ", ".join(
                f"{c['evse_id'] or c['evse_number']}: {c['status'] or '?'}" for c in s["connectors"]
            ),
        }
        for s in found["stations"]
    ]
    if stations:
        show_table(stations, ["station_id", "online", "connectors", "matched_by"], "Stations", data=found)
    if not sessions and not stations:
        console.print(f"nothing matches {query!r}")
        raise typer.Exit(1)


@helpdesk_app.command("timeline")
@with_output
def timeline(
    station_id: str = typer.Argument(help="The station."),
    hours: float = typer.Option(6, help="How far back (at most 72)."),
    messages: bool = typer.Option(False, "--messages", help="Also the OCPP frames."),
) -> None:
    """What happened at a station in the last hours, oldest first."""
    params: dict[str, Any] = {"hours": hours, "include_messages": messages}
    result = call_api("GET", f"/api/helpdesk/stations/{station_id}/timeline", params=params)
    show_table(
        result["items"], ["at", "kind", "summary"], f"{station_id}: the last {hours:g} hours", data=result
    )
    if result["truncated"]:
        console.print("[yellow]more happened than is shown: the newest items are listed[/]")


def _show_step(step: dict[str, Any]) -> None:
    style = _STEP_STYLE.get(step["status"], "")
    answer = f" (station: {step['answer']})" if step.get("answer") else ""
    message = f": {step['message']}" if step.get("message") else ""
    console.print(f"[{style}]{step['status']:>8}[/] {step['title']}{answer}{message}")


@helpdesk_app.command("stop-release")
def stop_release(
    session_id: int = typer.Argument(help="The session to stop (see `stekker helpdesk find`)."),
    poll: float = typer.Option(1.0, help="Seconds between progress checks."),
) -> None:
    """Stop the session and free the plug; shows each step as it happens."""
    flow = call_api("POST", "/api/helpdesk/stop-and-release", json={"session_id": session_id})
    console.print(
        f"stop and release of session {session_id} at {flow['station_id']} EVSE {flow['evse_number']} "
        f"(flow {flow['id']}, at most {flow['time_limit_seconds']:g} s)"
    )
    shown: set[tuple[str, str]] = set()
    while True:
        for step in flow["steps"]:
            key = (step["name"], step["status"])
            if step["status"] != "pending" and key not in shown:  # each change once, as it happens
                shown.add(key)
                _show_step(step)
        if flow["status"] != "running":
            break
        time.sleep(poll)
        flow = call_api("GET", f"/api/helpdesk/flows/{flow['id']}", params={"wait": 0})
    style = _FLOW_STYLE.get(flow["status"], "")
    console.print(f"[{style}]{flow['status']}[/]: {flow['outcome']}")
    if flow["status"] != "released":
        raise typer.Exit(1)
