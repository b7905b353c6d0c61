"""Shared dependencies of the operator API: the service context and the caller's identity and role.

Every endpoint declares the roles it allows with `Depends(allow(...))`; admin is always allowed.
The role sets below are the house vocabulary, so endpoints read as policy:

    caller: Caller = Depends(allow(*CONFIGURE))

Who the caller is (`authenticate`), in this order:
- `Authorization: Bearer <STEKKER_API_TOKEN>`: the bootstrap admin (actor "api-token");
- `Authorization: Bearer stk_...`: a user's API token, with that user's role (actor "user:NAME");
- no STEKKER_API_TOKEN and no user yet: the API is open and every caller is an admin (the
  single-operator demo); as soon as one user exists a token is required.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import BaseRoute

from stekker.db.models_users import Role
from stekker.invocation import stekker_command
from stekker.services import users
from stekker.services.context import ServiceContext

__all__ = [
    "ADMIN_ONLY",
    "AUDIT",
    "CONFIGURE",
    "DIAGNOSTICS",
    "DRIVER_SUPPORT",
    "READ",
    "Caller",
    "Role",
    "RoleCheck",
    "allow",
    "annotate_roles",
    "authenticate",
    "get_ctx",
    "only",
    "route_roles",
]

_bearer = HTTPBearer(auto_error=False, description="`stk_...` (a user's API token) or STEKKER_API_TOKEN")


# Role sets used by endpoints (admin is added by `allow`).
READ = (Role.OPERATOR, Role.HELPDESK, Role.MUNICIPALITY, Role.READ_ONLY)
CONFIGURE = (Role.OPERATOR,)
DRIVER_SUPPORT = (Role.OPERATOR, Role.HELPDESK)
DIAGNOSTICS = (Role.OPERATOR, Role.MUNICIPALITY)
AUDIT = (Role.OPERATOR, Role.MUNICIPALITY)  # who did what: the operator's managers, the client's auditor
ADMIN_ONLY: tuple[Role, ...] = ()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: `actor` is what the audit log records (e.g. "user:alice"); `user_id` and
    `token_id` are set when a user's API token was presented."""

    actor: str
    role: Role
    user_id: int | None = None
    token_id: int | None = None


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(
    request: Request,
    ctx: ServiceContext = Depends(get_ctx),
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Caller:
    """The caller behind the bearer token (see the module docstring). It stays in the request
    state: the privacy policy on the way out (`stekker.api.redaction`) depends on its role."""
    caller = await _identify(ctx, credentials)
    request.state.caller = caller
    return caller


async def _identify(ctx: ServiceContext, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    bootstrap = ctx.settings.api_token
    if bootstrap is None and not await users.any_users(ctx):
        users.warn_open_once(ctx)
        return Caller("operator", Role.ADMIN)
    if credentials is None:
        raise _unauthorized(
            "an API token is required (Authorization: Bearer ...): log in with POST /api/auth/token, "
            f"or use a token from `{stekker_command()} user token NAME`"
        )
    presented = credentials.credentials
    if bootstrap is not None and hmac.compare_digest(presented.encode(), bootstrap.encode()):
        return Caller("api-token", Role.ADMIN)
    try:
        identity = await users.identify(ctx, presented)
    except users.AuthFailed as exc:
        raise _unauthorized(str(exc)) from None
    return Caller(f"user:{identity.username}", identity.role, identity.user_id, identity.token_id)


class RoleCheck:
    """A dependency that admits callers with one of `roles` (admin too, unless `admin=False`)."""

    def __init__(self, roles: tuple[Role, ...], admin: bool = True) -> None:
        others = tuple(r for r in roles if r is not Role.ADMIN)
        self.roles = (Role.ADMIN, *others) if admin else others

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


def only(*roles: Role) -> Callable[..., Awaitable[Caller]]:
    """Exactly these roles, not even admin: for the municipality's own decisions (approving a
    tariff, setting the maximum price), which the operator's admin must not take for it."""
    return RoleCheck(tuple(roles), admin=False)


def _role_checks(dependant: Dependant) -> list[RoleCheck]:
    """Every RoleCheck in a route's dependency tree."""
    checks: list[RoleCheck] = []
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, RoleCheck):
            checks.append(dependency.call)
        checks.extend(_role_checks(dependency))
    return checks


def route_roles(route: APIRoute, inherited: Sequence[RoleCheck] = ()) -> list[Role] | None:
    """The roles a route admits (all of its checks must pass), or None if it checks none."""
    checks = [*inherited, *_role_checks(route.dependant)]
    if not checks:
        return None
    return [role for role in checks[0].roles if all(role in check.roles for check in checks[1:])]


def _api_routes(
    routes: Sequence[BaseRoute], inherited: list[RoleCheck]
) -> Iterator[tuple[APIRoute, list[RoleCheck]]]:
    """Every APIRoute as declared, with the role checks its inclusion adds. Older FastAPI copies
    included routes into the app; newer versions keep the router (`original_router`) and build
    per-inclusion copies lazily from the declared routes, so those are what we annotate."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route, inherited
            continue
        original = getattr(route, "original_router", None)
        if original is not None:
            context = getattr(route, "include_context", None)
            added = [
                d.dependency
                for d in getattr(context, "dependencies", [])
                if isinstance(getattr(d, "dependency", None), RoleCheck)
            ]
            yield from _api_routes(original.routes, inherited + added)


def annotate_roles(app: FastAPI) -> None:
    """State in the OpenAPI document which roles each route allows: "Roles: ..." at the end of
    its description and `x-roles` on the operation. Call after every router is included,
    before the first request."""
    for route, inherited in _api_routes(app.routes, []):
        roles = route_roles(route, inherited)
        if roles is None:
            continue
        names = [r.value for r in roles]
        line = "Roles: " + ", ".join(names) + "."
        if line not in (route.description or ""):
            route.description = f"{route.description}\n\n{line}" if route.description else line
        extra: dict[str, Any] = dict(route.openapi_extra or {})
        extra["x-roles"] = names
        route.openapi_extra = extra
    app.openapi_schema = None
