"""Exports of all historical data (requirement 169): any record type, any period, streamed.

The municipality and the operator (admin too) may export; the municipality sees token uids only
as pseudonyms. What each kind holds, column by column, is `GET /api/exports`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from stekker.api.deps import Caller, allow, get_ctx
from stekker.export import service
from stekker.export.formats import WRITERS
from stekker.export.records import RecordKind
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/api/exports", tags=["exports"])

Kind = Annotated[
    str, Path(max_length=64, description="sessions, cdrs, meter_values, ... (see GET /api/exports).")
]
From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=40,
        description="Start (inclusive) of the period on the kind's time column: a UTC date "
        "(2026-01-01) or time (2026-01-01T08:00:00Z; no offset means UTC). Unset: from the first record.",
    ),
]
To = Annotated[str | None, Query(max_length=40, description="End (exclusive), as `from`. Unset: up to now.")]
Station = Annotated[str | None, Query(max_length=100, description="Only this station's records.")]
LocationId = Annotated[int | None, Query(description="Only the records of the stations at this location.")]
Partner = Annotated[
    int | None,
    Query(description="Only records of this OCPI partner's tokens (sessions, cdrs, authorization_requests)."),
]


class ColumnOut(BaseModel):
    name: str
    type: str = Field(description="integer, text, timestamp (UTC), decimal, boolean or json.")
    description: str
    personal: str = Field(
        description="no; identifier (a token uid or contract id: pseudonymised); link (a row id of the "
        "token: empty when pseudonymised); contains (text or JSON that may quote an identifier: each "
        "one found is pseudonymised); signed (signed meter data: empty when pseudonymised)."
    )


class KindOut(BaseModel):
    kind: str
    title: str
    description: str
    period_column: str = Field(description="The column `from` and `to` apply to.")
    filters: list[str] = Field(description="The filters this kind takes besides the period.")
    columns: list[ColumnOut]


class CountOut(BaseModel):
    kind: str
    rows: int = Field(description="Rows the export would hold now.")


def _kind_out(kind: RecordKind) -> KindOut:
    return KindOut(
        kind=kind.name,
        title=kind.title,
        description=kind.description,
        period_column=kind.time_column,
        filters=["station", "location", *(["partner"] if kind.by_partner is not None else [])],
        columns=[
            ColumnOut(name=c.name, type=c.type.value, description=c.description, personal=c.personal.value)
            for c in kind.columns
        ],
    )


@router.get("", response_model=list[KindOut])
async def list_kinds(_caller: Caller = Depends(allow(*service.EXPORT_ROLES))) -> list[KindOut]:
    """What can be exported: every record type with its columns, their types and meaning."""
    return [_kind_out(kind) for kind in service.kinds()]


@router.get("/{kind}/count", response_model=CountOut)
async def count_export(
    kind: Kind,
    from_: From = None,
    to: To = None,
    station: Station = None,
    location: LocationId = None,
    partner: Partner = None,
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*service.EXPORT_ROLES)),
) -> CountOut:
    """How many rows `GET /api/exports/{kind}` with the same filters would send now."""
    request = service.parse_request(
        kind, start=from_, end=to, station=station, location=location, partner=partner
    )
    return CountOut(kind=request.kind.name, rows=await service.count(ctx, request))


@router.get(
    "/{kind}",
    response_class=StreamingResponse,
    responses={200: {"content": {w.media_type: {} for w in WRITERS.values()}}},
)
async def export(
    kind: Kind,
    from_: From = None,
    to: To = None,
    format: Annotated[str, Query(max_length=16, description="csv, jsonl or parquet.")] = "csv",
    station: Station = None,
    location: LocationId = None,
    partner: Partner = None,
    pseudonymise: Annotated[
        bool | None,
        Query(
            description="Replace token uids and contract ids by pseudonyms (a keyed hash: the same uid "
            "gives the same pseudonym). Default: true for the municipality (which cannot turn it off), "
            "false for operator and admin."
        ),
    ] = None,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*service.EXPORT_ROLES)),
) -> StreamingResponse:
    """Every record of a kind in the period [from, to), streamed as CSV, JSON lines or Parquet
    however many there are. The columns are listed at `GET /api/exports`. The export is
    audited (`export.started`, `export.finished`). The header `X-Pseudonymised` says whether
    token uids were replaced."""
    request = service.parse_request(
        kind, start=from_, end=to, format=format, station=station, location=location, partner=partner
    )
    started = await service.start(
        ctx, actor=caller.actor, role=caller.role, request=request, pseudonymise=pseudonymise
    )
    return StreamingResponse(
        started.chunks(),
        media_type=started.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{started.file_name}"',
            "Cache-Control": "no-store",
            "X-Pseudonymised": "true" if started.pseudonymised else "false",
        },
    )
