"""The audit log: who did what to which object, with filters."""

from __future__ import annotations

from fastapi import APIRouter

from stekker.web.templating import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
