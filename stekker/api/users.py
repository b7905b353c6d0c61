"""Users, roles and API tokens."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/users", tags=["users"])
