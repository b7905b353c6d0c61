"""Bulk jobs and diagnostics: start a job on a selection, watch each station, download files.

The roles are the API's: the page is for the operator and the municipality (admin too, as
`DIAGNOSTICS`); a job kind is offered, started and cancelled only for the operator (admin) and
only if its function allows the role (`services.jobs.may_run_bulk`, as the API checks): the
municipality reads jobs and requests diagnostics, the helpdesk does not see the page. Starting goes
through a confirmation page that shows the stations the selection resolves to (the service's
dry run, `jobs.plan`); a running job's progress reloads itself with htmx every few seconds.
Diagnostics requests go through `services.diagnostics` as `POST /api/diagnostics` does, and
their files are downloaded with the console session (audited by the service).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select

from stekker.api.deps import DIAGNOSTICS, Role
from stekker.api.diagnostics import public_base_url
from stekker.db.models import Location, StationGroup
from stekker.db.models_diagnostics import OPEN_STATES as DIAG_OPEN
from stekker.db.models_diagnostics import DiagnosticsState
from stekker.db.models_jobs import JobState, JobStationState
from stekker.services import diagnostics, jobs
from stekker.services.device_model import UnknownStation
from stekker.services.errors import ServiceError
from stekker.services.functions import FUNCTIONS, InvalidArguments, UnknownFunction
from stekker.services.selection import Selection, UnknownGroup, resolve
from stekker.web import auth, i18n
from stekker.web.format import HOME
from stekker.web.templating import ConsoleRoute, PageNotFound, is_htmx, language, render

router = APIRouter(prefix="/console/jobs", route_class=ConsoleRoute, include_in_schema=False)

ROLES = DIAGNOSTICS
PAGE_SIZE = 25
STATIONS_PAGE = 100
STATION_ID = re.compile(r"^[A-Za-z0-9_.\-:*#]{1,48}$")
GROUP = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
MAX_PICKED = 10_000
PREVIEW = 50

#: The job kinds the console offers, in this order (the API offers every function).
KINDS = (
    "reset",
    "change_availability",
    "change_configuration",
    "set_variables",
    "update_firmware",
    "trigger_message",
    "clear_cache",
    "sync_local_list",
    "get_diagnostics",
)
TRIGGERS = (
    "StatusNotification",
    "Heartbeat",
    "MeterValues",
    "BootNotification",
    "FirmwareStatusNotification",
    "DiagnosticsStatusNotification",
    "LogStatusNotification",
    "TransactionEvent",
)
# what `services.*` refuse, shown back on the page (the API maps the same to 4xx)
REFUSALS: tuple[type[Exception], ...] = (
    ServiceError,
    InvalidArguments,
    UnknownFunction,
    UnknownGroup,
    UnknownStation,
    jobs.NothingSelected,
    jobs.JobFinished,
    diagnostics.EmptySelection,
)


class FormProblem(ValueError):
    """What is wrong with the form, in the user's language."""


def may_run(role: Role, function: str) -> bool:
    """Whether `role` may start or cancel a job of `function`, as the API decides."""
    return jobs.may_run_bulk(role.value, function)


def offered(role: Role) -> list[str]:
    return [k for k in KINDS if k in FUNCTIONS and may_run(role, k)]


def refused_page(request: Request, user: auth.ConsoleUser, status: int, detail: str) -> HTMLResponse:
    """An error page with the menu, saying what the service refused (escaped by the template)."""
    lang = language(request)
    message = i18n.translate(lang, "adm_refused", detail=detail)
    return render(request, "error.html", status, user=user, title_key="error_title", message=message)


# ---- reading the start form -------------------------------------------------------------------


def picked_stations(text: str) -> list[str]:
    ids = [part for part in re.split(r"[\s,;]+", text.strip()) if part]
    if len(ids) > MAX_PICKED:
        raise FormProblem(f"adm_too_many_stations:{MAX_PICKED}")
    bad = [i for i in ids if not STATION_ID.match(i)]
    if bad:
        raise FormProblem(f"adm_bad_station_id:{bad[0][:48]}")
    return list(dict.fromkeys(ids))


