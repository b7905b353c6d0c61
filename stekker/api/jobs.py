"""Bulk jobs: one function on a selection of stations."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
