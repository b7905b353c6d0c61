"""`stekker cdr`: list, show and correct the CDRs (bills) of finished sessions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import typer

from stekker.clikit import (
    Output,
    call_api,
    call_api_pages,
    choose_output,
    console,
    show_record,
    show_table,
    with_output,
)
from stekker.domain.money import amount_text

cdr_app = typer.Typer(help="Charge detail records: the bills of finished sessions.", no_args_is_help=True)

_COLUMNS = ["cdr", "kind", "station", "ended (UTC)", "kWh", "cost incl. VAT", "capped"]


def _cost(cdr: dict[str, Any]) -> str:
    """A CDR's total incl. VAT as billed: whole cents (`stekker.domain.money`), `€12.46`."""
    return amount_text(Decimal(str(cdr["total_cost_incl_vat"])), str(cdr["currency"]), "en")


def _line(row: dict[str, Any]) -> dict[str, Any]:
    """A CDR as one narrow table row (the full record is `stekker cdr show` / `--json`)."""
    return {
        "cdr": row["cdr_uid"],
        "kind": row["kind"],
        "station": row["station_id"],
        "ended (UTC)": str(row["end_time"])[:16].replace("T", " "),
        "kWh": f"{row['total_energy_wh'] / 1000:.3f}",
        "cost incl. VAT": _cost(row),
        "capped": row.get("capped_by") or "",
    }


@cdr_app.command("list")
@with_output
def list_cdrs(
    station: str | None = typer.Option(None, help="Only this station."),
    location: int | None = typer.Option(None, help="Only this location id."),
    party: str | None = typer.Option(None, help="Only this eMSP, e.g. NL-ABC."),
    since: str | None = typer.Option(None, "--from", help="End time at or after (ISO 8601)."),
    until: str | None = typer.Option(None, "--to", help="End time before (ISO 8601)."),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", hidden=True, help="The same as --output json."),
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
    if as_json:
        choose_output(Output.JSON)
    rows: list[dict[str, Any]] = call_api_pages("/api/cdrs", params, every=every)
    show_table([_line(r) for r in rows], _COLUMNS, "CDRs", data=rows)


@cdr_app.command("show")
@with_output
def show(uid: str = typer.Argument(..., help="The CDR id, e.g. CDR-42-1.")) -> None:
    """One CDR: our fields and its OCPI document (in full with --output json)."""
    cdr = call_api("GET", f"/api/cdrs/{uid}")
    show_record({**cdr, "cost incl. VAT": _cost(cdr)}, _shown_fields(cdr), f"CDR {uid}", data=cdr)


def _shown_fields(cdr: dict[str, Any]) -> list[str]:
    """Every field, the total as people read it after the amounts."""
    fields = list(cdr)
    at = fields.index("total_cost_incl_vat") + 1 if "total_cost_incl_vat" in fields else len(fields)
    return [*fields[:at], "cost incl. VAT", *fields[at:]]


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
        f"credited {uid} with {credit['cdr_uid']} ({_cost(credit)}); new CDR {new['cdr_uid']}: {_cost(new)}",
        markup=False,
    )