def selection_of(fields: dict[str, str]) -> Selection:
    group = fields.get("group", "").strip() or None
    if group is not None and not GROUP.match(group):
        raise FormProblem("adm_bad_group")
    location_text = fields.get("location", "").strip()
    location: int | None = None
    if location_text:
        if not location_text.isdigit() or not 1 <= int(location_text) <= 2**31 - 1:
            raise FormProblem("adm_bad_location")
        location = int(location_text)
    stations = picked_stations(fields.get("stations", ""))
    selection = Selection(station_ids=tuple(stations), location_id=location, group=group)
    if selection == Selection():
        raise FormProblem("adm_empty_selection")
    return selection


def _local_time(text: str) -> str | None:
    """A `datetime-local` value in home time, as ISO 8601 with its offset (None when empty)."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FormProblem("adm_bad_time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=HOME)
    return moment.isoformat()


def args_of(function: str, fields: dict[str, str]) -> dict[str, Any]:
    """The function's arguments from the form (the service checks them)."""
    f = {k: v.strip() for k, v in fields.items()}
    if function == "reset":
        return {"type": "Hard" if f.get("reset_type") == "Hard" else "Soft"}
    if function == "change_availability":
        return {"operative": f.get("operative", "yes") != "no"}
    if function == "change_configuration":
        return {"key": f.get("config_key", ""), "value": fields.get("config_value", "")}
    if function == "set_variables":
        item = {
            "component": f.get("component", ""),
            "variable": f.get("variable", ""),
            "value": fields.get("variable_value", ""),
        }
        return {"items": [item]}
    if function == "update_firmware":
        args: dict[str, Any] = {"location": f.get("firmware_url", "")}
        retrieve = _local_time(f.get("retrieve_at", ""))
        if retrieve is not None:
            args["retrieve_at"] = retrieve
        return args
    if function == "trigger_message":
        return {"message": f.get("message", "")}
    if function == "sync_local_list":
        return {"full": f.get("full") == "yes"}
    if function == "get_diagnostics":
        return {"log_type": "SecurityLog" if f.get("log_type") == "SecurityLog" else "DiagnosticsLog"}
    return {}


def problem_text(request: Request, exc: FormProblem) -> str:
    key, _, value = str(exc).partition(":")
    return i18n.translate(language(request), key, value=value)


async def choices(request: Request) -> tuple[list[str], list[tuple[int, str]]]:
    """The station groups and locations to choose from."""
    async with auth.get_ctx(request).db() as db:
        groups = list(
            (await db.execute(select(StationGroup.name).order_by(StationGroup.name).limit(1000))).scalars()
        )
        places = [
            (r[0], f"{r[1]}, {r[2]}" if r[2] else r[1])
            for r in (
                await db.execute(
                    select(Location.id, Location.name, Location.city).order_by(Location.name).limit(1000)
                )
            ).all()
        ]
    return groups, places


# ---- pages --------------------------------------------------------------------------------------


async def _jobs_page(
    request: Request,
    user: auth.ConsoleUser,
    offset: int,
    *,
    fields: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = auth.get_ctx(request)
    views = await jobs.list_jobs(ctx, limit=PAGE_SIZE + 1, offset=offset)
    more = len(views) > PAGE_SIZE
    views = views[:PAGE_SIZE]
    running = any(v.state == JobState.RUNNING for v in views)
    context: dict[str, Any] = {
        "jobs": views,
        "offset": offset,
        "more": more,
        "page_size": PAGE_SIZE,
        "running": running,
        "final_states": [s.value for s in jobs.FINAL_STATES],
    }
    if is_htmx(request):
        return render(request, "_job_list.html", user=user, **context)
    groups, places = await choices(request)
    return render(
        request,
        "jobs.html",
        status_code,
        user=user,
        kinds=offered(user.role),
        triggers=TRIGGERS,
        groups=groups,
        places=places,
        form=fields or {},
        error=error,
        **context,
    )


@router.get("", response_class=HTMLResponse)
async def job_list(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*ROLES)),
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
) -> Response:
    return await _jobs_page(request, user, offset)


