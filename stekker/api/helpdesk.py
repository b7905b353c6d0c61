"""Find a driver's session and stop and release it."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/helpdesk", tags=["helpdesk"])
