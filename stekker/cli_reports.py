"""`stekker report ...`: reports from the running API, e.g. energy per supplier per 15 minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.text import Text

from stekker.clikit import api_client, call_api, console, show_table, unreachable, with_output

report_app = typer.Typer(help="Reports, e.g. energy per supplier per 15 minutes.", no_args_is_help=True)


def _download(params: dict[str, Any], target: Path) -> None:
    """Stream the CSV to `target`, so months of quarter hours never sit in memory."""
    try:
        with (
            api_client() as client,
            client.stream("GET", "/api/reports/energy-suppliers", params=params) as r,
        ):
            if r.status_code >= 400:
                r.read()
                try:
                    detail = r.json().get("detail")
                except ValueError:
                    detail = r.text
                console.print(Text.assemble((str(r.status_code), "red"), " ", str(detail)))
                raise typer.Exit(1)
            with target.open("wb") as out:
                for chunk in r.iter_bytes():
                    out.write(chunk)
    except httpx.ConnectError:
        unreachable()


@report_app.command("suppliers")
@with_output
def suppliers(
    from_: Annotated[
        str, typer.Option("--from", help="Start: 2026-11-01 (midnight Amsterdam) or 2026-11-01T00:00:00Z.")
    ],
    to: Annotated[str, typer.Option("--to", help="End (exclusive), as --from; at most 93 days later.")],
    save: Annotated[
        Path | None, typer.Option("--save", help="Write the server's CSV to this file instead.")
    ] = None,
    by_contract: Annotated[
        bool, typer.Option("--by-contract", help="A row per supplier contract, not per supplier.")
    ] = False,
    supplier: Annotated[str | None, typer.Option(help="Only this supplier.")] = None,
) -> None:
    """Energy delivered per energy supplier per 15 minutes (kWh split exactly by meter readings)."""
    params: dict[str, Any] = {"from": from_, "to": to, "group_by": "contract" if by_contract else "supplier"}
    if supplier is not None:
        params["supplier"] = supplier
    if save is not None:
        _download({**params, "format": "csv"}, save)
        console.print(f"written to {save}", markup=False)
        return
    report = call_api("GET", "/api/reports/energy-suppliers", params=params)
    rows = [
        {**row, "supplier": row["supplier"] or "unknown", "kWh": f"{row['energy_wh'] / 1000:.3f}"}
        for row in report
    ]
    columns = [
        "interval_start_local",
        "supplier",
        *(["contract_id"] if by_contract else []),
        "kWh",
        "sessions",
    ]
    show_table(rows, columns, f"Energy per supplier, {from_} to {to}", data=report)
    total = sum(row["energy_wh"] for row in rows)
    console.print(f"total {total / 1000:.3f} kWh in {len(rows)} row(s)", markup=False)