@router.post("/confirm", response_class=HTMLResponse)
async def confirm_job(request: Request, user: auth.ConsoleUser = Depends(auth.console(*ROLES))) -> Response:
    """Step 1 of starting a job: check it and show the stations it would run on."""
    fields = await auth.form(request)
    function = fields.get("function", "")
    if function not in offered(user.role):
        msg = i18n.translate(language(request), "adm_kind_not_allowed")
        return await _jobs_page(request, user, 0, fields=fields, error=msg, status_code=403)
    try:
        selection = selection_of(fields)
        job_request = jobs.JobRequest(function=function, args=args_of(function, fields), selection=selection)
        ids = await jobs.plan(auth.get_ctx(request), job_request)
        if not ids:
            raise jobs.NothingSelected(i18n.translate(language(request), "adm_nothing_selected"))
    except FormProblem as exc:
        return await _jobs_page(
            request, user, 0, fields=fields, error=problem_text(request, exc), status_code=400
        )
    except REFUSALS as exc:
        return await _jobs_page(request, user, 0, fields=fields, error=str(exc), status_code=400)
    carried = {k: v for k, v in fields.items() if k != auth.CSRF_FIELD}
    return render(
        request,
        "job_confirm.html",
        user=user,
        function=function,
        args=job_request.args,
        selection=jobs.selection_json(selection),
        count=len(ids),
        preview=ids[:PREVIEW],
        carried=carried,
    )


@router.post("/start", response_class=HTMLResponse)
async def start_job(request: Request, user: auth.ConsoleUser = Depends(auth.console(*ROLES))) -> Response:
    """Step 2: create the job (the selection is resolved again, now)."""
    fields = await auth.form(request)
    function = fields.get("function", "")
    if function not in offered(user.role):
        return refused_page(request, user, 403, i18n.translate(language(request), "adm_kind_not_allowed"))
    try:
        job_request = jobs.JobRequest(
            function=function, args=args_of(function, fields), selection=selection_of(fields)
        )
        job_id = await jobs.create_job(auth.get_ctx(request), user.actor, job_request)
    except FormProblem as exc:
        return await _jobs_page(
            request, user, 0, fields=fields, error=problem_text(request, exc), status_code=400
        )
    except REFUSALS as exc:
        return await _jobs_page(request, user, 0, fields=fields, error=str(exc), status_code=400)
    return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)


# ---- diagnostics (before /{job_id}) -----------------------------------------------------------


async def _diagnostics_page(
    request: Request,
    user: auth.ConsoleUser,
    station: str,
    *,
    error: str | None = None,
    done: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = await diagnostics.list_requests(auth.get_ctx(request), station or None, None, 100)
    busy = any(r.state in DIAG_OPEN for r in rows)
    template = "_job_diagnostics.html" if is_htmx(request) else "job_diagnostics.html"
    return render(
        request,
        template,
        status_code,
        user=user,
        rows=rows,
        station=station,
        busy=busy,
        error=error,
        done=done,
        uploaded=DiagnosticsState.UPLOADED.value,
    )


_StationFilter = Annotated[str, Query(max_length=48)]


@router.get("/diagnostics", response_class=HTMLResponse)
async def diagnostics_list(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*ROLES)),
    station: _StationFilter = "",
) -> Response:
    station = station.strip()
    if station and not STATION_ID.match(station):
        msg = i18n.translate(language(request), "adm_bad_station_id", value=station)
        return await _diagnostics_page(request, user, "", error=msg, status_code=400)
    return await _diagnostics_page(request, user, station)


