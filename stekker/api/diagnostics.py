"""Diagnostics and log files: request, upload, download."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/diagnostics", tags=["diagnostics"])
