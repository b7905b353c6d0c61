"""What tests observe, as a user would: polling until something shows, and the API's views."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import httpx


async def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll `check` (plain or async) until it returns something truthy, and return that."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def sessions_of(api: httpx.AsyncClient, station_id: str) -> list[dict[str, Any]]:
    response = await api.get("/api/sessions", params={"station_id": station_id})
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def add_token(api: httpx.AsyncClient, uid: str, **extra: Any) -> dict[str, Any]:
    response = await api.put("/api/tokens", json={"uid": uid, **extra})
    assert response.status_code in (200, 201), response.text
    token: dict[str, Any] = response.json()
    return token
