"""Report a problem at an EVSE (`/p/{evse_uid}/report`): the form a driver reaches from the
public page, and its submission into the helpdesk's list (`services.problem_reports`).

The page has no session, so a submission must prove itself in other ways, each checked
before the next, cheapest first (the body limit of `/p/` comes before all of them):
1. **same origin**: a browser's `Origin` header, when sent, names this site;
2. **signed form token** (`domain.problem_reports.form_token`), good for one EVSE and a few
   hours, so a form cannot be posted without first being served by us;
3. the **report itself**: a known kind, words and contact within their lengths, no control
   characters. A mistake shows the form again with the driver's text kept and the reason;
4. **throttle**: of the reports that would be stored, `REPORT_BURST` at once per sending
   address, then `REPORTS_PER_HOUR` (a 429 page with Retry-After; the address is held in
   memory only). Refused attempts cost no token: a driver's typo does not lock them out, and
   a flood of bad requests stores nothing and costs no more than reading a small form.
Text is shown escaped everywhere (Jinja autoescape). The form page is never cached: it holds
a fresh token.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from stekker.domain.problem_reports import (
    MAX_CONTACT,
    MAX_MESSAGE,
    BadReport,
    ProblemKind,
    ReportThrottle,
    check_report,
    form_token,
    form_token_ok,
)
from stekker.services import evse_prices, problem_reports
from stekker.services.errors import Missing
from stekker.web import auth, i18n
from stekker.web.public import EvseUid
from stekker.web.templating import ConsoleRoute, PageNotFound, language, render

router = APIRouter(prefix="/p", route_class=ConsoleRoute, include_in_schema=False)

KINDS = tuple(ProblemKind)


def throttle_of(request: Request) -> ReportThrottle:
    """The app's throttle of report submissions (one per HTTP app, made on first use)."""
    throttle: ReportThrottle | None = getattr(request.app.state, "problem_report_throttle", None)
    if throttle is None:
        throttle = request.app.state.problem_report_throttle = ReportThrottle()
    return throttle


def _same_origin(request: Request) -> bool:
    """No `Origin` (not a browser, or an old one: the token still has to hold), or this site."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def _evse_exists(request: Request, evse_uid: str) -> None:
    """PageNotFound unless a station in service has this EVSE (the public page's own lookup)."""
    try:
        await evse_prices.evse_price(auth.get_ctx(request), evse_uid=evse_uid)
    except Missing:
        raise PageNotFound("evse_not_found", public=True) from None


async def _form_page(
    request: Request, evse_uid: str, status_code: int = 200, *, error: str | None = None, **fields: Any
) -> HTMLResponse:
    ctx = auth.get_ctx(request)
    token = form_token(await problem_reports.form_key(ctx), evse_uid, ctx.now())
    response = render(
        request,
        "report_problem.html",
        status_code,
        public=True,
        evse_uid=evse_uid,
        kinds=KINDS,
        token=token,
        error=error,
        chosen=fields.get("kind", ""),
        message=fields.get("message", ""),
        contact=fields.get("contact", ""),
        max_message=MAX_MESSAGE,
        max_contact=MAX_CONTACT,
    )
    response.headers["Cache-Control"] = "no-store"  # the token is fresh for each visitor
    return response


@router.get("/{evse_uid}/report", response_class=HTMLResponse)
async def report_form(request: Request, evse_uid: EvseUid) -> Response:
    await _evse_exists(request, evse_uid)
    return await _form_page(request, evse_uid)


def _error_text(lang: i18n.Lang, exc: BadReport) -> str:
    key = f"rep_err_{exc.field}_{exc.reason}" if exc.reason != "control_chars" else "rep_err_control_chars"
    limit = MAX_CONTACT if exc.field == "contact" else MAX_MESSAGE
    return i18n.translate(lang, key, max=limit)


@router.post("/{evse_uid}/report", response_class=HTMLResponse)
async def send_report(request: Request, evse_uid: EvseUid) -> Response:
    lang = language(request)
    if not _same_origin(request):
        message = i18n.translate(lang, "rep_err_cross_site")
        return render(request, "error.html", 403, public=True, title_key="error_title", message=message)
    fields = await auth.form(request)  # BadForm (too big, not a form) becomes a 400 page
    kind, message_text, contact = (fields.get(k, "") for k in ("kind", "message", "contact"))
    ctx = auth.get_ctx(request)
    if not form_token_ok(await problem_reports.form_key(ctx), evse_uid, fields.get("token", ""), ctx.now()):
        error = i18n.translate(lang, "rep_err_token")
        return await _form_page(
            request, evse_uid, 400, error=error, kind=kind, message=message_text, contact=contact
        )
    try:
        draft = check_report(kind, message_text, contact)
    except BadReport as exc:
        return await _form_page(
            request,
            evse_uid,
            400,
            error=_error_text(lang, exc),
            kind=kind,
            message=message_text,
            contact=contact,
        )
    # counted cluster-wide when clustered (every process's reports from this address)
    wait = await problem_reports.take_report_slot(ctx, throttle_of(request), auth.client_address(request))
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        message = i18n.translate(lang, "rep_err_too_many", minutes=minutes)
        page = render(request, "error.html", 429, public=True, title_key="error_title", message=message)
        page.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        page.headers["Cache-Control"] = "no-store"
        return page
    try:
        await problem_reports.report(ctx, evse_uid=evse_uid, draft=draft, language=lang)
    except Missing:
        raise PageNotFound("evse_not_found", public=True) from None
    return RedirectResponse(f"/p/{quote(evse_uid, safe='*')}?reported=1", status_code=303)
