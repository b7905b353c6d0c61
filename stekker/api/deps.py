"""Shared dependencies of the operator API: the service context and the caller's identity and role.

Every endpoint declares the roles it allows with `Depends(allow(...))`; admin is always allowed.
The role sets below are the house vocabulary, so endpoints read as policy:

    caller: Caller = Depends(allow(*CONFIGURE))
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from stekker.services.context import ServiceContext

_bearer = HTTPBearer(auto_error=False)


class Role(StrEnum):
    """What a user may do. Admin may do everything, including managing users."""

    ADMIN = "admin"
    OPERATOR = "operator"  # runs the network: configuration, firmware, bulk jobs, inventory
    HELPDESK = "helpdesk"  # helps drivers: find sessions, stop, unlock, reset
    MUNICIPALITY = "municipality"  # the client: reads everything, requests and downloads diagnostics
    READ_ONLY = "read-only"


# Role sets used by endpoints (admin is added by `allow`).
READ = (Role.OPERATOR, Role.HELPDESK, Role.MUNICIPALITY, Role.READ_ONLY)
CONFIGURE = (Role.OPERATOR,)
DRIVER_SUPPORT = (Role.OPERATOR, Role.HELPDESK)
DIAGNOSTICS = (Role.OPERATOR, Role.MUNICIPALITY)
ADMIN_ONLY: tuple[Role, ...] = ()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: `actor` is what the audit log records (e.g. "user:alice")."""

    actor: str
    role: Role
    user_id: int | None = None


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


async def authenticate(
    ctx: ServiceContext = Depends(get_ctx),
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Caller:
    """The caller behind the bearer token. With STEKKER_API_TOKEN set, that token is an admin.
    Without it, the API is open (single-operator demo form) and every caller is an admin."""
    expected = ctx.settings.api_token
    if expected is None:
        return Caller("operator", Role.ADMIN)
    if credentials is None or not hmac.compare_digest(credentials.credentials, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong API token (Authorization: Bearer ...)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Caller("api-token", Role.ADMIN)


class RoleCheck:
    """A dependency that admits callers with one of `roles` (admin always)."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = (Role.ADMIN, *(r for r in roles if r is not Role.ADMIN))

    async def __call__(self, caller: Caller = Depends(authenticate)) -> Caller:
        if caller.role not in self.roles:
            allowed = ", ".join(self.roles)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {caller.role} may not do this (allowed: {allowed})",
            )
        return caller


def allow(*roles: Role) -> Callable[..., Awaitable[Caller]]:
    return RoleCheck(tuple(roles))
