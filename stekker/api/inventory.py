"""Locations, EVSEs, connectors, groups and imports."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["inventory"])
