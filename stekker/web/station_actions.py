"""A station's configuration, timeline and remote functions in the console.

Each part is a page of its own under `/console/stations/{id}/` (the station page links to
them), so the station page itself stays as light as it is. Every change to a station goes
through a confirmation page that says what will happen, then shows the station's own answer
(accepted, rejected, offline, no answer). The work is done by the same services the REST API
calls (`services.functions`, `services.remote`, `services.device_model`,
`services.templates`, `services.helpdesk`), which audit it; roles are the API's: CONFIGURE
for configuration, each remote function's own roles (DRIVER_SUPPORT for reset, unlock,
availability, remote start and stop).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from stekker.api.deps import CONFIGURE, DRIVER_SUPPORT, READ, Role
from stekker.db.models import ChargingSession, ChargingStation, Evse, SessionStatus, StationVariable
from stekker.services import device_model, helpdesk, inventory, redaction, remote, templates
from stekker.services.device_model import OCPP16_COMPONENT, UnknownStation, VariableRef, parse_label
from stekker.services.functions import FUNCTIONS, InvalidArguments, run_function, validate_args
from stekker.services.ports import (
    CommandError,
    CommandNotSupported,
    CommandTimeout,
    StationCallError,
    StationOffline,
)
from stekker.services.selection import UnknownGroup
from stekker.web import auth
from stekker.web.templating import ConsoleRoute, PageNotFound, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

_STATION_ID = r"^[A-Za-z0-9*._:+|@-]{1,48}$"
StationIdPath = Annotated[str, Path(max_length=48, pattern=_STATION_ID)]
FunctionName = Annotated[str, Path(max_length=40, pattern=r"^[a-z_]{1,40}$")]
# Roles that see whole card numbers (as the API has it); others see the last four characters.
FULL_UIDS = (Role.ADMIN, Role.OPERATOR)
MAX_JSON = 65_536
TIMELINE_HOURS = (1, 6, 24, 72)
TIMELINE_LIMIT = 300


class BadInput(ValueError):
    """A form value cannot be used; the message says which and why."""


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


# ---- remote functions as forms ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormField:
    """One argument as a form field: `kind` int, str, bool, choice or datetime."""

    name: str
    kind: str
    required: bool
    choices: tuple[str, ...] = ()
    default: str = ""


@dataclass(frozen=True, slots=True)
class Action:
    """A remote function as the console offers it: a flat form, or (for nested arguments)
    one JSON field `args`."""

    name: str
    roles: tuple[str, ...]
    changes: bool
    fields: list[FormField] = field(default_factory=list)
    json_args: bool = False


def _simple(prop: dict[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    """(kind, choices) of a schema property a single form field can hold, else None."""
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    if len(options) != 1 or "$ref" in options[0]:
        return None
    only = options[0]
    if "enum" in only:
        return "choice", tuple(str(v) for v in only["enum"])
    kind = {"integer": "int", "string": "str", "boolean": "bool"}.get(str(only.get("type")))
    if kind == "str" and only.get("format") == "date-time":
        return "datetime", ()
    return (kind, ()) if kind else None


def _function_action(name: str) -> Action:
    spec = FUNCTIONS[name]
    schema = spec.schema()
    required = set(schema.get("required", []))
    fields: list[FormField] = []
    for prop_name, prop in schema.get("properties", {}).items():
        simple = _simple(prop)
        if simple is None:
            return Action(name, spec.roles, spec.changes, [], json_args=True)
        default = prop.get("default")
        fields.append(
            FormField(
                prop_name,
                simple[0],
                prop_name in required,
                simple[1],
                ""
                if default is None
                else str(default).lower()
                if isinstance(default, bool)
                else str(default),
            )
        )
    return Action(name, spec.roles, spec.changes, fields)


def actions() -> dict[str, Action]:
    """Every remote function of the REST API, plus remote start and stop."""
    found = {name: _function_action(name) for name in sorted(FUNCTIONS)}
    roles = tuple(r.value for r in DRIVER_SUPPORT)
    found["remote_start"] = Action(
        "remote_start",
        roles,
        True,
        [FormField("token_uid", "str", True), FormField("evse_number", "int", False)],
    )
    found["remote_stop"] = Action("remote_stop", roles, True, [FormField("session_id", "int", True)])
    return dict(sorted(found.items()))


def read_args(action: Action, params: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The arguments a form gives (typed), and the raw values to carry to the next step."""
    if action.json_args:
        text = params.get("args", "").strip() or "{}"
        if len(text) > MAX_JSON:
            raise BadInput(f"args: longer than {MAX_JSON} characters")
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise BadInput(f"args: not valid JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise BadInput('args: give a JSON object, e.g. {"evse_number": 1}')
        return parsed, {"args": text}
    args: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for f in action.fields:
        value = params.get(f.name, "").strip()
        if len(value) > 6000:
            raise BadInput(f"{f.name}: too long")
        if not value:
            if f.required and not f.default:
                raise BadInput(f"{f.name}: required")
            continue
        raw[f.name] = value
        if f.kind == "int":
            try:
                args[f.name] = int(value)
            except ValueError:
                raise BadInput(f"{f.name}: not a whole number") from None
        elif f.kind == "bool":
            if value not in ("true", "false"):
                raise BadInput(f"{f.name}: choose yes or no")
            args[f.name] = value == "true"
        elif f.kind == "choice" and value not in f.choices:
            raise BadInput(f"{f.name}: choose one of {', '.join(f.choices)}")
        else:
            args[f.name] = value
    return args, raw


def check_args(station_id: str, action: Action, args: dict[str, Any]) -> None:
    """The service's own validation, before anything is asked of the station."""
    if action.name in FUNCTIONS:
        try:
            validate_args(action.name, args)
        except InvalidArguments as exc:
            raise BadInput(str(exc)) from None
    elif action.name == "remote_start":
        token = str(args.get("token_uid", ""))
        if not 1 <= len(token) <= 36 or not token.isprintable():
            raise BadInput("token_uid: 1 to 36 printable characters")
        if "evse_number" in args and not 1 <= args["evse_number"] <= 1000:
            raise BadInput("evse_number: 1 to 1000")
    elif action.name == "remote_stop" and not 1 <= args["session_id"] <= 2**53:
        raise BadInput("session_id: not a session")


@dataclass(frozen=True, slots=True)
class Answer:
    """What came of it: `outcome` accepted, rejected, refused, offline, timeout, not_supported or
    error; the station's own word and its whole reply, or the reason."""

    outcome: str
    status: str | None = None
    reply: str | None = None
    message: str | None = None


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def command_failed(exc: CommandError) -> Answer:
    if isinstance(exc, StationOffline):
        return Answer("offline", message=str(exc))
    if isinstance(exc, CommandTimeout):
        return Answer("timeout", message=str(exc))
    if isinstance(exc, CommandNotSupported):
        return Answer("not_supported", message=str(exc))
    if isinstance(exc, StationCallError):
        return Answer("error", message=str(exc))
    return Answer("error", message=str(exc))


ANSWER_STATUS = {"offline": 409, "refused": 409, "timeout": 504, "error": 502, "not_supported": 422}


async def perform(
    request: Request, user: auth.ConsoleUser, station_id: str, action: Action, args: dict[str, Any]
) -> Answer:
    ctx = auth.get_ctx(request)
    try:
        if action.name == "remote_start":
            started = await remote.remote_start(
                ctx, user.actor, station_id, args["token_uid"], args.get("evse_number")
            )
            ok = started.status == "Accepted"
            return Answer(
                "accepted" if ok else "rejected", started.status, _pretty({"status": started.status})
            )
        if action.name == "remote_stop":
            ours = {s.id for s in await active_sessions(request, station_id)}
            if args["session_id"] not in ours:
                return Answer(
                    "refused", message=f"session {args['session_id']} is not running at {station_id}"
                )
            stopped = await remote.remote_stop(ctx, user.actor, args["session_id"])
            ok = stopped.status == "Accepted"
            return Answer(
                "accepted" if ok else "rejected", stopped.status, _pretty({"status": stopped.status})
            )
        result = await run_function(ctx, user.actor, station_id, action.name, args)
    except remote.RemoteRefused as exc:
        return Answer("refused", message=str(exc))
    except (remote.NotFound, UnknownStation) as exc:
        return Answer("refused", message=str(exc))
    except InvalidArguments as exc:
        return Answer("refused", message=str(exc))
    except CommandError as exc:
        return command_failed(exc)
    return Answer("accepted" if result.accepted else "rejected", result.status, _pretty(result.reply))


# ---- pages: remote functions --------------------------------------------------------------------


@router.get("/{station_id}/functions", response_class=HTMLResponse)
async def functions_page(
    request: Request,
    station_id: StationIdPath,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
) -> Response:
    station = await load_station(request, station_id)
    allowed = [a for a in actions().values() if may(user, a.roles)]
    return render(
        request,
        "station_functions.html",
        user=user,
        s=station,
        tab="functions",
        online=is_online(request, station_id),
        allowed=allowed,
        sessions=await active_sessions(request, station_id),
    )


def _action_or_404(name: str) -> Action:
    found = actions().get(name)
    if found is None:
        raise PageNotFound()
    return found


@router.get("/{station_id}/functions/{name}/confirm", response_class=HTMLResponse)
async def confirm_function(
    request: Request,
    station_id: StationIdPath,
    name: FunctionName,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
) -> Response:
    """What will happen, with the arguments as given; nothing is sent yet."""
    action = _action_or_404(name)
    if not may(user, action.roles):
        raise auth.Forbidden(user.role)
    station = await load_station(request, station_id)
    error: str | None = None
    raw: dict[str, str] = {}
    try:
        args, raw = read_args(action, request.query_params)
        check_args(station_id, action, args)
    except BadInput as exc:
        error = str(exc)
    return render(
        request,
        "station_confirm.html",
        400 if error else 200,
        user=user,
        s=station,
        tab="functions",
        action=action,
        raw=raw,
        error=error,
        online=is_online(request, station_id),
        post_to=f"/console/stations/{station_id}/functions/{name}",
        back=f"/console/stations/{station_id}/functions",
    )


@router.post("/{station_id}/functions/{name}", response_class=HTMLResponse)
async def run_action(
    request: Request,
    station_id: StationIdPath,
    name: FunctionName,
    user: auth.ConsoleUser = Depends(auth.console(*READ)),
) -> Response:
    """Run it (after the confirmation) and show the station's answer."""
    action = _action_or_404(name)
    if not may(user, action.roles):
        raise auth.Forbidden(user.role)
    station = await load_station(request, station_id)
    try:
        args, raw = read_args(action, await auth.form(request))
        check_args(station_id, action, args)
    except BadInput as exc:
        return render(
            request,
            "station_confirm.html",
            400,
            user=user,
            s=station,
            tab="functions",
            action=action,
            raw={},
            error=str(exc),
            online=is_online(request, station_id),
            post_to=f"/console/stations/{station_id}/functions/{name}",
            back=f"/console/stations/{station_id}/functions",
        )
    answer = await perform(request, user, station_id, action, args)
    return render(
        request,
        "station_answer.html",
        ANSWER_STATUS.get(answer.outcome, 200),
        user=user,
        s=station,
        tab="functions",
        what=f"fn_{action.name}",
        raw=raw,
        answer=answer,
        back=f"/console/stations/{station_id}/functions",
    )


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
        raw={"label": label, "value": value},
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
