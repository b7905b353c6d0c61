"""The console's main menu: each page and the roles that see it (admin sees every page).

A page checks its own roles on every request; the menu only leaves out what the user would
be refused, so nobody clicks into a "no access" page.
"""

from __future__ import annotations

from stekker.api.deps import AUDIT, DRIVER_SUPPORT, READ, Role
from stekker.web.auth import ConsoleUser

#: (path, text key, roles besides admin), in menu order after Dashboard and Stations
PAGES: tuple[tuple[str, str, tuple[Role, ...]], ...] = (
    ("/console/helpdesk", "nav_helpdesk", DRIVER_SUPPORT),
    ("/console/sessions", "nav_sessions", READ),
    ("/console/cdrs", "nav_cdrs", READ),
    ("/console/tariffs", "nav_tariffs", (Role.OPERATOR, Role.MUNICIPALITY)),
    ("/console/jobs", "nav_jobs", (Role.OPERATOR, Role.MUNICIPALITY)),
    ("/console/tokens", "nav_tokens", DRIVER_SUPPORT),
    ("/console/audit", "nav_audit", AUDIT),
    ("/console/exports", "nav_exports", (Role.OPERATOR, Role.MUNICIPALITY)),
    ("/console/users", "nav_users", ()),
)


def menu(user: ConsoleUser | None) -> list[tuple[str, str]]:
    """The (path, text key) of the pages `user` may open."""
    if user is None:
        return []
    return [(path, key) for path, key, roles in PAGES if user.role is Role.ADMIN or user.role in roles]
