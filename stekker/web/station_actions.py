"""A station's configuration, timeline and remote functions in the console.

Each part is a page of its own under `/console/stations/{id}/` (the station page links to
them), so the station page itself stays as light as it is. The remote functions are grouped
by what an operator wants to do, with the forms of `web.function_forms`, and only those the
station's OCPP version has. Every change to a station goes through a confirmation page that
says what will happen and to which drivers' sessions, then shows the station's own answer in
words (accepted, refused, offline, unknown, no answer). The work is done by the same services
the REST API calls (`services.functions`, `services.remote`, `services.device_model`,
`services.templates`, `services.helpdesk`), which audit it; roles are the API's: CONFIGURE
for configuration, each remote function's own roles (DRIVER_SUPPORT for reset, unlock,
availability, remote start and stop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from stekker.api.deps import CONFIGURE, DRIVER_SUPPORT, READ, Role
from stekker.db.models import ChargingSession, ChargingStation, Evse, SessionStatus, StationVariable
from stekker.domain import remote_functions as support
from stekker.services import device_model, helpdesk, inventory, redaction, remote, templates
from stekker.services.device_model import OCPP16_COMPONENT, UnknownStation, VariableRef, parse_label
from stekker.services.functions import FUNCTIONS, InvalidArguments, run_function, validate_args
from stekker.services.ports import (
    CommandError,
    CommandNotSupported,
    CommandTimeout,
    OutcomeUnknown,
    StationOffline,
)
from stekker.services.selection import UnknownGroup
from stekker.web import auth, i18n
from stekker.web import function_forms as forms
from stekker.web.templating import ConsoleRoute, PageNotFound, language, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

_STATION_ID = r"^[A-Za-z0-9*._:+|@-]{1,48}$"
StationIdPath = Annotated[str, Path(max_length=48, pattern=_STATION_ID)]
FunctionName = Annotated[str, Path(max_length=40, pattern=r"^[a-z_]{1,40}$")]
# Roles that see whole card numbers (as the API has it); others see the last four characters.
FULL_UIDS = (Role.ADMIN, Role.OPERATOR)
TIMELINE_HOURS = (1, 6, 24, 72)
TIMELINE_LIMIT = 300


class BadInput(ValueError):
    """A configuration change cannot be used; the message says which and why."""


def may(user: auth.ConsoleUser, roles: tuple[str, ...] | tuple[Role, ...]) -> bool:
    """Whether the user's role is among `roles` (role names or roles); admin always may."""
    names = {r.value if isinstance(r, Role) else r for r in roles}
    return user.role is Role.ADMIN or user.role.value in names


# ---- the station --------------------------------------------------------------------------------


async def load_station(request: Request, station_id: str) -> ChargingStation:
    ctx = auth.get_ctx(request)
    async with ctx.db() as db:
        found = (
            await db.execute(
                select(ChargingStation)
                .options(selectinload(ChargingStation.evses).selectinload(Evse.connectors))
                .where(ChargingStation.id == station_id)
            )
        ).scalar_one_or_none()
    if found is None:
        raise PageNotFound()
    return found


def is_online(request: Request, station_id: str) -> bool:
    commands = auth.get_ctx(request).commands
    return commands.is_connected(station_id) if commands is not None else False


async def active_sessions(request: Request, station_id: str) -> list[ChargingSession]:
    async with auth.get_ctx(request).db() as db:
        return list(
            (
                await db.execute(
                    select(ChargingSession)
                    .where(
                        ChargingSession.station_id == station_id,
                        ChargingSession.status == SessionStatus.ACTIVE,
                    )
                    .order_by(ChargingSession.start_time.desc())
                    .limit(20)
                )
            ).scalars()
        )


# ---- remote functions: what the station is asked, and what came of it ----------------------------


def station_form(
    station: ChargingStation, request: Request, sessions: list[ChargingSession]
) -> forms.Station:
    """What the forms need of the station; its version as last seen, else as connected now."""
    commands = auth.get_ctx(request).commands
    version = station.ocpp_version or (commands.protocol(station.id) if commands is not None else None)
    evses = tuple(sorted(e.evse_number for e in station.evses))
    return forms.Station(version, evses, tuple(s.id for s in sessions))