@router.post("/diagnostics", response_class=HTMLResponse)
async def diagnostics_request(
    request: Request, user: auth.ConsoleUser = Depends(auth.console(*ROLES))
) -> Response:
    """Ask the named stations for a diagnostics or security log (as `POST /api/diagnostics`)."""
    fields = await auth.form(request)
    ctx = auth.get_ctx(request)
    try:
        ids = picked_stations(fields.get("stations", ""))
        if not ids:
            raise FormProblem("adm_empty_selection")
        log_type: diagnostics.LogType = (
            "SecurityLog" if fields.get("log_type") == "SecurityLog" else "DiagnosticsLog"
        )
        await diagnostics.check_stations(ctx, ids)
        async with ctx.db() as db:
            station_ids = await resolve(db, Selection(station_ids=tuple(ids)), ctx.commands)
        if not station_ids:
            raise diagnostics.EmptySelection(i18n.translate(language(request), "adm_nothing_selected"))
        rows = await diagnostics.request_diagnostics(
            ctx,
            user.actor,
            station_ids,
            diagnostics.DiagnosticsOrder(log_type),
            public_base_url(request, ctx),
        )
    except FormProblem as exc:
        return await _diagnostics_page(request, user, "", error=problem_text(request, exc), status_code=400)
    except REFUSALS as exc:
        return await _diagnostics_page(request, user, "", error=str(exc), status_code=400)
    return await _diagnostics_page(request, user, "", done=len(rows))


def _disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


@router.get("/diagnostics/{request_id}/file")
async def diagnostics_file(
    request: Request,
    request_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    user: auth.ConsoleUser = Depends(auth.console(*ROLES)),
) -> Response:
    """The uploaded file, as `GET /api/diagnostics/{id}/file` serves it (audited)."""
    try:
        row, chunks = await diagnostics.open_file(auth.get_ctx(request), user.actor, request_id)
    except diagnostics.DiagnosticsNotFound:
        raise PageNotFound("adm_no_file") from None
    headers = {
        "Content-Disposition": _disposition(row.file_name or f"diagnostics-{row.id}.log"),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    if row.file_size is not None:
        headers["Content-Length"] = str(row.file_size)
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


# ---- one job ----------------------------------------------------------------------------------

JobId = Annotated[int, Path(ge=1, le=2**53)]


async def _view(request: Request, job_id: int) -> jobs.JobView:
    try:
        return await jobs.get_job(auth.get_ctx(request), job_id)
    except jobs.JobNotFound:
        raise PageNotFound("adm_no_job") from None


@router.get("/{job_id}", response_class=HTMLResponse)
async def job_detail(
    request: Request,
    job_id: JobId,
    user: auth.ConsoleUser = Depends(auth.console(*ROLES)),
    state: Annotated[JobStationState | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
) -> Response:
    view = await _view(request, job_id)
    rows = await jobs.job_stations(
        auth.get_ctx(request), job_id, state.value if state else None, STATIONS_PAGE + 1, offset
    )
    template = "_job_progress.html" if is_htmx(request) else "job.html"
    return render(
        request,
        template,
        user=user,
        job=view,
        rows=rows[:STATIONS_PAGE],
        more=len(rows) > STATIONS_PAGE,
        offset=offset,
        page_size=STATIONS_PAGE,
        state=state.value if state else "",
        states=[s.value for s in JobStationState],
        done=sum(n for s, n in view.counts.items() if s in jobs.FINAL_STATES),
        may_cancel=view.state == JobState.RUNNING and may_run(user.role, view.function),
    )


@router.get("/{job_id}/cancel", response_class=HTMLResponse)
async def cancel_confirm(
    request: Request, job_id: JobId, user: auth.ConsoleUser = Depends(auth.console(*ROLES))
) -> Response:
    view = await _view(request, job_id)
    if not may_run(user.role, view.function):
        return refused_page(request, user, 403, i18n.translate(language(request), "adm_kind_not_allowed"))
    return render(request, "job_cancel.html", user=user, job=view)


@router.post("/{job_id}/cancel", response_class=HTMLResponse)
async def cancel(
    request: Request, job_id: JobId, user: auth.ConsoleUser = Depends(auth.console(*ROLES))
) -> Response:
    view = await _view(request, job_id)
    if not may_run(user.role, view.function):
        return refused_page(request, user, 403, i18n.translate(language(request), "adm_kind_not_allowed"))
    try:
        await jobs.cancel_job(auth.get_ctx(request), user.actor, job_id)
    except jobs.JobFinished as exc:
        return refused_page(request, user, 409, str(exc))
    return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)
