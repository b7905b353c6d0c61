"""The helpdesk screen: one search box, the live session, stop and release step by step."""

from __future__ import annotations

from fastapi import APIRouter

from stekker.web.templating import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
