"""Shared dependencies of the operator API: the service context and the caller's identity."""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stekker.services.context import ServiceContext

_bearer = HTTPBearer(auto_error=False)


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def get_actor(
    ctx: ServiceContext = Depends(get_ctx),
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> str:
    """The caller, for the audit log. With STEKKER_API_TOKEN set, the token is required.
    (Users and roles come with the station-management work; this is the single-operator form.)"""
    expected = ctx.settings.api_token
    if expected is None:
        return "operator"
    if credentials is None or not hmac.compare_digest(credentials.credentials, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong API token (Authorization: Bearer ...)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return "api-token"
