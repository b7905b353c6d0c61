"""Users, roles and API tokens; logging in; reading the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from stekker.api import paging as api_paging
from stekker.api.deps import ADMIN_ONLY, AUDIT, READ, Caller, Role, allow, get_ctx
from stekker.api.params import IsoDateTime
from stekker.db.models import AuditEntry
from stekker.db.models_users import ApiToken, User
from stekker.services import paging, users
from stekker.services.context import ServiceContext

USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

auth_router = APIRouter(prefix="/api/auth", tags=["auth"])
users_router = APIRouter(prefix="/api/users", tags=["users"])
audit_router = APIRouter(prefix="/api/audit", tags=["audit"])

router = APIRouter()


# ---- models ---------------------------------------------------------------------------------


class UserIn(BaseModel):
    username: str = Field(
        pattern=USERNAME, description="Login name: letters, digits, . _ @ -; stored in lower case."
    )
    password: str = Field(min_length=8, max_length=256)
    role: Role
    display_name: str | None = Field(default=None, max_length=255, pattern=PRINTABLE)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str | None
    role: Role
    active: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


class UserPatch(BaseModel):
    display_name: str | None = Field(max_length=255, pattern=PRINTABLE)


class RoleIn(BaseModel):
    role: Role


class PasswordIn(BaseModel):
    password: str = Field(min_length=8, max_length=256)


class ApiTokenRequest(BaseModel):
    """A new API token for a user: what it is for, and when it expires (never, by default)."""

    name: str = Field(default="api", min_length=1, max_length=100, pattern=PRINTABLE)
    expires_days: int | None = Field(default=None, ge=1, le=3650, description="Unset: no expiry.")
    expires_at: datetime | None = Field(
        default=None, description="ISO 8601 with an offset (or expires_days)."
    )

    @model_validator(mode="after")
    def _one_expiry(self) -> ApiTokenRequest:
        if self.expires_days is not None and self.expires_at is not None:
            raise ValueError("give expires_days or expires_at, not both")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a UTC offset, e.g. 2027-01-01T00:00:00Z")
        return self


class ApiTokenOut(BaseModel):
    """An API token as listed: never its secret, only its first characters (`prefix`)."""

    id: int
    username: str
    name: str
    prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    usable: bool = Field(description="Neither revoked nor expired (the user may still be disabled).")


class TokenCreated(ApiTokenOut):
    token: str = Field(description="The secret: send it as `Authorization: Bearer ...`. Shown only now.")


class OwnPasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class LoginIn(BaseModel):
    username: str = Field(pattern=USERNAME)
    password: str = Field(min_length=1, max_length=256)
    token_name: str = Field(default="login", min_length=1, max_length=100, pattern=PRINTABLE)


class LoginOut(TokenCreated):
    role: Role


class MeOut(BaseModel):
    actor: str
    role: Role
    user: UserOut | None
    token_id: int | None


class AuditOut(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    result: str
    detail: dict[str, object]


def _user_out(u: User) -> UserOut:
    return UserOut(
        id=u.id,
        username=u.username,
        display_name=u.display_name,
        role=Role(u.role),
        active=u.active,
        created_at=u.created_at,
        updated_at=u.updated_at,
        last_login_at=u.last_login_at,
    )


def _token_out(t: ApiToken, username: str, now: datetime) -> ApiTokenOut:
    usable = t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
    return ApiTokenOut(
        id=t.id,
        username=username,
        name=t.name,
        prefix=t.prefix,
        created_by=t.created_by,
        created_at=t.created_at,
        expires_at=t.expires_at,
        last_used_at=t.last_used_at,
        revoked_at=t.revoked_at,
        usable=usable,
    )


def _created(t: ApiToken, username: str, secret: str, now: datetime) -> TokenCreated:
    return TokenCreated(**_token_out(t, username, now).model_dump(), token=secret)


UsernamePath = Path(pattern=USERNAME, max_length=64, description="The user's login name.")


def _self_or_admin(caller: Caller, user: User) -> None:
    if caller.role is not Role.ADMIN and caller.user_id != user.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an admin may manage another user's API tokens")


# ---- login ----------------------------------------------------------------------------------


@auth_router.post(
    "/token",
    summary="Log in for an API token",
    response_model=LoginOut,
    status_code=201,
    responses={
        401: {"description": "Wrong user name or password (the same answer for a name that is no user)."},
        429: {"description": "Too many wrong passwords from your address: wait `Retry-After` seconds."},
    },
)
async def login(body: LoginIn, request: Request, ctx: ServiceContext = Depends(get_ctx)) -> LoginOut:
    """Log in with user name and password: a new API token for that user, valid for
    `login_token_hours`. After wrong passwords from your address the next attempt must wait
    1, 2, 4, ... s (429 with Retry-After, the password is not checked); other addresses are
    not slowed.

    Roles: anyone (no token needed)."""
    address = request.client.host if request.client is not None else "unknown"
    try:
        user, token, secret = await users.login(
            ctx, body.username, body.password, body.token_name, address=address
        )
    except users.LoginThrottled as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except users.AuthFailed as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    return LoginOut(**_created(token, user.username, secret, ctx.now()).model_dump(), role=Role(user.role))


@auth_router.get("/me", response_model=MeOut, summary="Who am I")
async def me(ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*READ))) -> MeOut:
    """Who the API takes you for: the user and role behind your token."""
    user = None
    if caller.user_id is not None:
        user = _user_out(await users.get_user_by_id(ctx, caller.user_id))
    return MeOut(actor=caller.actor, role=caller.role, user=user, token_id=caller.token_id)


@auth_router.post("/password", response_model=UserOut, summary="Change your own password")
async def change_own_password(
    body: OwnPasswordIn, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*READ))
) -> UserOut:
    """Change your own password, giving the current one (403 if wrong). Your tokens stay valid."""
    if caller.user_id is None:
        raise HTTPException(409, f"{caller.actor} is not a user: only a user's token has a password")
    return _user_out(
        await users.change_own_password(ctx, caller.user_id, body.current_password, body.new_password)
    )


@auth_router.post("/tokens/{token_id}/revoke", response_model=ApiTokenOut, summary="Revoke an API token")
async def revoke_token(
    token_id: int = Path(ge=1, le=2**31 - 1),
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*READ)),
) -> ApiTokenOut:
    """Revoke an API token: it stops working at once (within `auth_cache_seconds` on other
    API processes). Your own tokens; an admin's, anyone's."""
    token, user = await users.token_owner(ctx, token_id)
    _self_or_admin(caller, user)
    owner = None if caller.role is Role.ADMIN else caller.user_id
    token = await users.revoke_token(ctx, caller.actor, token_id, owner_id=owner)
    return _token_out(token, user.username, ctx.now())


# ---- users ----------------------------------------------------------------------------------


@users_router.post("", response_model=UserOut, status_code=201)
async def create_user(
    body: UserIn, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*ADMIN_ONLY))
) -> UserOut:
    """Create a user with a role and a password. On a fresh install (no users, no
    STEKKER_API_TOKEN) the API is open and the first user must be an admin."""
    user = await users.create_user(
        ctx, caller.actor, body.username, body.password, body.role, body.display_name
    )
    return _user_out(user)


@users_router.get("", response_model=list[UserOut])
async def list_users(
    ctx: ServiceContext = Depends(get_ctx), _caller: Caller = Depends(allow(*ADMIN_ONLY))
) -> list[UserOut]:
    return [_user_out(u) for u in await users.list_users(ctx)]


@users_router.get("/{username}", response_model=UserOut)
async def get_user(
    username: str = UsernamePath,
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*ADMIN_ONLY)),
) -> UserOut:
    return _user_out(await users.get_user(ctx, username))


@users_router.patch("/{username}", response_model=UserOut)
async def update_user(
    body: UserPatch,
    username: str = UsernamePath,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*ADMIN_ONLY)),
) -> UserOut:
    """Change the display name."""
    return _user_out(await users.set_display_name(ctx, caller.actor, username, body.display_name))


@users_router.put("/{username}/role", response_model=UserOut)
async def change_role(
    body: RoleIn,
    username: str = UsernamePath,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*ADMIN_ONLY)),
) -> UserOut:
    """Give a user another role (effective at once for their tokens). The last active admin
    cannot be demoted (409)."""
    return _user_out(await users.set_role(ctx, caller.actor, username, body.role))


@users_router.post("/{username}/disable", response_model=UserOut)
async def disable_user(
    username: str = UsernamePath,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*ADMIN_ONLY)),
) -> UserOut:
    """Disable a user: login and every token of theirs stop working (401). Not the last admin."""
    return _user_out(await users.set_active(ctx, caller.actor, username, False))


@users_router.post("/{username}/enable", response_model=UserOut)
async def enable_user(
    username: str = UsernamePath,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*ADMIN_ONLY)),
) -> UserOut:
    """Enable a disabled user again."""
    return _user_out(await users.set_active(ctx, caller.actor, username, True))


@users_router.post("/{username}/password", response_model=UserOut, summary="Set a user's password")
async def reset_password(
    body: PasswordIn,
    username: str = UsernamePath,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*ADMIN_ONLY)),
) -> UserOut:
    """Set a new password. Existing tokens stay valid."""
    return _user_out(await users.reset_password(ctx, caller.actor, username, body.password))


@users_router.post(
    "/{username}/tokens", response_model=TokenCreated, status_code=201, summary="Create an API token"
)
async def create_token(
    body: ApiTokenRequest,
    username: str = UsernamePath,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*READ)),
) -> TokenCreated:
    """A new API token for yourself, or, as an admin, for any user. The secret (`stk_...`) is in
    this answer only; we keep just its hash."""
    user = await users.get_user(ctx, username)
    _self_or_admin(caller, user)
    now = ctx.now()
    expires_at = body.expires_at
    if body.expires_days is not None:
        expires_at = now + timedelta(days=body.expires_days)
    token, secret = await users.create_token(ctx, caller.actor, user.username, body.name, expires_at)
    return _created(token, user.username, secret, now)


@users_router.get("/{username}/tokens", response_model=list[ApiTokenOut], summary="List a user's API tokens")
async def list_tokens(
    username: str = UsernamePath,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*READ)),
) -> list[ApiTokenOut]:
    """A user's API tokens, without secrets: your own, or as an admin anyone's."""
    user = await users.get_user(ctx, username)
    _self_or_admin(caller, user)
    now = ctx.now()
    return [_token_out(t, user.username, now) for t in await users.list_tokens(ctx, user.username)]


# ---- audit log ------------------------------------------------------------------------------


@audit_router.get("", response_model=list[AuditOut], responses=api_paging.LINK)
async def read_audit_log(
    request: Request,
    response: Response,
    ctx: ServiceContext = Depends(get_ctx),
    _caller: Caller = Depends(allow(*AUDIT)),
    actor: str | None = Query(None, max_length=100, description='e.g. "user:alice" or "api-token"'),
    action: str | None = Query(None, max_length=100, description='Prefix, e.g. "user." or "station.reset"'),
    object_type: str | None = Query(None, max_length=50),
    object_id: str | None = Query(None, max_length=100),
    since: IsoDateTime | None = Query(None, alias="from", description="ISO 8601 with an offset."),
    until: IsoDateTime | None = Query(None, alias="to", description="ISO 8601 with an offset (exclusive)."),
    limit: int = Query(100, ge=1, le=1000),
    after: int | None = api_paging.after_id(),
    offset: int = api_paging.old_offset(),
) -> list[AuditOut]:
    """The audit log, newest first: who did what to which object, when, with what result;
    key-set pages (`after`, `Link` header)."""
    api_paging.position(after, offset)
    for label, value in (("from", since), ("to", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"{label} needs a UTC offset, e.g. 2027-01-01T00:00:00Z")
    query = paging.by_id(select(AuditEntry), AuditEntry.id, after, newest_first=True, limit=limit).offset(
        offset
    )
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if action is not None:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if object_type is not None:
        query = query.where(AuditEntry.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditEntry.object_id == object_id)
    if since is not None:
        query = query.where(AuditEntry.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEntry.occurred_at < until)
    async with ctx.db() as db:
        page = paging.cut((await db.execute(query)).scalars().all(), limit, lambda e: e.id)
    api_paging.link_next(request, response, page)
    return [
        AuditOut(
            id=e.id,
            occurred_at=e.occurred_at,
            actor=e.actor,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            result=e.result,
            detail=e.detail or {},
        )
        for e in page.rows
    ]


router.include_router(auth_router)
router.include_router(users_router)
router.include_router(audit_router)
