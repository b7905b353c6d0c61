"""Problems drivers reported from the public EVSE page (`/p/{evse_uid}/report`): the helpdesk's
list, and marking one handled."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from stekker.api.deps import DRIVER_SUPPORT, Caller, allow, get_ctx
from stekker.services import problem_reports
from stekker.services.context import ServiceContext
from stekker.services.problem_reports import ReportView

router = APIRouter(prefix="/api/problem-reports", tags=["problem reports"])


class ProblemReportOut(BaseModel):
    """A problem a driver reported at an EVSE."""

    id: int
    evse_uid: str = Field(description="The public EVSE id the driver's page showed.")
    station_id: str | None = Field(description="The station, while it exists.")
    kind: str = Field(description="wont_start, stopped, damaged, blocked, payment or other.")
    message: str = Field(description="The driver's own words (may be empty unless kind is other).")
    contact: str | None = Field(description="Phone or e-mail, only when the driver gave one.")
    language: str = Field(description="The page's language (nl, en): answer in it.")
    reported_at: datetime
    handled_at: datetime | None = Field(description="null: open.")
    handled_by: str | None


def _out(view: ReportView) -> ProblemReportOut:
    return ProblemReportOut(**view.to_json())


@router.get("", response_model=list[ProblemReportOut])
async def list_problem_reports(
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*DRIVER_SUPPORT)),
    state: Annotated[
        str, Query(pattern="^(open|all)$", description="open (default): not yet handled; all: every report.")
    ] = "open",
    station_id: Annotated[str | None, Query(max_length=48, description="Only this station's.")] = None,
    limit: Annotated[int, Query(ge=1, le=problem_reports.MAX_LIST)] = 100,
) -> list[ProblemReportOut]:
    """Problems drivers reported at EVSEs, newest first: the EVSE, the time, what kind of problem,
    the driver's words and, only if they gave one, how to reach them."""
    views = await problem_reports.list_reports(
        ctx, open_only=state == "open", station_id=station_id, limit=limit
    )
    return [_out(v) for v in views]


@router.post("/{report_id}/handled", response_model=ProblemReportOut)
async def mark_handled(
    report_id: Annotated[int, Path(ge=1, le=2**62)],
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*DRIVER_SUPPORT)),
) -> ProblemReportOut:
    """Mark a report handled (404 if there is none, 409 if it already was)."""
    return _out(await problem_reports.handle(ctx, actor=caller.actor, report_id=report_id))
