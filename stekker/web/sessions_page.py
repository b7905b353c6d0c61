"""Sessions and CDRs: lists, details and a chart of power and energy over time."""

from __future__ import annotations

from fastapi import APIRouter

from stekker.web.templating import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