def check_args(function: forms.ConsoleFunction, args: dict[str, Any]) -> None:
    """The service's own validation, before anything is asked of the station."""
    if function.name in FUNCTIONS:
        try:
            validate_args(function.name, args)
        except InvalidArguments as exc:
            raise forms.BadInput("fx_err_service", detail=str(exc)) from None
    elif function.name == "remote_start":
        token = str(args.get("token_uid", ""))
        if not 1 <= len(token) <= 36 or not token.isprintable():
            raise forms.BadInput("fx_err_token", "fx_in_token")


@dataclass(frozen=True, slots=True)
class Answer:
    """What came of it: `outcome` accepted, rejected, refused, offline, unknown (sent, then the
    connection dropped), timeout, not_supported or error; the station's own word and its whole
    reply, or the reason."""

    outcome: str
    status: str | None = None
    reply: str | None = None
    message: str | None = None


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def command_failed(exc: CommandError) -> Answer:
    if isinstance(exc, StationOffline):
        return Answer("offline", message=str(exc))
    if isinstance(exc, OutcomeUnknown):
        return Answer("unknown", message=str(exc))
    if isinstance(exc, CommandTimeout):
        return Answer("timeout", message=str(exc))
    if isinstance(exc, CommandNotSupported):
        return Answer("not_supported", message=str(exc))
    return Answer("error", message=str(exc))


# as the API answers them (stekker.api.errors): an unknown outcome is 202, it may have happened
ANSWER_STATUS = {
    "offline": 409,
    "refused": 409,
    "unknown": 202,
    "timeout": 504,
    "error": 502,
    "not_supported": 422,
}


def answer_text(function: str, answer: Answer) -> str:
    """The text key of the sentence that says what came of it: the station's own word for this
    function if we have one ("the station unlocked the cable"), else for any function, else the
    outcome's."""
    if answer.outcome in ("accepted", "rejected") and answer.status:
        for key in (f"fx_said_{function}_{answer.status}", f"fx_said_{answer.status}"):
            if key in i18n.CATALOGUE:
                return key
        return f"fx_said_{answer.outcome}"
    return f"fx_outcome_{answer.outcome}"


async def perform(
    request: Request, user: auth.ConsoleUser, station_id: str, name: str, args: dict[str, Any]
) -> Answer:
    ctx = auth.get_ctx(request)
    try:
        if name == "remote_start":
            started = await remote.remote_start(
                ctx, user.actor, station_id, args["token_uid"], args.get("evse_number")
            )
            reply = {"status": started.status, "session_id": started.session_id}
            ok = started.status == "Accepted"
            return Answer("accepted" if ok else "rejected", started.status, _pretty(reply))
        if name == "remote_stop":
            stopped = await remote.remote_stop(ctx, user.actor, args["session_id"])
            ok = stopped.status == "Accepted"
            return Answer(
                "accepted" if ok else "rejected", stopped.status, _pretty({"status": stopped.status})
            )
        result = await run_function(ctx, user.actor, station_id, name, args)
    except (remote.RemoteRefused, remote.NotFound, UnknownStation, InvalidArguments) as exc:
        return Answer("refused", message=str(exc))
    except CommandError as exc:
        return command_failed(exc)
    return Answer("accepted" if result.accepted else "rejected", result.status, _pretty(result.reply))


# ---- pages: remote functions --------------------------------------------------------------------


