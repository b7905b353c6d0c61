"""A station's configuration, the same way for 1.6 and 2.0.1: read what it reported, ask it
for current values, change them, request a full report.

A 1.6 station's configuration keys appear as variables of the component `OCPP16`; a 2.0.1
station's device model as its components and variables.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from stekker.api.deps import CONFIGURE, DRIVER_SUPPORT, READ, Caller, allow, get_ctx
from stekker.services import device_model
from stekker.services.context import ServiceContext
from stekker.services.device_model import VariableRef, VariableResult

# request bodies are the remote functions' own arguments: one definition, one set of limits
from stekker.services.functions import GetBaseReportArgs, GetVariablesArgs, SetVariablesArgs

router = APIRouter(prefix="/api/stations/{station_id}", tags=["configuration"])


class VariableOut(BaseModel):
    label: str = Field(description="Component.Variable as people write it.")
    component: str
    component_instance: str
    evse: int
    connector: int
    variable: str
    variable_instance: str
    attribute_type: str
    value: str | None
    mutability: str | None
    data_type: str | None
    unit: str | None
    min_limit: Decimal | None
    max_limit: Decimal | None
    values_list: str | None
    source: str = Field(description="How we learnt it: report, get or set.")
    updated_at: datetime


class ResultOut(BaseModel):
    label: str
    component: str
    variable: str
    evse: int
    connector: int
    attribute_type: str
    status: str = Field(description="The station's answer: Accepted, Rejected, UnknownVariable, ...")
    value: str | None
    reason: str | None


class ReportOut(BaseModel):
    status: str
    request_id: int
    stored: int | None = Field(description="Values stored at once (1.6); 2.0.1 reports arrive later.")


def _result(r: VariableResult) -> ResultOut:
    return ResultOut(
        label=r.ref.label,
        component=r.ref.component,
        variable=r.ref.variable,
        evse=r.ref.evse_number,
        connector=r.ref.connector_number,
        attribute_type=r.ref.attribute_type,
        status=r.status,
        value=r.value,
        reason=r.reason,
    )


@router.get("/variables", response_model=list[VariableOut])
async def stored_variables(
    station_id: str,
    component: str | None = Query(None, max_length=50),
    variable: str | None = Query(None, max_length=50),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> list[VariableOut]:
    """What the station last reported, answered or accepted: no call to the station."""
    rows = await device_model.list_variables(ctx, station_id, component, variable)
    return [
        VariableOut(
            label=VariableRef(
                r.component,
                r.variable,
                r.component_instance,
                r.variable_instance,
                r.evse_number,
                r.connector_number,
                r.attribute_type,
            ).label,
            component=r.component,
            component_instance=r.component_instance,
            evse=r.evse_number,
            connector=r.connector_number,
            variable=r.variable,
            variable_instance=r.variable_instance,
            attribute_type=r.attribute_type,
            value=r.value,
            mutability=r.mutability,
            data_type=r.data_type,
            unit=r.unit,
            min_limit=r.min_limit,
            max_limit=r.max_limit,
            values_list=r.values_list,
            source=r.source,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


@router.post("/variables/get", response_model=list[ResultOut])
async def get_variables(
    station_id: str,
    body: GetVariablesArgs,
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*DRIVER_SUPPORT)),
) -> list[ResultOut]:
    """Ask the station now (2.0.1 GetVariables, 1.6 GetConfiguration); answers are stored."""
    results = await device_model.get_variables(ctx, station_id, [item.ref() for item in body.items])
    return [_result(r) for r in results]


@router.post("/variables/set", response_model=list[ResultOut])
async def set_variables(
    station_id: str,
    body: SetVariablesArgs,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> list[ResultOut]:
    """Change values (2.0.1 SetVariables, 1.6 ChangeConfiguration per key); each is audited."""
    changes = [(item.ref(), item.value) for item in body.items]
    results = await device_model.set_variables(ctx, caller.actor, station_id, changes)
    return [_result(r) for r in results]


@router.post("/reports", response_model=ReportOut)
async def request_report(
    station_id: str,
    body: GetBaseReportArgs,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> ReportOut:
    """Ask for the whole configuration (2.0.1 GetBaseReport → NotifyReport; 1.6 GetConfiguration)."""
    outcome = await device_model.request_base_report(ctx, caller.actor, station_id, body.report_base)
    return ReportOut(**outcome)


class ReportStatusOut(BaseModel):
    request_id: int
    started_at: datetime
    updated_at: datetime
    parts_received: list[int] = Field(description="The parts (seqNo) that arrived, each once.")
    last_part: int | None = Field(description="The seqNo of the part that said nothing follows.")
    finished: bool = Field(description="The last part arrived.")
    complete: bool = Field(description="The last part and every part before it arrived.")
    missing_parts: list[int] = Field(description="Parts (seqNo) that never arrived.")
    items: int = Field(description="Values the received parts carried.")


@router.get("/reports", response_model=list[ReportStatusOut], summary="Configuration reports")
async def reports(
    station_id: str,
    limit: int = Query(10, ge=1, le=100),
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*READ)),
) -> list[ReportStatusOut]:
    """The latest configuration reports, newest first: complete, or which parts are missing."""
    out = []
    for report in await device_model.list_reports(ctx, station_id, limit):
        parts = device_model.report_parts(report)
        out.append(
            ReportStatusOut(
                request_id=report.request_id,
                started_at=report.started_at,
                updated_at=report.updated_at,
                parts_received=list(parts.received),
                last_part=parts.last,
                finished=parts.finished,
                complete=parts.complete,
                missing_parts=list(parts.missing),
                items=report.items,
            )
        )
    return out
