"""Exports of historical data: choose a kind, a period and a format, download.

For the roles that may export (`export.service.EXPORT_ROLES`: operator, municipality; admin).
The download goes through the same service as `GET /api/exports/{kind}`: `parse_request`,
then `start` (which checks the references, decides on pseudonyms by role, audits
`export.started`) and its streamed bytes (audited `export.finished`). The municipality always
gets pseudonyms; operator and admin may ask for them. The period is whole days in home time.
The form is a POST with the CSRF token, so another site cannot start an export.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from stekker.db.models_users import Role
from stekker.export import service
from stekker.export.formats import ExportFormat
from stekker.services.errors import Forbidden, Missing, ServiceError
from stekker.web import auth, i18n
from stekker.web.format import HOME
from stekker.web.templating import ConsoleRoute, language, render

router = APIRouter(prefix="/console/exports", route_class=ConsoleRoute, include_in_schema=False)

ROLES = service.EXPORT_ROLES
FORMATS = [f.value for f in ExportFormat]


def may_reveal(role: Role) -> bool:
    return role in service.REVEAL_ROLES


def _page(
    request: Request,
    user: auth.ConsoleUser,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "exports.html",
        status_code,
        user=user,
        kinds=service.kinds(),
        formats=FORMATS,
        may_reveal=may_reveal(user.role),
        form=form or {},
        error=error,
    )


@router.get("", response_class=HTMLResponse)
async def export_form(request: Request, user: auth.ConsoleUser = Depends(auth.console(*ROLES))) -> Response:
    return _page(request, user)


class BadField(ValueError):
    """A form field that is not what it should be (the message is a catalogue key)."""


def home_day(text: str, *, end: bool = False) -> str | None:
    """`2026-11-24` as the start of that day in home time (`end`: of the next day), as ISO 8601."""
    text = text.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadField("aud_bad_date") from None
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=HOME).isoformat()


def _number(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 10:
        raise BadField("exp_bad_number")
    return int(text)


@router.post("/download", response_model=None)
async def download(request: Request, user: auth.ConsoleUser = Depends(auth.console(*ROLES))) -> Response:
    fields = await auth.form(request)
    lang = language(request)
    kept = {k: v for k, v in fields.items() if k != auth.CSRF_FIELD}
    asked: bool | None = True if fields.get("pseudonymise") == "yes" else None
    if not may_reveal(user.role):
        asked = True
    try:
        request_ = service.parse_request(
            fields.get("kind", ""),
            start=home_day(fields.get("from", "")),
            end=home_day(fields.get("to", ""), end=True),
            format=fields.get("format", "csv"),
            station=fields.get("station", "").strip() or None,
            location=_number(fields.get("location", "")),
            partner=_number(fields.get("partner", "")),
        )
        started = await service.start(
            auth.get_ctx(request), actor=user.actor, role=user.role, request=request_, pseudonymise=asked
        )
    except BadField as exc:
        return _page(request, user, form=kept, error=i18n.translate(lang, str(exc)), status_code=400)
    except ServiceError as exc:
        code = 404 if isinstance(exc, Missing) else 403 if isinstance(exc, Forbidden) else 400
        msg = i18n.translate(lang, "adm_refused", detail=str(exc))
        return _page(request, user, form=kept, error=msg, status_code=code)
    return StreamingResponse(
        started.chunks(),
        media_type=started.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{started.file_name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Pseudonymised": "true" if started.pseudonymised else "false",
        },
    )
