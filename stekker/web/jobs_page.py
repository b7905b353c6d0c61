"""Bulk jobs and diagnostics: start a job on a selection, watch each station, download files."""

from __future__ import annotations

from fastapi import APIRouter

from stekker.web.templating import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
