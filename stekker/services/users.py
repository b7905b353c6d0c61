"""Users, their roles and API tokens: creating and changing them (audited), logging in, and
resolving a bearer token to the user behind it.

A token is verified against the database at most once per `auth_cache_seconds` per process;
in between the verdict comes from an in-process cache. Every change that can take rights
away (revoke, disable, role change) empties this process's cache at once, and publishes
`auth.changed` after commit: every process that runs `follow_auth_changes` empties its own on
that event (fan-out over the bus; within a second in a cluster). Should the event be lost (a
Redis outage), the other processes still follow within the cache window.

Wrong passwords are throttled by `cluster.limits.SharedLoginThrottle`: cluster-wide in Redis
when the context has one, in this process's memory otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.bus import Event
from stekker.cluster.limits import SharedLoginThrottle, login_throttle_for
from stekker.db.models_users import ApiToken, Role, User
from stekker.domain.passwords import hash_password, verify_password
from stekker.invocation import stekker_command
from stekker.services.audit import audit
from stekker.services.context import ServiceContext

log = logging.getLogger(__name__)

TOKEN_PREFIX = "stk_"
_LAST_USED_EVERY = timedelta(seconds=60)  # write last_used_at at most this often per token


class UserNotFound(LookupError):
    """No such user or API token."""


class UserConflict(Exception):
    """The change cannot be made as asked (name taken, last admin, ...); the message says why."""


class NotPermitted(Exception):
    """The caller may not act on another user's tokens."""


class AuthFailed(Exception):
    """The credentials do not identify an active user (HTTP 401); the message says why."""


class LoginThrottled(Exception):
    """Too many wrong passwords from this client address (for this name, or for any): the
    attempt was refused without checking the password (HTTP 429 with Retry-After)."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed logins: try again in {retry_after} s")


@dataclass(frozen=True, slots=True)
class Identity:
    """The user behind a verified API token."""

    user_id: int
    username: str
    role: Role
    token_id: int
    token_name: str
    token_expires_at: datetime | None


# ---- the in-process cache -------------------------------------------------------------------


@dataclass(slots=True)
class _Cached:
    identity: Identity
    until: float  # time.monotonic() after which the database is asked again


@dataclass
class AuthCache:
    """Per service context: verified tokens, whether users exist, and the login throttle (made
    from the settings on first use; names that do not exist are counted like real ones, so
    the throttle does not reveal which names exist)."""

    tokens: dict[str, _Cached] = field(default_factory=dict)
    users_exist: bool = False
    users_checked: float = -math.inf
    throttle: SharedLoginThrottle | None = None
    warned_open: bool = False
    generation: int = 0  # bumped by invalidate(), so a lookup racing a revoke is not cached

    def invalidate(self) -> None:
        self.generation += 1
        self.tokens.clear()


_caches: dict[int, AuthCache] = {}


def auth_cache(ctx: ServiceContext) -> AuthCache:
    """The cache of this service context (dropped with the context)."""
    key = id(ctx)
    cache = _caches.get(key)
    if cache is None:
        cache = _caches[key] = AuthCache()
        weakref.finalize(ctx, _caches.pop, key, None)
    return cache


def _hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token_secret() -> str:
    """`stk_` and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


# ---- authentication -------------------------------------------------------------------------


async def any_users(ctx: ServiceContext) -> bool:
    """Whether any user exists (disabled ones too). Users are never deleted, so once true it
    stays true; false is asked again after the cache window."""
    cache = auth_cache(ctx)
    if cache.users_exist:
        return True
    now = time.monotonic()
    if now - cache.users_checked < ctx.settings.auth_cache_seconds:
        return False
    async with ctx.db() as db:
        exists = (await db.execute(select(User.id).limit(1))).first() is not None
    cache.users_exist, cache.users_checked = exists, now
    return exists


def warn_open_once(ctx: ServiceContext) -> None:
    cache = auth_cache(ctx)
    if not cache.warned_open:
        cache.warned_open = True
        log.warning(
            "the operator API is OPEN: no STEKKER_API_TOKEN and no users yet, so every caller is an "
            "admin. Create the first user now: `%s user add NAME --role admin`.",
            stekker_command(),
        )


