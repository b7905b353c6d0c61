"""Who is using the console: the login session, CSRF protection, the login throttle and the
role check every console page and action passes.

The session is server-side: logging in (`services.users.login`, the same password check and
login throttle as the API) issues an API token named "console", and its secret is the session
cookie (HttpOnly, SameSite=Lax, Secure behind https). The database holds only its hash, so
a session works in every API process, ends at `login_token_hours`, and logging out revokes
it. Disabling a user or revoking the token ends the session at once in this process and
within `auth_cache_seconds` in others.

CSRF: every state-changing request carries a token, in the form field `csrf_token` or (htmx)
the `X-CSRF-Token` header. Logged in, it is an HMAC of the session secret, so it needs no
storage and a token from one session is worthless in another; before login (the login form
itself) it is a random cookie echoed in the form (double submit). A cross-site `Origin` is
refused as well.

Login throttle: the API's (`services.users.login`, `domain.login_throttle`), keyed on the
client address that uvicorn gives (behind a proxy: its forwarded headers). The message never
says whether the user name exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from fastapi import Request

from stekker.api.deps import Role
from stekker.services import users
from stekker.services.context import ServiceContext

SESSION_COOKIE = "stekker_session"
LOGIN_CSRF_COOKIE = "stekker_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
TOKEN_NAME = "console"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 64 * 1024


class NeedLogin(Exception):
    """No valid session: the browser goes to the login page."""


class Forbidden(Exception):
    """The user's role may not see or do this."""

    def __init__(self, role: Role) -> None:
        super().__init__(f"role {role} may not do this")
        self.role = role


class CsrfFailed(Exception):
    """A state-changing request without a valid CSRF token (or from another site)."""


class BadForm(ValueError):
    """The request body is not a form we read (too large, wrong encoding)."""


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """The logged-in person: who (for the audit log: `actor`), with which role, and the token
    that is their session."""

    user_id: int
    username: str
    role: Role
    token_id: int
    session_secret: str = field(repr=False)

    @property
    def actor(self) -> str:
        return f"user:{self.username}"

    @property
    def csrf_token(self) -> str:
        return session_csrf(self.session_secret)


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def session_csrf(secret: str) -> str:
    """The CSRF token of a session: an HMAC of its secret (which never leaves the cookie)."""
    return hmac.new(secret.encode(), b"stekker-console-csrf", hashlib.sha256).hexdigest()


def secure_cookies(request: Request) -> bool:
    """Whether cookies get the Secure flag: `console_secure_cookies` when set, else when the
    request came in over https (behind a proxy: uvicorn's forwarded headers)."""
    configured = getattr(get_ctx(request).settings, "console_secure_cookies", None)
    if isinstance(configured, bool):
        return configured
    return request.url.scheme == "https"


async def current_user(request: Request) -> ConsoleUser | None:
    """The user of the session cookie, or None (no cookie, expired, revoked, disabled)."""
    if hasattr(request.state, "console_user"):
        cached: ConsoleUser | None = request.state.console_user
        return cached
    user: ConsoleUser | None = None
    secret = request.cookies.get(SESSION_COOKIE)
    if secret and len(secret) <= 200:
        try:
            identity = await users.identify(get_ctx(request), secret)
        except users.AuthFailed:
            identity = None
        if identity is not None and identity.token_name == TOKEN_NAME:
            user = ConsoleUser(identity.user_id, identity.username, identity.role, identity.token_id, secret)
    request.state.console_user = user
    return user


async def form(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST (first value per field), read once per request."""
    cached: dict[str, str] | None = getattr(request.state, "console_form", None)
    if cached is not None:
        return cached
    fields: dict[str, str] = {}
    if request.method not in SAFE_METHODS:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise BadForm(f"the form is larger than {MAX_FORM_BYTES} bytes")
        if body and kind != "application/x-www-form-urlencoded":
            raise BadForm("send the form as application/x-www-form-urlencoded")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadForm(f"unreadable form: {exc}") from None
        for name, value in pairs:
            fields.setdefault(name, value)
    request.state.console_form = fields
    return fields


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def check_csrf(request: Request, expected: str | None) -> None:
    """CsrfFailed unless the request carries `expected` (header or form field) and comes from
    this site."""
    if not _same_origin(request):
        raise CsrfFailed("cross-site request")
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        presented = (await form(request)).get(CSRF_FIELD)
    if not expected or not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise CsrfFailed("missing or wrong CSRF token")


def login_csrf(request: Request) -> str:
    """The pre-login CSRF token: the cookie's value, or a new one (the page sets the cookie)."""
    existing = request.cookies.get(LOGIN_CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    fresh: str | None = getattr(request.state, "new_login_csrf", None)
    if fresh is None:
        fresh = request.state.new_login_csrf = secrets.token_urlsafe(24)
    return fresh


class Guard:
    """A dependency that admits logged-in users with one of `roles` (admin always), and checks
    the CSRF token of every state-changing request."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = (Role.ADMIN, *(r for r in roles if r is not Role.ADMIN))

    async def __call__(self, request: Request) -> ConsoleUser:
        user = await current_user(request)
        if user is None:
            raise NeedLogin()
        if user.role not in self.roles:
            raise Forbidden(user.role)
        if request.method not in SAFE_METHODS:
            await check_csrf(request, user.csrf_token)
        return user


def console(*roles: Role) -> Guard:
    """`Depends(console(*READ))`: the console's counterpart of `api.deps.allow`."""
    return Guard(tuple(roles))


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"
