"""`stekker cdr`: list, show and correct the CDRs (bills) of finished sessions."""

from __future__ import annotations

import json
from typing import Any

import typer

from stekker.clikit import call_api, call_api_pages, console, show_table

cdr_app = typer.Typer(help="Charge detail records: the bills of finished sessions.", no_args_is_help=True)

_COLUMNS = ["cdr", "kind", "station", "ended (UTC)", "kWh", "cost incl. VAT", "capped"]


def _line(row: dict[str, Any]) -> dict[str, Any]:
    """A CDR as one narrow table row (the full record is `stekker cdr show` / `--json`)."""
    return {
        "cdr": row["cdr_uid"],
        "kind": row["kind"],
        "station": row["station_id"],
        "ended (UTC)": str(row["end_time"])[:16].replace("T", " "),
        "kWh": f"{row['total_energy_wh'] / 1000:.3f}",
        "cost incl. VAT": f"{row['currency']} {row['total_cost_incl_vat']}",
        "capped": row.get("capped_by") or "",
    }


@cdr_app.command("list")
def list_cdrs(
    station: str | None = typer.Option(None, help="Only this station."),
    location: int | None = typer.Option(None, help="Only this location id."),
    party: str | None = typer.Option(None, help="Only this eMSP, e.g. NL-ABC."),
    since: str | None = typer.Option(None, "--from", help="End time at or after (ISO 8601)."),
    until: str | None = typer.Option(None, "--to", help="End time before (ISO 8601)."),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    every: bool = typer.Option(False, "--all-pages", help="Every matching CDR, `limit` per request."),
) -> None:
    """CDRs, newest first (the newest `limit` unless --all-pages)."""
    params: dict[str, Any] = {"limit": limit}
    for key, value in (
        ("station_id", station),
        ("location_id", location),
        ("party", party),
        ("from", since),
        ("to", until),
    ):
        if value is not None:
            params[key] = value
    rows: list[dict[str, Any]] = call_api_pages("/api/cdrs", params, every=every)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    show_table([_line(r) for r in rows], _COLUMNS, "CDRs")


@cdr_app.command("show")
def show(uid: str = typer.Argument(..., help="The CDR id, e.g. CDR-42-1.")) -> None:
    """One CDR: our fields and its OCPI document."""
    cdr = call_api("GET", f"/api/cdrs/{uid}")
    console.print_json(json.dumps(cdr))


@cdr_app.command("correct")
def correct(
    uid: str = typer.Argument(..., help="The CDR to correct."),
    reason: str = typer.Option(..., help="Why (kept with the credit and the new CDR)."),
    energy_wh: int | None = typer.Option(None, "--energy-wh", min=0, help="The right energy in Wh."),
    stop_time: str | None = typer.Option(None, "--stop-time", help="The right end (ISO 8601)."),
) -> None:
    """Correct a CDR: a credit CDR cancels it and a new CDR replaces it."""
    body: dict[str, Any] = {"reason": reason}
    if energy_wh is not None:
        body["energy_wh"] = energy_wh
    if stop_time is not None:
        body["stop_time"] = stop_time
    result = call_api("POST", f"/api/cdrs/{uid}/corrections", json=body)
    credit, new = result["credit"], result["cdr"]
    console.print(
        f"credited {uid} with {credit['cdr_uid']} ({credit['total_cost_incl_vat']} {credit['currency']}); "
        f"new CDR {new['cdr_uid']}: {new['total_cost_incl_vat']} {new['currency']}",
        markup=False,
    )