async def identify(ctx: ServiceContext, secret: str) -> Identity:
    """The active user behind an API token, or AuthFailed saying why not."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise AuthFailed("unknown API token")
    digest = _hash_token(secret)
    cache = auth_cache(ctx)
    now = ctx.now()
    cached = cache.tokens.get(digest)
    if cached is not None and cached.until > time.monotonic():
        expires = cached.identity.token_expires_at
        if expires is None or expires > now:
            return cached.identity
        cache.tokens.pop(digest, None)
    generation = cache.generation
    async with ctx.db() as db:
        row = (
            await db.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == digest)
            )
        ).first()
    if row is None:
        raise AuthFailed("unknown API token")
    token, user = row
    if token.revoked_at is not None:
        raise AuthFailed(f"API token {token.id} ({token.name}) was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthFailed(f"API token {token.id} ({token.name}) expired at {token.expires_at.isoformat()}")
    if not user.active:
        raise AuthFailed(f"user {user.username} is disabled")
    identity = Identity(user.id, user.username, Role(user.role), token.id, token.name, token.expires_at)
    if ctx.settings.auth_cache_seconds > 0 and generation == cache.generation:
        if len(cache.tokens) > 10_000:
            cache.tokens.clear()
        cache.tokens[digest] = _Cached(identity, time.monotonic() + ctx.settings.auth_cache_seconds)
    if token.last_used_at is None or now - token.last_used_at > _LAST_USED_EVERY:

        async def touch(db: AsyncSession) -> None:
            await db.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))

        await ctx.write(touch)
    return identity


# ---- the cache across processes --------------------------------------------------------------

AUTH_CHANGED = "auth.changed"


async def auth_changed(ctx: ServiceContext, what: str, **detail: Any) -> None:
    """After a committed change that takes rights away (`what`: "user", "token", or "station"
    with its `station_id`, none for many at once): this process's cache is emptied at once, and
    every other process is told (`follow_auth_changes`). A bus that cannot publish (Redis away)
    is logged, not raised: the change is committed, and the other processes' token caches
    expire within `auth_cache_seconds` anyway (a station's cached password needs the stored
    hash it was verified with, read afresh at every handshake)."""
    _drop(ctx, what, detail.get("station_id"))
    try:
        await ctx.bus.publish(Event(AUTH_CHANGED, {"what": what, "node": ctx.node.node_id, **detail}))
    except Exception as exc:
        log.warning("%s (%s) not announced to the other processes: %s", AUTH_CHANGED, what, exc)


def follow_auth_changes(ctx: ServiceContext) -> Callable[[], None]:
    """Empty this process's auth caches whenever any process announces `auth.changed`: API
    tokens and users (`what` "user"/"token"), a station's verified password ("station", and
    on `station.changed` / `station.retired`). Fan-out subscriptions (every process sees every
    event). Returns the unsubscribe."""

    async def on_change(event: Event) -> None:
        _drop(ctx, str(event.data.get("what")), event.data.get("station_id"))

    async def on_station(event: Event) -> None:  # a password may have changed with the rest
        _drop(ctx, "station", event.data.get("station_id"))

    undo = [
        ctx.bus.subscribe(AUTH_CHANGED, on_change),
        ctx.bus.subscribe("station.changed", on_station),
        ctx.bus.subscribe("station.retired", on_station),
    ]

    def unsubscribe() -> None:
        for one in undo:
            one()

    return unsubscribe


def _drop(ctx: ServiceContext, what: str, station_id: Any) -> None:
    if what == "station":
        if isinstance(station_id, str):
            ctx.credentials.forget(station_id)
        else:
            ctx.credentials.clear()
    else:  # users and tokens, and whatever a newer process may announce: the safe side
        auth_cache(ctx).invalidate()


# ---- users ----------------------------------------------------------------------------------


async def _user(db: AsyncSession, username: str, *, lock: bool = False) -> User:
    query = select(User).where(User.username == username.lower())
    if lock:
        query = query.with_for_update()
    user = (await db.execute(query)).scalar_one_or_none()
    if user is None:
        raise UserNotFound(f"no user {username!r}")
    return user


async def _other_active_admins(db: AsyncSession, user: User) -> int:
    """Locks the admins' rows, so two admins demoting each other at once cannot leave none."""
    query = (
        select(User.id)
        .where(User.role == Role.ADMIN.value, User.active.is_(True), User.id != user.id)
        .with_for_update()
    )
    return len((await db.execute(query)).all())


