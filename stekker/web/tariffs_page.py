"""Tariffs: the operator drafts and submits, the municipality compares, approves or rejects."""

from __future__ import annotations

from fastapi import APIRouter

from stekker.web.templating import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
