"""The web console for operators, the helpdesk and the municipality (`/console/`), and the
public pages for drivers (`/p/{evse_uid}`, the QR sticker's target): server-rendered with
Jinja2, live with htmx and Server-Sent Events, no JavaScript build step.

`router` holds every route; the HTTP app includes it once. Pages are added as one module
each (a router with `route_class=ConsoleRoute` and `Depends(auth.console(*ROLES))`),
included below.
"""

from __future__ import annotations

from fastapi import APIRouter

from stekker.web import (
    assets,
    audit_page,
    dashboard,
    exports_page,
    helpdesk_page,
    jobs_page,
    login,
    map_data,
    problem_reports_page,
    public,
    public_report,
    sessions_page,
    stations,
    tariffs_page,
    tokens_page,
    users_page,
)

router = APIRouter(include_in_schema=False)
for _module in (
    assets,
    login,
    dashboard,
    stations,
    map_data,
    helpdesk_page,
    sessions_page,
    tariffs_page,
    jobs_page,
    tokens_page,
    audit_page,
    exports_page,
    users_page,
    problem_reports_page,
    public,
    public_report,
):
    router.include_router(_module.router)

__all__ = ["router"]