def _user_audit(
    db: AsyncSession, ctx: ServiceContext, actor: str, action: str, user: User, **detail: Any
) -> None:
    audit(db, actor=actor, action=action, object_type="user", object_id=user.username, at=ctx.now(), **detail)


async def create_user(
    ctx: ServiceContext, actor: str, username: str, password: str, role: Role, display_name: str | None = None
) -> User:
    """A new active user. On an open API (no STEKKER_API_TOKEN, no users) the first user must be
    an admin, or nobody could manage users afterwards."""
    username = username.lower()
    password_hash = await asyncio.to_thread(hash_password, password)
    now = ctx.now()

    async def job(db: AsyncSession) -> User:
        existing = (await db.execute(select(User.id).where(User.username == username))).first()
        if existing is not None:
            raise UserConflict(f"user {username!r} already exists")
        first = (await db.execute(select(User.id).limit(1))).first() is None
        if first and ctx.settings.api_token is None and role is not Role.ADMIN:
            raise UserConflict(
                "the first user must be an admin: once a user exists the API needs a token, and "
                "only an admin can create the others"
            )
        user = User(
            username=username,
            display_name=display_name,
            role=role.value,
            active=True,
            password_hash=password_hash,
            failed_logins=0,
            created_at=now,
            updated_at=now,
        )
        db.add(user)
        await db.flush()
        _user_audit(db, ctx, actor, "user.created", user, role=role.value, display_name=display_name)
        return user

    try:
        user = await ctx.write(job)
    except IntegrityError:
        raise UserConflict(f"user {username!r} already exists") from None
    auth_cache(ctx).users_exist = True
    return user


async def list_users(ctx: ServiceContext) -> list[User]:
    async with ctx.db() as db:
        return list((await db.execute(select(User).order_by(User.username))).scalars())


async def get_user(ctx: ServiceContext, username: str) -> User:
    async with ctx.db() as db:
        return await _user(db, username)


async def get_user_by_id(ctx: ServiceContext, user_id: int) -> User:
    async with ctx.db() as db:
        user = await db.get(User, user_id)
    if user is None:
        raise UserNotFound(f"no user {user_id}")
    return user


async def set_role(ctx: ServiceContext, actor: str, username: str, role: Role) -> User:
    async def job(db: AsyncSession) -> User:
        user = await _user(db, username, lock=True)
        before = user.role
        if before == role.value:
            return user
        if before == Role.ADMIN.value and user.active and not await _other_active_admins(db, user):
            raise UserConflict(f"{user.username} is the last active admin: make another admin first")
        user.role, user.updated_at = role.value, ctx.now()
        _user_audit(db, ctx, actor, "user.role.changed", user, before=before, after=role.value)
        return user

    user = await ctx.write(job)
    await auth_changed(ctx, "user", user=user.username)
    return user


async def set_active(ctx: ServiceContext, actor: str, username: str, active: bool) -> User:
    """Disable (every token of the user stops working) or enable a user."""

    async def job(db: AsyncSession) -> User:
        user = await _user(db, username, lock=True)
        if user.active == active:
            return user
        if not active and user.role == Role.ADMIN.value and not await _other_active_admins(db, user):
            raise UserConflict(f"{user.username} is the last active admin: make another admin first")
        user.active, user.updated_at = active, ctx.now()
        _user_audit(db, ctx, actor, "user.enabled" if active else "user.disabled", user)
        return user

    user = await ctx.write(job)
    await auth_changed(ctx, "user", user=user.username)
    return user


async def set_display_name(ctx: ServiceContext, actor: str, username: str, display_name: str | None) -> User:
    async def job(db: AsyncSession) -> User:
        user = await _user(db, username, lock=True)
        before = user.display_name
        user.display_name, user.updated_at = display_name, ctx.now()
        _user_audit(
            db, ctx, actor, "user.updated", user, display_name_before=before, display_name=display_name
        )
        return user

    return await ctx.write(job)