def _function_or_404(name: str) -> forms.ConsoleFunction:
    found = forms.CATALOGUE.get(name)
    if found is None:
        raise PageNotFound()
    return found


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a form cannot be sent, in the reader's language, and the service's own words."""

    function: str
    text: str
    detail: str | None


def problem_of(request: Request, function: str, exc: forms.BadInput) -> Problem:
    lang = language(request)
    field = i18n.translate(lang, exc.field) if exc.field else ""
    return Problem(function, i18n.translate(lang, exc.problem, field=field, **exc.values), exc.detail)


async def _functions(
    request: Request,
    user: auth.ConsoleUser,
    station: ChargingStation,
    *,
    status_code: int = 200,
    open_fn: str | None = None,
    problem: Problem | None = None,
    given: Mapping[str, str] | None = None,
) -> Response:
    """The functions page: the station's functions by group, one open at a time (`open_fn`,
    with `problem` and the values `given` when a form came back)."""
    sessions = await active_sessions(request, station.id)
    facts = station_form(station, request, sessions)
    groups = [
        (
            group,
            [
                f
                for f in forms.CATALOGUE.values()
                if f.group == group and may(user, f.roles) and forms.shown_for(f, facts.version)
            ],
        )
        for group in forms.GROUPS
    ]
    return render(
        request,
        "station_functions.html",
        status_code,
        user=user,
        s=station,
        tab="functions",
        online=is_online(request, station.id),
        groups=[(g, fns) for g, fns in groups if fns],
        facts=facts,
        version=support.family(facts.version),
        sessions=sessions,
        open_fn=open_fn,
        problem=problem,
        given=given or {},
        choices_of=forms.choices_of,
    )


@router.get("/{station_id}/functions", response_class=HTMLResponse)
async def functions_page(
    request: Request,
    station_id: StationIdPath,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
    open: Annotated[str, Query(max_length=40, pattern=r"^[a-z_]*$")] = "",
) -> Response:
    station = await load_station(request, station_id)
    return await _functions(request, user, station, open_fn=open if open in forms.CATALOGUE else None)


def _from_session(params: Mapping[str, str], raw: Mapping[str, str]) -> str | None:
    """The session page to go back to when the stop was asked from there."""
    if params.get("from") == "session" and raw.get("session_id", "").isdigit():
        return f"/console/sessions/{raw['session_id']}"
    return None


@dataclass(frozen=True, slots=True)
class Affected:
    """A running session the function touches, as the confirmation names it."""

    id: int
    evse_number: int
    start_time: Any
    card: str | None


async def affected_sessions(
    request: Request, user: auth.ConsoleUser, name: str, args: dict[str, Any], sessions: list[ChargingSession]
) -> list[Affected]:
    """The running sessions where the function acts (one session, one EVSE or the station)."""
    if name == "remote_stop":
        touched = [s for s in sessions if s.id == args.get("session_id")]
    else:
        evse = support.where_it_acts(name, args)
        touched = [s for s in sessions if evse is None or s.evse_number == evse]
    return [Affected(s.id, s.evse_number, s.start_time, card_of(user, s.token_uid)) for s in touched]


def card_of(user: auth.ConsoleUser, uid: str | None) -> str | None:
    """The driver's card as the helpdesk reads it out: whole for those who see whole numbers,
    else its last four characters."""
    if uid is None:
        return None
    if user.role in FULL_UIDS:
        return uid
    return "****" + uid[-4:]


async def _confirm_or_run(
    request: Request,
    user: auth.ConsoleUser,
    station_id: str,
    name: str,
    params: Mapping[str, str],
    *,
    run: bool,
) -> Response:
    function = _function_or_404(name)
    if not may(user, function.roles):
        raise auth.Forbidden(user.role)
    station = await load_station(request, station_id)
    sessions = await active_sessions(request, station_id)
    facts = station_form(station, request, sessions)
    try:
        args, raw = forms.read_form(function, params, facts)
        check_args(function, args)
    except forms.BadInput as exc:
        problem = problem_of(request, name, exc)
        return await _functions(
            request, user, station, status_code=422, open_fn=name, problem=problem, given=params
        )
    back = _from_session(params, raw) or f"/console/stations/{station_id}/functions?open={name}"
    shown = [
        (f, forms.shown_value(f, raw[f.name], facts.version))
        for f in function.inputs_for(facts.version)
        if f.name in raw
    ]
    common: dict[str, Any] = {
        "user": user,
        "s": station,
        "tab": "functions",
        "function": function,
        "shown": shown,
        "back": back,
    }
    if not run:
        impact = support.session_impact(name, args, facts.version)
        return render(
            request,
            "station_confirm.html",
            **common,
            raw=raw,
            came_from=params.get("from") if params.get("from") == "session" else None,
            impact=impact,
            affected=await affected_sessions(request, user, name, args, sessions),
            online=is_online(request, station_id),
            post_to=f"/console/stations/{station_id}/functions/{name}",
        )
    answer = await perform(request, user, station_id, name, args)
    return render(
        request,
        "station_answer.html",
        ANSWER_STATUS.get(answer.outcome, 200),
        **common,
        what=f"fn_{name}",
        answer=answer,
        said=answer_text(name, answer),
    )


@router.get("/{station_id}/functions/{name}/confirm", response_class=HTMLResponse)
async def confirm_function(
    request: Request,
    station_id: StationIdPath,
    name: FunctionName,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
) -> Response:
    """What will happen, to whom, with the values as given; nothing is sent yet."""
    return await _confirm_or_run(request, user, station_id, name, request.query_params, run=False)


@router.post("/{station_id}/functions/{name}", response_class=HTMLResponse)
async def run_action(
    request: Request,
    station_id: StationIdPath,
    name: FunctionName,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
) -> Response:
    """Run it (after the confirmation, or at once for a function that only reads) and show the
    station's answer in words."""
    return await _confirm_or_run(request, user, station_id, name, await auth.form(request), run=True)


