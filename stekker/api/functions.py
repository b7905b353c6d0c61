"""Every remote function of a station, for OCPP 1.6 and 2.0.1 alike."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/stations", tags=["functions"])