async def reset_password(ctx: ServiceContext, actor: str, username: str, password: str) -> User:
    """A new password. (Existing tokens stay valid: revoke them, or disable the user, when an
    account is compromised.)"""
    password_hash = await asyncio.to_thread(hash_password, password)

    async def job(db: AsyncSession) -> User:
        user = await _user(db, username, lock=True)
        user.password_hash, user.updated_at = password_hash, ctx.now()
        _user_audit(db, ctx, actor, "user.password.reset", user)  # never the password itself
        return user

    return await ctx.write(job)


async def change_own_password(ctx: ServiceContext, user_id: int, current: str, new: str) -> User:
    """A user changes their own password, proving the current one (NotPermitted if wrong)."""
    user = await get_user_by_id(ctx, user_id)
    if not await asyncio.to_thread(verify_password, current, user.password_hash):
        raise NotPermitted("the current password is wrong")
    password_hash = await asyncio.to_thread(hash_password, new)

    async def job(db: AsyncSession) -> User:
        user = await db.get(User, user_id, with_for_update=True)
        if user is None:
            raise UserNotFound(f"no user {user_id}")
        user.password_hash, user.updated_at = password_hash, ctx.now()
        _user_audit(db, ctx, f"user:{user.username}", "user.password.changed", user)
        return user

    return await ctx.write(job)


# ---- API tokens -----------------------------------------------------------------------------


async def create_token(
    ctx: ServiceContext, actor: str, username: str, name: str, expires_at: datetime | None
) -> tuple[ApiToken, str]:
    """A new token for a user; the secret is returned here and never again."""
    secret = new_token_secret()
    now = ctx.now()
    if expires_at is not None and expires_at <= now:
        raise UserConflict(f"expires_at {expires_at.isoformat()} is in the past")

    async def job(db: AsyncSession) -> ApiToken:
        user = await _user(db, username)
        if not user.active:
            raise UserConflict(f"user {user.username} is disabled: enable it first")
        token = _new_token(user, name, secret, actor, now, expires_at)
        db.add(token)
        await db.flush()
        _token_audit(db, ctx, actor, "api_token.created", token, user)
        return token

    return await ctx.write(job), secret


def _new_token(
    user: User, name: str, secret: str, actor: str, now: datetime, expires_at: datetime | None
) -> ApiToken:
    return ApiToken(
        user_id=user.id,
        name=name,
        token_hash=_hash_token(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 4],
        created_by=actor,
        created_at=now,
        expires_at=expires_at,
    )


def _token_audit(
    db: AsyncSession, ctx: ServiceContext, actor: str, action: str, token: ApiToken, user: User
) -> None:
    expires = token.expires_at.isoformat() if token.expires_at else None
    audit(
        db,
        actor=actor,
        action=action,
        object_type="api_token",
        object_id=token.id,
        at=ctx.now(),
        user=user.username,
        name=token.name,
        expires_at=expires,
    )


async def list_tokens(ctx: ServiceContext, username: str) -> list[ApiToken]:
    async with ctx.db() as db:
        user = await _user(db, username)
        query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
        return list((await db.execute(query)).scalars())


async def token_owner(ctx: ServiceContext, token_id: int) -> tuple[ApiToken, User]:
    async with ctx.db() as db:
        row = (
            await db.execute(
                select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.id == token_id)
            )
        ).first()
    if row is None:
        raise UserNotFound(f"no API token {token_id}")
    token, user = row
    return token, user


async def revoke_token(
    ctx: ServiceContext, actor: str, token_id: int, owner_id: int | None = None
) -> ApiToken:
    """Revoke a token (idempotent). With `owner_id`, only a token of that user may be revoked."""

    async def job(db: AsyncSession) -> ApiToken:
        token = await db.get(ApiToken, token_id, with_for_update=True)
        if token is None:
            raise UserNotFound(f"no API token {token_id}")
        if owner_id is not None and token.user_id != owner_id:
            raise NotPermitted(f"API token {token_id} is not yours (only an admin may revoke it)")
        if token.revoked_at is None:
            token.revoked_at = ctx.now()
            user = await db.get(User, token.user_id)
            assert user is not None
            _token_audit(db, ctx, actor, "api_token.revoked", token, user)
        return token

    token = await ctx.write(job)
    await auth_changed(ctx, "token", token_id=token.id)
    return token


