"""The helpdesk's list of problems drivers reported from the public EVSE page.

`/console/helpdesk/problems` lists them (open ones first; `?all=1` every one, newest first);
`/console/helpdesk/problems/open` is the same list as a fragment, which the helpdesk page
loads into its own section (`_problem_reports.html`) and refreshes every minute. "Handled"
marks one handled (`services.problem_reports.handle`, audited) and comes back to the page it
was pressed on.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from stekker.api.deps import DRIVER_SUPPORT
from stekker.services import problem_reports
from stekker.services.errors import Conflict, Missing
from stekker.web import auth
from stekker.web.templating import ConsoleRoute, PageNotFound, render

router = APIRouter(prefix="/console/helpdesk/problems", route_class=ConsoleRoute, include_in_schema=False)

LIST_LIMIT = 200
_BACK = {"helpdesk": "/console/helpdesk", "list": "/console/helpdesk/problems"}


@router.get("", response_class=HTMLResponse)
async def problems_page(
    request: Request,
    user: auth.ConsoleUser = Depends(auth.console(*DRIVER_SUPPORT)),
    all_: Annotated[bool, Query(alias="all")] = False,
    done: Annotated[int | None, Query(ge=1)] = None,
    again: Annotated[bool, Query()] = False,
) -> Response:
    reports = await problem_reports.list_reports(auth.get_ctx(request), open_only=not all_, limit=LIST_LIMIT)
    return render(
        request,
        "problem_reports.html",
        user=user,
        reports=reports,
        show_all=all_,
        done=done,
        again=again,
        back="list",
    )


@router.get("/open", response_class=HTMLResponse)
async def open_fragment(
    request: Request, user: auth.ConsoleUser = Depends(auth.console(*DRIVER_SUPPORT))
) -> Response:
    reports = await problem_reports.list_reports(auth.get_ctx(request), open_only=True, limit=LIST_LIMIT)
    return render(
        request, "_problem_report_list.html", user=user, reports=reports, show_all=False, back="helpdesk"
    )


@router.post("/{report_id}/handled", response_class=HTMLResponse)
async def mark_handled(
    request: Request,
    report_id: Annotated[int, Path(ge=1, le=2**62)],
    user: auth.ConsoleUser = Depends(auth.console(*DRIVER_SUPPORT)),
) -> Response:
    back = _BACK.get((await auth.form(request)).get("back", ""), _BACK["list"])
    try:
        await problem_reports.handle(auth.get_ctx(request), actor=user.actor, report_id=report_id)
    except Missing:
        raise PageNotFound() from None
    except Conflict:
        return RedirectResponse(f"{_BACK['list']}?again=1", status_code=303)
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}done={report_id}", status_code=303)
