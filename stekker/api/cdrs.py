"""CDRs: the bills of finished sessions, in OCPI 2.2.1 form, and their corrections.

Every reading role (the municipality too) may read them; a correction (a credit CDR plus a
new CDR, never an edit) is for the operator.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from stekker.api import paging as api_paging
from stekker.api.deps import CONFIGURE, READ, Caller, allow, get_ctx
from stekker.api.params import IsoDateTime
from stekker.db.models_tariffs import CdrKind
from stekker.domain.cdr_document import number
from stekker.services import cdrs, paging
from stekker.services.context import ServiceContext

router = APIRouter(prefix="/api/cdrs", tags=["cdrs"])

_UID = r"^[A-Za-z0-9._\-]{1,39}$"
_STATION_ID = r"^[A-Za-z0-9_.\-:*#]{1,48}$"
_PARTY = r"^[A-Z]{2}-[A-Z0-9]{3}$"
CdrUid = Path(pattern=_UID, description="The CDR's id, e.g. CDR-42-1.")
_MAX_ENERGY_WH = 10**9  # a million kWh: far beyond any session


class CdrOut(BaseModel):
    """A CDR: our record of it, amounts as numbers with at most 4 decimals."""

    id: int = Field(description="Our row id: the key-set cursor (`after`) of the list.")
    cdr_uid: str
    kind: CdrKind = Field(description="charge, or credit (cancels `credits_cdr_uid`).")
    session_id: int
    sequence: int = Field(description="1 for a session's first CDR; corrections count on.")
    credits_cdr_uid: str | None
    replaces_cdr_uid: str | None = Field(description="The CDR this one corrects.")
    credited_by_cdr_uid: str | None = Field(description="The credit CDR that cancelled this one.")
    station_id: str
    location_id: int | None
    evse_uid: str | None
    token_uid: str | None
    party: str | None = Field(description="The driver's eMSP (NL-ABC); None: ad hoc.")
    tariff_version_id: int | None = Field(description="The tariff version valid at the session's start.")
    price_cap_id: int | None
    currency: str
    start_time: datetime
    end_time: datetime
    total_energy_wh: int
    total_time_s: int
    total_parking_time_s: int
    total_cost_excl_vat: float
    total_cost_incl_vat: float
    capped_by: str | None = Field(description="cap.per_kwh, cap.per_session, cap.parking, max_price...")
    energy_supplier: str | None
    energy_contract_id: str | None
    reason: str | None = Field(description="Why a correction or credit was made.")
    created_by: str
    created_at: datetime


class CdrDetailOut(CdrOut):
    document: dict[str, Any] = Field(description="The OCPI 2.2.1 CDR object.")
    readings: list[dict[str, Any]] = Field(description="The meter register readings the bill rests on.")


class CorrectionIn(BaseModel):
    """A correction: why, and what was wrong (the energy, the stop time, or both)."""

    model_config = {"extra": "forbid"}

    reason: str = Field(min_length=3, max_length=1000)
    energy_wh: int | None = Field(default=None, ge=0, le=_MAX_ENERGY_WH, description="The right energy (Wh).")
    stop_time: datetime | None = Field(default=None, description="The right end of the session.")

    @field_validator("reason")
    @classmethod
    def _words(cls, value: str) -> str:
        if len(value.strip()) < 3:
            raise ValueError("say why (at least 3 characters)")
        return value.strip()

    @field_validator("stop_time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class CorrectionOut(BaseModel):
    credit: CdrDetailOut
    cdr: CdrDetailOut


def _out(view: cdrs.CdrView) -> dict[str, Any]:
    fields = dataclasses.asdict(view)
    fields.pop("data")
    fields.pop("readings")
    fields["total_cost_excl_vat"] = number(view.total_cost_excl_vat)
    fields["total_cost_incl_vat"] = number(view.total_cost_incl_vat)
    return fields


def _detail(view: cdrs.CdrView) -> dict[str, Any]:
    return {**_out(view), "document": view.data, "readings": view.readings}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("", response_model=list[CdrOut], responses=api_paging.LINK)
async def list_cdrs(
    request: Request,
    response: Response,
    station_id: str | None = Query(None, pattern=_STATION_ID),
    location_id: int | None = Query(None, ge=1, le=2**31 - 1),
    party: str | None = Query(None, pattern=_PARTY, description="The driver's eMSP, e.g. NL-ABC."),
    session_id: int | None = Query(None, ge=1, le=2**53),
    kind: CdrKind | None = None,
    since: IsoDateTime | None = Query(
        None, alias="from", description="end_time at or after (UTC if no offset)."
    ),
    until: IsoDateTime | None = Query(None, alias="to", description="end_time before (UTC if no offset)."),
    after: int | None = api_paging.after_id(),
    before_id: int | None = Query(
        None, ge=1, le=paging.MAX_ID, description="The same as `after` (kept for older clients)."
    ),
    limit: int = Query(100, ge=1, le=cdrs.MAX_LIMIT),
    offset: int = Query(
        0, ge=0, le=cdrs.MAX_OFFSET, description="Old paging, kept for compatibility: use `after`."
    ),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> list[dict[str, Any]]:
    """CDRs, newest first, filtered by station, location, eMSP, session, kind and end time;
    key-set pages (`after`, `Link` header)."""
    if after is not None and before_id is not None and after != before_id:
        raise HTTPException(422, "give after or before_id (the same cursor), not both")
    cursor = after if after is not None else before_id
    api_paging.position(cursor, offset)
    views = await cdrs.list_cdrs(
        ctx,
        cdrs.CdrFilter(
            station_id=station_id,
            location_id=location_id,
            party=party,
            session_id=session_id,
            kind=kind,
            since=_utc(since),
            until=_utc(until),
            before_id=cursor,
            limit=limit + paging.PEEK,
            offset=offset,
        ),
    )
    page = paging.cut(views, limit, lambda v: v.id)
    api_paging.link_next(request, response, page)
    return [_out(v) for v in page.rows]


@router.get("/{cdr_uid}", response_model=CdrDetailOut)
async def get_cdr(
    cdr_uid: str = CdrUid,
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> dict[str, Any]:
    """One CDR with its OCPI document and the readings it rests on."""
    return _detail(await cdrs.get_cdr(ctx, cdr_uid))


@router.post("/{cdr_uid}/corrections", response_model=CorrectionOut, status_code=201)
async def correct_cdr(
    body: CorrectionIn,
    cdr_uid: str = CdrUid,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any]:
    """Correct a CDR: a credit CDR cancels it and a new CDR bills the corrected session with
    the same tariff version and cap. The original stays as it was."""
    credit, new = await cdrs.correct_cdr(
        ctx,
        cdr_uid,
        actor=caller.actor,
        reason=body.reason,
        energy_wh=body.energy_wh,
        stop_time=body.stop_time,
    )
    return {"credit": _detail(credit), "cdr": _detail(new)}