# ---- login ----------------------------------------------------------------------------------

_dummy_hash: str | None = None


def _verify_or_waste(password: str, stored: str | None) -> bool:
    """Verify, or spend the same time on a dummy hash, so timing does not tell which user
    names exist."""
    global _dummy_hash
    if stored is None:
        if _dummy_hash is None:
            _dummy_hash = hash_password(secrets.token_hex(16))
        verify_password(password, _dummy_hash)
        return False
    return verify_password(password, stored)


def login_throttle(ctx: ServiceContext) -> SharedLoginThrottle:
    """The login throttle of this service context, shared by the API and the console (and, with
    Redis, by every process of the cluster)."""
    cache = auth_cache(ctx)
    if cache.throttle is None:
        settings = ctx.settings
        cache.throttle = login_throttle_for(
            ctx.redis,
            ctx.keys,
            "login",
            free_failures=settings.login_free_failures,
            address_free_failures=settings.login_address_free_failures,
            max_delay=timedelta(seconds=settings.login_max_delay_seconds),
        )
    return cache.throttle


async def login(
    ctx: ServiceContext, username: str, password: str, token_name: str = "login", *, address: str
) -> tuple[User, ApiToken, str]:
    """Check a user's password, from the client at `address`, and issue a token valid for
    `login_token_hours`.

    Wrong passwords are throttled per (name, address) and per address
    (`domain.login_throttle`): while one must wait, LoginThrottled is raised before the
    password is checked or the database asked. Never per name alone, so nobody can lock a
    user out from elsewhere. Attempts on existing users are audited (`auth.login`, result ok,
    failed or disabled, with the address); failures are logged with the name only when the
    user exists (a name that does not exist may be a password typed in the wrong field).
    """
    username = username.lower()
    throttle = login_throttle(ctx)
    now = ctx.now()
    wait = await throttle.admit(username, address, now)
    if wait is not None:
        log.info("login refused for %d s more: too many failed logins from %s", wait, address)
        raise LoginThrottled(wait)
    async with ctx.db() as db:
        user = (await db.execute(select(User).where(User.username == username))).scalar_one_or_none()
    stored = user.password_hash if user is not None else None
    ok = await asyncio.to_thread(_verify_or_waste, password, stored)
    if not ok:
        wait = await throttle.retry_after(username, address, now)
        if user is None:
            log.info("failed login for an unknown user name from %s", address)
        else:
            log.info("failed login for user %s from %s", user.username, address)
            await ctx.write(_audit_login(ctx, user.id, "failed", address=address, retry_after=wait or 0))
        raise AuthFailed("wrong user name or password")
    await throttle.succeeded(username, address)
    assert user is not None
    if not user.active:
        await ctx.write(_audit_login(ctx, user.id, "disabled", address=address))
        raise AuthFailed(f"user {username} is disabled")
    secret = new_token_secret()
    expires_at = now + timedelta(hours=ctx.settings.login_token_hours)
    actor = f"user:{username}"
    user_id = user.id

    async def job(db: AsyncSession) -> tuple[User, ApiToken]:
        user = await db.get(User, user_id, with_for_update=True)
        if user is None or not user.active:  # disabled (or gone) since the password check
            raise AuthFailed(f"user {username} is disabled")
        user.last_login_at = now
        token = _new_token(user, token_name, secret, actor, now, expires_at)
        db.add(token)
        await db.flush()
        _user_audit(db, ctx, actor, "auth.login", user, token_id=token.id, address=address)
        return user, token

    logged_in, token = await ctx.write(job)
    return logged_in, token, secret


def _audit_login(
    ctx: ServiceContext, user_id: int, result: str, **detail: Any
) -> Callable[[AsyncSession], Awaitable[None]]:
    """A write job auditing an anonymous login attempt on an existing user (never the password)."""

    async def job(db: AsyncSession) -> None:
        user = await db.get(User, user_id)
        if user is not None:
            _user_audit(db, ctx, "anonymous", "auth.login", user, result=result, **detail)

    return job