# ---- pages: configuration -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriftRow:
    label: str
    desired: str
    actual: str | None
    state: str
    template: str
    group: str


async def station_drift(request: Request, station_id: str, groups: list[str]) -> list[DriftRow]:
    """The station's drift from the templates of each group it is in."""
    ctx = auth.get_ctx(request)
    rows: list[DriftRow] = []
    for group in groups:
        try:
            report = await templates.group_drift(ctx, group)
        except UnknownGroup:
            continue
        for station in report.stations:
            if station.station_id == station_id:
                rows += [
                    DriftRow(e.label, e.desired, e.actual, e.state, e.template, group)
                    for e in station.entries
                ]
    return rows


_Filter = Annotated[str, Query(max_length=50)]


@router.get("/{station_id}/configuration", response_class=HTMLResponse)
async def configuration_page(
    request: Request,
    station_id: StationIdPath,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
    component: _Filter = "",
    variable: _Filter = "",
    label: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    station = await load_station(request, station_id)
    ctx = auth.get_ctx(request)
    rows = await device_model.list_variables(
        ctx, station_id, component.strip() or None, variable.strip() or None
    )
    async with ctx.db() as db:
        groups = (await inventory.groups_of(db, [station_id]))[station_id]
    drift = await station_drift(request, station_id, groups)
    labels = {r.id: label_of(r) for r in rows}
    return render(
        request,
        "station_configuration.html",
        user=user,
        s=station,
        tab="configuration",
        rows=rows,
        labels=labels,
        groups=groups,
        drift=drift,
        component=component,
        variable=variable,
        label=label,
        can_configure=may(user, CONFIGURE),
        online=is_online(request, station_id),
    )


def label_of(row: StationVariable) -> str:
    """How a stored value is named in a change: a 1.6 key bare, else Component.Variable."""
    if row.component == OCPP16_COMPONENT:
        return row.variable
    return VariableRef(
        row.component,
        row.variable,
        row.component_instance,
        row.variable_instance,
        row.evse_number,
        row.connector_number,
        row.attribute_type,
    ).label


def _read_change(params: Mapping[str, str]) -> tuple[str, str]:
    label = params.get("label", "").strip()
    value = params.get("value", "")
    if not label:
        raise BadInput("label: required")
    if len(label) > 200 or len(value) > 1000:
        raise BadInput("label or value: too long")
    try:
        parse_label(label)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return label, value


async def _current_value(request: Request, station_id: str, label: str) -> str | None:
    ref = parse_label(label)
    rows = await device_model.list_variables(auth.get_ctx(request), station_id, ref.component, ref.variable)
    for r in rows:
        same = (
            r.component_instance,
            r.evse_number,
            r.connector_number,
            r.variable_instance,
            r.attribute_type,
        )
        if same == (
            ref.component_instance,
            ref.evse_number,
            ref.connector_number,
            ref.variable_instance,
            ref.attribute_type,
        ):
            return r.value
    return None


@router.get("/{station_id}/configuration/confirm", response_class=HTMLResponse)
async def confirm_change(
    request: Request,
    station_id: StationIdPath,
    user: auth.ConsoleUser = Depends(auth.console(*CONFIGURE)),
) -> Response:
    station = await load_station(request, station_id)
    error: str | None = None
    label = value = ""
    current: str | None = None
    try:
        label, value = _read_change(request.query_params)
        current = await _current_value(request, station_id, label)
    except BadInput as exc:
        error = str(exc)
    return render(
        request,
        "station_change.html",
        400 if error else 200,
        user=user,
        s=station,
        tab="configuration",
        label=label,
        value=value,
        current=current,
        error=error,
        online=is_online(request, station_id),
    )


@router.post("/{station_id}/configuration", response_class=HTMLResponse)
async def change_configuration(
    request: Request,
    station_id: StationIdPath,
    user: auth.ConsoleUser = Depends(auth.console(*CONFIGURE)),
) -> Response:
    station = await load_station(request, station_id)
    back = f"/console/stations/{station_id}/configuration"
    try:
        label, value = _read_change(await auth.form(request))
    except BadInput as exc:
        return render(
            request,
            "station_change.html",
            400,
            user=user,
            s=station,
            tab="configuration",
            label="",
            value="",
            current=None,
            error=str(exc),
            online=is_online(request, station_id),
        )
    ctx = auth.get_ctx(request)
    try:
        [result] = await device_model.set_variables(
            ctx, user.actor, station_id, [(parse_label(label), value)]
        )
    except CommandError as exc:
        answer = command_failed(exc)
    else:
        ok = result.status in ("Accepted", "RebootRequired")
        detail = {"label": result.ref.label, "status": result.status, "reason": result.reason}
        answer = Answer("accepted" if ok else "rejected", result.status, _pretty(detail))
    return render(
        request,
        "station_answer.html",
        ANSWER_STATUS.get(answer.outcome, 200),
        user=user,
        s=station,
        tab="configuration",
        what="config_change",
        raw={"cfg_variable": label, "cfg_new_value": value},
        answer=answer,
        back=back,
    )


# ---- pages: timeline ----------------------------------------------------------------------------


@router.get("/{station_id}/timeline", response_class=HTMLResponse)
async def timeline_page(
    request: Request,
    station_id: StationIdPath,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
    hours: Annotated[int, Query(ge=1, le=helpdesk.MAX_TIMELINE_HOURS)] = 6,
    messages: Annotated[bool, Query()] = False,
) -> Response:
    """Status changes, sessions, connection events, people's actions and (asked for) the OCPP
    messages, newest first."""
    station = await load_station(request, station_id)
    ctx = auth.get_ctx(request)
    redactor = await redaction.redactor_for(ctx, user.role)
    async with ctx.db() as db:
        found = await helpdesk.timeline(
            db,
            station_id,
            until=ctx.now(),
            hours=hours,
            include_messages=messages,
            limit=TIMELINE_LIMIT,
            # a pseudonymised reader gets whole uids here, so its pseudonyms are the API's
            full_uids=user.role in FULL_UIDS or redactor.pseudonymises,
        )
    items = [_redacted(item, redactor) for item in reversed(found.items)]
    return render(
        request,
        "station_timeline.html",
        user=user,
        s=station,
        tab="timeline",
        items=items,
        truncated=found.truncated,
        hours=hours,
        hour_choices=TIMELINE_HOURS,
        messages=messages,
    )


def _redacted(item: helpdesk.TimelineItem, redactor: redaction.Redactor) -> helpdesk.TimelineItem:
    """The item as this reader may see it: card numbers (also in frames and in its summary) and
    upload secrets masked by the privacy policy."""
    shown = redactor.value({"summary": item.summary, "detail": item.detail})
    return replace(item, summary=shown["summary"], detail=shown["detail"])


__all__ = ["DRIVER_SUPPORT", "router"]
