"""Rendering pages: one Jinja2 environment (autoescaped), the helpers every template gets
(`t` for text in the user's language, the formatters, the CSRF token), the security headers
of every page, and the route class that turns "not logged in", "not your role", a bad CSRF
token or bad input into a proper page instead of JSON."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from stekker.web import auth, badges, format, i18n, words
from stekker.web.menu import menu

_env = Environment(
    loader=PackageLoader("stekker.web", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    datetime=format.format_datetime,
    date=format.format_date,
    money=format.money_filter,
    unit_price=format.unit_price_filter,
    component_price=format.component_price_filter,
    energy=format.format_energy,
    number=format.format_int,
    decimal=format.format_decimal,
    authentication=format.station_authentication,
)
_env.globals.update(badge_kind=badges.kind)  # badge_kind("station", "Charging") -> "busy"
# stored codes in the reader's words: {{ words.stop_reason(lang, s.stop_reason) }}
_env.globals.update(words=words)

# Scripts and styles come only from our own files: no inline script can run, so an escaping
# slip cannot become script execution. htmx's own indicator <style> is switched off in the
# page's htmx-config meta tag for the same reason.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def security_headers(img_sources: Sequence[str] = ()) -> dict[str, str]:
    """The house headers; `img_sources` (the map's tile server) are allowed for images only,
    never for scripts, styles or connections."""
    if not img_sources:
        return SECURITY_HEADERS
    policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self' data:;", f"img-src 'self' data: {' '.join(img_sources)};"
    )
    return {**SECURITY_HEADERS, "Content-Security-Policy": policy}


def language(request: Request) -> i18n.Lang:
    """`?lang=` if given, else the cookie, else Dutch."""
    asked = request.query_params.get("lang")
    return i18n.pick(asked if asked is not None else request.cookies.get(i18n.COOKIE))


def url_with(request: Request, **changes: str | None) -> str:
    """The current path and query with some parameters changed (None drops one)."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    *,
    user: auth.ConsoleUser | None = None,
    public: bool = False,
    img_sources: Sequence[str] = (),
    **context: Any,
) -> HTMLResponse:
    """A page (or fragment) in the user's language with the house headers. Console pages are
    not cached; public pages may be, briefly."""
    lang = language(request)
    # a public page (cached, shared) never sets the pre-login CSRF cookie: it has no form that needs it
    csrf = user.csrf_token if user is not None else (None if public else auth.login_csrf(request))
    body = _env.get_template(template).render(
        request=request,
        lang=lang,
        t=partial(i18n.translate, lang),
        user=user,
        csrf_token=csrf,
        url_with=partial(url_with, request),
        status_text=partial(status_text, lang),
        menu=menu,
        **context,
    )
    response = HTMLResponse(body, status_code=status_code, headers=security_headers(img_sources))
    response.headers["Cache-Control"] = "public, max-age=15" if public else "no-store"
    response.headers["Vary"] = "Cookie, HX-Request"
    secure = auth.secure_cookies(request)
    asked = request.query_params.get("lang")
    if asked in i18n.LANGUAGES and request.cookies.get(i18n.COOKIE) != asked:
        response.set_cookie(
            i18n.COOKIE, lang, max_age=365 * 86400, samesite="lax", secure=secure, httponly=True
        )
    fresh = getattr(request.state, "new_login_csrf", None)
    if fresh is not None:
        response.set_cookie(auth.LOGIN_CSRF_COOKIE, fresh, samesite="strict", secure=secure, httponly=True)
    return response


def status_text(lang: i18n.Lang, status: str | None) -> str:
    """An OCPP status in words ("Beschikbaar"); an unknown status as sent."""
    if not status:
        return i18n.translate(lang, "status_unknown")
    key = f"status_{status}"
    return i18n.translate(lang, key) if key in i18n.CATALOGUE else status


def error_page(request: Request, status_code: int, title_key: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code, title_key=title_key, message=message)


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/console/login?" + urlencode({"next": target})
    if is_htmx(request):  # a fragment request: make htmx load the whole login page
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


class PageNotFound(LookupError):
    """What the page is about does not exist; the message (a catalogue key) says so."""

    def __init__(self, key: str = "not_found", public: bool = False) -> None:
        super().__init__(key)
        self.key = key
        self.public = public


class ConsoleRoute(APIRoute):
    """Routes of the console and public pages: the exceptions of `auth` and invalid input
    become pages (HTML, in the user's language) rather than the API's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            lang = language(request)
            try:
                return await handler(request)
            except auth.NeedLogin:
                return _login_redirect(request)
            except auth.Forbidden as exc:
                role = i18n.translate(lang, f"role_{exc.role.value}")
                user = await auth.current_user(request)
                msg = i18n.translate(lang, "forbidden", role=role)
                return render(request, "error.html", 403, user=user, title_key="forbidden_title", message=msg)
            except auth.CsrfFailed:
                user = await auth.current_user(request)
                msg = i18n.translate(lang, "csrf_failed")
                return render(request, "error.html", 403, user=user, title_key="error_title", message=msg)
            except PageNotFound as exc:
                user = None if exc.public else await auth.current_user(request)
                msg = i18n.translate(lang, exc.key)
                return render(
                    request,
                    "error.html",
                    404,
                    user=user,
                    public=exc.public,
                    title_key="not_found",
                    message=msg,
                )
            except (RequestValidationError, auth.BadForm) as exc:
                detail = _validation_detail(exc)
                msg = i18n.translate(lang, "bad_request", detail=detail)
                return render(request, "error.html", 400, title_key="error_title", message=msg)

        return run


def _validation_detail(exc: Exception) -> str:
    if isinstance(exc, RequestValidationError):
        parts = []
        for error in exc.errors()[:3]:
            where = ".".join(str(p) for p in error.get("loc", ())[1:])
            parts.append(f"{where}: {error.get('msg', '')}")
        return "; ".join(parts)
    return str(exc)
