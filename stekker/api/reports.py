"""Reports: energy delivered per energy supplier per 15-minute interval (requirement 14)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from stekker.api.deps import READ, Caller, allow, get_ctx
from stekker.services import supplier_report
from stekker.services.context import ServiceContext
from stekker.services.supplier_report import GroupBy, SupplierEnergy
from stekker.services.tokens import ENERGY_CONTRACT_MAX, ENERGY_CONTRACT_TEXT

router = APIRouter(prefix="/api/reports", tags=["reports"])

UNKNOWN_SUPPLIER = "unknown"  # how CSV shows sessions whose token named no supplier
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class SupplierEnergyOut(BaseModel):
    interval_start: datetime = Field(description="Start of the quarter hour, UTC.")
    interval_start_local: datetime = Field(description="The same moment in Europe/Amsterdam.")
    supplier: str | None = Field(description="The token's supplier at session start; null: none known.")
    contract_id: str | None = Field(description="The supplier contract (only with group_by=contract).")
    energy_wh: int
    sessions: int = Field(description="Sessions that delivered energy in this quarter hour.")


def _out(row: SupplierEnergy) -> SupplierEnergyOut:
    return SupplierEnergyOut(
        interval_start=row.interval_start,
        interval_start_local=row.interval_start_local,
        supplier=row.supplier,
        contract_id=row.contract_id,
        energy_wh=row.energy_wh,
        sessions=row.sessions,
    )


def _cell(text: str) -> str:
    """A supplier name is operator input: never let a spreadsheet run it as a formula."""
    return f"'{text}" if text.startswith(_CSV_FORMULA) else text


def _csv(rows: list[SupplierEnergy], group_by: GroupBy) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = ["interval_start_utc", "interval_start_local", "supplier"]
    if group_by is GroupBy.CONTRACT:
        header.append("contract_id")
    writer.writerow([*header, "energy_wh", "sessions"])
    for index, row in enumerate(rows, start=1):
        cells = [
            row.interval_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            row.interval_start_local.isoformat(),
            _cell(row.supplier) if row.supplier is not None else UNKNOWN_SUPPLIER,
        ]
        if group_by is GroupBy.CONTRACT:
            cells.append(_cell(row.contract_id or ""))
        writer.writerow([*cells, row.energy_wh, row.sessions])
        if index % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get(
    "/energy-suppliers",
    response_model=list[SupplierEnergyOut],
    responses={200: {"content": {"text/csv": {}}}},
)
async def energy_per_supplier(
    from_: Annotated[
        str,
        Query(
            alias="from",
            max_length=40,
            description="Start (inclusive): a date (midnight Europe/Amsterdam) or a time with an offset, "
            "on a quarter hour.",
        ),
    ],
    to: Annotated[
        str, Query(max_length=40, description="End (exclusive), as `from`; at most 93 days later.")
    ],
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
    format: Literal["json", "csv"] = "json",
    group_by: GroupBy = GroupBy.SUPPLIER,
    supplier: Annotated[
        str | None,
        Query(
            max_length=ENERGY_CONTRACT_MAX, pattern=ENERGY_CONTRACT_TEXT, description="Only this supplier."
        ),
    ] = None,
) -> list[SupplierEnergyOut] | StreamingResponse:
    """Energy (Wh) delivered per energy supplier per UTC quarter hour in [from, to): each
    session's energy is spread over the quarter hours linearly between its meter readings,
    exactly (the parts add up to the session's energy); running sessions count up to their
    newest reading. Sessions whose token named no supplier have supplier null ("unknown" in CSV).
    Quarter hours without energy are left out. `format=csv` gives a CSV file with a header."""
    period = supplier_report.report_period(from_, to)
    rows = await supplier_report.energy_by_supplier(ctx, period, group_by, supplier)
    if format == "csv":
        name = f"energy-suppliers-{period.start:%Y%m%dT%H%MZ}-{period.end:%Y%m%dT%H%MZ}.csv"
        return StreamingResponse(
            _csv(rows, group_by),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return [_out(row) for row in rows]
