"""Tariffs (requirement 158): the operator drafts, submits and withdraws; the municipality
reviews the side-by-side comparison on the reference sessions, approves or rejects with a
comment, and sets the maximum price (157). Both see every tariff's versions, the maximum
price and the full history.

Exactly the API's rules (`stekker/api/tariffs.py`): drafting is `CONFIGURE` (the operator,
and admin), approving, rejecting and setting the maximum price only the municipality
(`only(MUNICIPALITY)`: not even an admin). Everything goes through `services.tariffs` and
`services.price_caps`, which check it again, audit it and tell the other side.

The draft form is a simple one: an energy price per kWh, a price per hour of charging and of
parking, a start fee, one VAT rate, where it applies and from when; it produces the OCPI
2.2.1 tariff body the service expects. A version with more elements (time-of-day prices)
is shown as it is; the form offers to replace it with a simple one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from stekker.api.deps import CONFIGURE, Role
from stekker.db.models import Location
from stekker.domain.price_caps import reference_session_from_json
from stekker.services import price_caps, tariffs
from stekker.services.errors import Forbidden, Missing, ServiceError
from stekker.services.tariffs import CapExceeded, Draft
from stekker.web import auth
from stekker.web.format import HOME
from stekker.web.templating import ConsoleRoute, PageNotFound, render

router = APIRouter(prefix="/console/tariffs", route_class=ConsoleRoute, include_in_schema=False)

#: Who opens the tariff pages (as the menu shows them); admin too.
VIEWERS = (Role.OPERATOR, Role.MUNICIPALITY)
Code = Annotated[str, Path(max_length=36, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,35}$")]
VersionNo = Annotated[int, Path(ge=1, le=1_000_000)]
MAX_PRICE = Decimal(1000)
STEP_SIZES = {"ENERGY": 1, "TIME": 60, "PARKING_TIME": 60, "FLAT": 1}
#: (form field, OCPI dimension)
PRICE_FIELDS = (
    ("energy", "ENERGY"),
    ("time", "TIME"),
    ("parking", "PARKING_TIME"),
    ("start", "FLAT"),
)


def may_draft(role: Role) -> bool:
    return role is Role.ADMIN or role in CONFIGURE


def may_decide(role: Role) -> bool:
    """Approve, reject, set the maximum price: only the municipality (`only(MUNICIPALITY)`)."""
    return role is Role.MUNICIPALITY


def _must_draft(user: auth.ConsoleUser) -> None:
    if not may_draft(user.role):
        raise auth.Forbidden(user.role)


def _must_decide(user: auth.ConsoleUser) -> None:
    if not may_decide(user.role):
        raise auth.Forbidden(user.role)


class FormError(ValueError):
    """What is wrong with the draft form, for the person who filled it in."""


# --- the draft form ----------------------------------------------------------------------------


@dataclass(slots=True)
class DraftForm:
    """The fields of the simple draft form, as typed (strings), and what they mean."""

    code: str = ""
    name: str = ""
    energy: str = ""
    time: str = ""
    parking: str = ""
    start: str = ""
    vat: str = "21"
    grace: str = "0"
    scope: str = "all"
    evse_uid: str = ""
    audience: str = "all"
    parties: str = ""
    effective_from: str = ""
    alt_nl: str = ""
    alt_en: str = ""
    note: str = ""
    complex: bool = False

    @classmethod
    def from_post(cls, data: dict[str, str]) -> DraftForm:
        names = (
            "code name energy time parking start vat grace scope evse_uid audience parties "
            "effective_from alt_nl alt_en note"
        ).split()
        form = cls()
        for name in names:
            value = data.get(name, "")
            setattr(form, name, value if name == "note" else value.strip())
        return form

    @classmethod
    def from_version(cls, view: dict[str, Any]) -> DraftForm:
        """The form filled in from a saved version (the simple parts of it)."""
        content = view.get("content") or {}
        elements = content.get("elements") or []
        form = cls(code=str(view.get("tariff", "")), name=str(view.get("name", "")))
        form.complex = len(elements) > 1 or any(
            e.get("restrictions") for e in elements if isinstance(e, dict)
        )
        components = (
            elements[0].get("price_components", []) if elements and isinstance(elements[0], dict) else []
        )
        for name, dimension in PRICE_FIELDS:
            for component in components:
                if isinstance(component, dict) and component.get("type") == dimension:
                    setattr(form, name, str(component.get("price", "")))
                    if component.get("vat") is not None:
                        form.vat = str(component["vat"])
        form.grace = str(view.get("parking_grace_minutes", 0))
        targets = view.get("applies_to") or [{"all": True}]
        first = targets[0] if targets and isinstance(targets[0], dict) else {"all": True}
        if "location_id" in first:
            form.scope = f"location:{first['location_id']}"
        elif "evse_uid" in first:
            form.scope, form.evse_uid = "evse", str(first["evse_uid"])
        form.audience = str(view.get("audience", "all"))
        form.parties = ", ".join(view.get("parties") or [])
        moment = view.get("effective_from")
        if isinstance(moment, datetime):
            aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            form.effective_from = aware.astimezone(HOME).strftime("%Y-%m-%dT%H:%M")
        for entry in content.get("tariff_alt_text") or []:
            if isinstance(entry, dict) and entry.get("language") in ("nl", "en"):
                setattr(form, f"alt_{entry['language']}", str(entry.get("text", "")))
        form.note = str(view.get("note") or "")
        return form

    def draft(self) -> Draft:
        """The service's Draft; FormError says what is wrong."""
        vat = _amount(self.vat, "vat", limit=Decimal(100))
        components = []
        for name, dimension in PRICE_FIELDS:
            text = getattr(self, name)
            if text:
                price = _amount(text, name)
                components.append(
                    {
                        "type": dimension,
                        "price": str(price),
                        "vat": str(vat),
                        "step_size": STEP_SIZES[dimension],
                    }
                )
        if not components:
            raise FormError("err_no_price")
        content: dict[str, Any] = {"elements": [{"price_components": components}]}
        alt = [
            {"language": lang, "text": text}
            for lang, text in (("nl", self.alt_nl), ("en", self.alt_en))
            if text
        ]
        if any(len(a["text"]) > 500 for a in alt):
            raise FormError("err_alt_text")
        if alt:
            content["tariff_alt_text"] = alt
        try:
            grace = int(self.grace or "0")
        except ValueError:
            raise FormError("err_grace") from None
        if not 0 <= grace <= 1440:
            raise FormError("err_grace")
        parties = [p.strip().upper() for p in self.parties.replace(";", ",").split(",") if p.strip()]
        if self.audience not in ("all", "adhoc", "contract"):
            raise FormError("err_audience")
        if len(self.note) > 2000:
            raise FormError("err_note")
        return Draft(
            content=content,
            applies_to=[self._target()],
            audience=self.audience,
            parties=parties,
            parking_grace_minutes=grace,
            effective_from=_local_moment(self.effective_from),
            note=self.note.strip() or None,
        )

    def _target(self) -> dict[str, Any]:
        if self.scope == "all":
            return {"all": True}
        if self.scope == "evse":
            if not self.evse_uid or len(self.evse_uid) > 48:
                raise FormError("err_evse")
            return {"evse_uid": self.evse_uid}
        if self.scope.startswith("location:") and self.scope[9:].isdigit():
            return {"location_id": int(self.scope[9:])}
        raise FormError("err_scope")


def _amount(text: str, name: str, limit: Decimal = MAX_PRICE) -> Decimal:
    """A price or percentage typed the Dutch or the English way (`0,35` or `0.35`)."""
    cleaned = text.replace("€", "").replace(" ", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise FormError(f"err_amount_{name}") from None
    if not value.is_finite() or value < 0 or value > limit or value != value.quantize(Decimal("0.0001")):
        raise FormError(f"err_amount_{name}")
    return value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize()


def _local_moment(text: str) -> datetime | None:
    """`2026-11-24T14:05` in home time as a UTC moment; None for empty."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FormError("err_effective_from") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=HOME)
    return moment.astimezone(UTC)


async def _locations(request: Request) -> list[tuple[int, str]]:
    async with auth.get_ctx(request).db() as db:
        rows = await db.execute(
            select(Location.id, Location.name, Location.city)
            .where(Location.retired_at.is_(None))
            .order_by(Location.name)
            .limit(1000)
        )
        return [(r[0], f"{r[1]}, {r[2]}" if r[2] else r[1]) for r in rows]


def _message(error: Exception) -> tuple[str | None, str | None]:
    """(catalogue key, service message) of an error to show above a form."""
    if isinstance(error, FormError):
        return str(error), None
    return None, str(error)


# --- pages -------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def tariff_list(request: Request, user: auth.ConsoleUser = Depends(auth.console(*VIEWERS))) -> Response:
    ctx = auth.get_ctx(request)
    found = [await tariffs.get_tariff(ctx, t["code"]) for t in await tariffs.list_tariffs(ctx)]
    caps = await price_caps.caps(ctx)
    return render(
        request,
        "tariffs.html",
        user=user,
        tariffs=found,
        caps=caps,
        may_draft=may_draft(user.role),
        may_decide=may_decide(user.role),
    )


def _form_page(
    request: Request,
    user: auth.ConsoleUser,
    form: DraftForm,
    locations: list[tuple[int, str]],
    *,
    new: bool,
    status_code: int = 200,
    error: Exception | None = None,
) -> Response:
    key, detail = _message(error) if error is not None else (None, None)
    return render(
        request,
        "tariff_form.html",
        status_code,
        user=user,
        form=form,
        new=new,
        locations=locations,
        error_key=key,
        error_detail=detail,
    )


@router.get("/new", response_class=HTMLResponse)
async def new_form(request: Request, user: auth.ConsoleUser = Depends(auth.console(*VIEWERS))) -> Response:
    _must_draft(user)
    return _form_page(request, user, DraftForm(), await _locations(request), new=True)


@router.post("/new", response_class=HTMLResponse)
async def create(request: Request, user: auth.ConsoleUser = Depends(auth.console(*VIEWERS))) -> Response:
    _must_draft(user)
    form = DraftForm.from_post(await auth.form(request))
    try:
        await tariffs.create_tariff(
            auth.get_ctx(request),
            actor=user.actor,
            code=form.code,
            name=form.name,
            currency="EUR",
            draft=form.draft(),
        )
    except (FormError, ServiceError) as exc:
        return _form_page(
            request, user, form, await _locations(request), new=True, status_code=400, error=exc
        )
    return RedirectResponse(f"/console/tariffs/{form.code}", status_code=303)


# --- the maximum price (the municipality) --------------------------------------------------------


@dataclass(slots=True)
class CapForm:
    per_kwh: str = ""
    per_session: str = ""
    parking: str = ""
    effective_from: str = ""
    comment: str = ""


def _cap_page(
    request: Request,
    user: auth.ConsoleUser,
    form: CapForm,
    caps: dict[str, Any],
    *,
    status_code: int = 200,
    error: Exception | None = None,
) -> Response:
    key, detail = _message(error) if error is not None else (None, None)
    return render(
        request,
        "tariff_caps.html",
        status_code,
        user=user,
        form=form,
        caps=caps,
        error_key=key,
        error_detail=detail,
    )


@router.get("/caps", response_class=HTMLResponse)
async def cap_form(request: Request, user: auth.ConsoleUser = Depends(auth.console(*VIEWERS))) -> Response:
    _must_decide(user)
    caps = await price_caps.caps(auth.get_ctx(request))
    form = CapForm()
    current = caps["current"]
    if current is not None:
        form.per_kwh, form.per_session, form.parking = (
            "" if current[k] is None else str(current[k])
            for k in ("max_per_kwh", "max_per_session", "max_parking_per_hour")
        )
    return _cap_page(request, user, form, caps)


@router.post("/caps", response_class=HTMLResponse)
async def set_cap(request: Request, user: auth.ConsoleUser = Depends(auth.console(*VIEWERS))) -> Response:
    _must_decide(user)
    ctx = auth.get_ctx(request)
    data = await auth.form(request)
    form = CapForm(
        per_kwh=data.get("per_kwh", "").strip(),
        per_session=data.get("per_session", "").strip(),
        parking=data.get("parking", "").strip(),
        effective_from=data.get("effective_from", "").strip(),
        comment=data.get("comment", ""),
    )
    caps = await price_caps.caps(ctx)
    try:
        if len(form.comment) > 2000:
            raise FormError("err_comment_long")
        bounds = [
            None if not text else _amount(text, name, limit)
            for text, name, limit in (
                (form.per_kwh, "cap_kwh", Decimal(1000)),
                (form.per_session, "cap_session", Decimal(100_000)),
                (form.parking, "cap_parking", Decimal(1000)),
            )
        ]
        refs = [reference_session_from_json(item) for item in caps["reference_sessions"]]
        await price_caps.set_cap(
            ctx,
            actor=user.actor,
            role=user.role,
            currency="EUR",
            max_per_kwh=bounds[0],
            max_per_session=bounds[1],
            max_parking_per_hour=bounds[2],
            effective_from=_local_moment(form.effective_from),
            reference_sessions=refs,
            comment=form.comment.strip() or None,
        )
    except Forbidden:
        raise auth.Forbidden(user.role) from None
    except (FormError, ServiceError) as exc:
        return _cap_page(request, user, form, caps, status_code=400, error=exc)
    return RedirectResponse("/console/tariffs?done=cap", status_code=303)


async def _tariff(request: Request, code: str) -> dict[str, Any]:
    try:
        return await tariffs.get_tariff(auth.get_ctx(request), code)
    except Missing:
        raise PageNotFound("tariff_not_found") from None


@router.get("/{code}", response_class=HTMLResponse)
async def tariff_detail(
    request: Request, code: Code, user: auth.ConsoleUser = Depends(auth.console(*VIEWERS))
) -> Response:
    found = await _tariff(request, code)
    steps = await tariffs.history(auth.get_ctx(request), code)
    return render(
        request,
        "tariff_detail.html",
        user=user,
        tariff=found,
        history=list(reversed(steps)),
        may_draft=may_draft(user.role),
        may_decide=may_decide(user.role),
    )


@router.get("/{code}/draft", response_class=HTMLResponse)
async def draft_form(
    request: Request, code: Code, user: auth.ConsoleUser = Depends(auth.console(*VIEWERS))
) -> Response:
    _must_draft(user)
    found = await _tariff(request, code)
    form = DraftForm(code=code, name=found["name"])
    if found["versions"]:
        base = found["open_version"] or found["active_version"] or found["versions"][-1]["version"]
        view = await tariffs.get_version(auth.get_ctx(request), code, base)
        form = DraftForm.from_version(view)
        if found["open_version"] is None:
            form.effective_from = ""  # a new version needs its own moment
            form.note = ""
    return _form_page(request, user, form, await _locations(request), new=False)


@router.post("/{code}/draft", response_class=HTMLResponse)
async def save_draft(
    request: Request, code: Code, user: auth.ConsoleUser = Depends(auth.console(*VIEWERS))
) -> Response:
    _must_draft(user)
    found = await _tariff(request, code)
    form = DraftForm.from_post(await auth.form(request))
    form.code, form.name = code, found["name"]
    try:
        view = await tariffs.save_draft(
            auth.get_ctx(request), actor=user.actor, code=code, draft=form.draft()
        )
    except (FormError, ServiceError) as exc:
        return _form_page(
            request, user, form, await _locations(request), new=False, status_code=400, error=exc
        )
    return RedirectResponse(f"/console/tariffs/{code}/versions/{view['version']}", status_code=303)


async def _version_page(
    request: Request,
    user: auth.ConsoleUser,
    code: str,
    version: int,
    *,
    status_code: int = 200,
    error: str | None = None,
    breaches: list[dict[str, Any]] | None = None,
    comment: str = "",
    history_days: int | None = None,
) -> Response:
    ctx = auth.get_ctx(request)
    try:
        view = await tariffs.get_version(ctx, code, version)
    except Missing:
        raise PageNotFound("tariff_not_found") from None
    comparison: dict[str, Any] | None = None
    comparison_error = None
    try:
        comparison = await tariffs.compare(ctx, code, version, history_days)
    except ServiceError as exc:
        comparison_error = str(exc)
    return render(
        request,
        "tariff_version.html",
        status_code,
        user=user,
        v=view,
        prices=price_rows(view.get("content") or {}),
        comparison=comparison,
        comparison_error=comparison_error,
        error=error,
        breaches=breaches or [],
        comment=comment,
        history_days=history_days,
        may_draft=may_draft(user.role),
        may_decide=may_decide(user.role),
    )


@dataclass(frozen=True, slots=True)
class PriceRow:
    element: int
    dimension: str
    price_excl_vat: Decimal
    vat: Decimal | None
    price_incl_vat: Decimal
    restrictions: dict[str, Any]


def price_rows(content: dict[str, Any]) -> list[PriceRow]:
    """Every price component of an OCPI tariff body, with its price incl. VAT."""
    out = []
    for number, element in enumerate(content.get("elements") or [], start=1):
        if not isinstance(element, dict):
            continue
        for component in element.get("price_components") or []:
            if not isinstance(component, dict):
                continue
            try:
                price = Decimal(str(component.get("price")))
                vat = None if component.get("vat") is None else Decimal(str(component["vat"]))
            except InvalidOperation:
                continue
            incl = price * (1 + (vat or Decimal(0)) / 100)
            restrictions = element.get("restrictions")
            out.append(
                PriceRow(
                    number,
                    str(component.get("type", "")),
                    price,
                    vat,
                    incl,
                    restrictions if isinstance(restrictions, dict) else {},
                )
            )
    return out


@router.get("/{code}/versions/{version}", response_class=HTMLResponse)
async def version_detail(
    request: Request,
    code: Code,
    version: VersionNo,
    history_days: Annotated[int | None, Query(ge=1, le=366)] = None,
    user: auth.ConsoleUser = Depends(auth.console(*VIEWERS)),
) -> Response:
    return await _version_page(request, user, code, version, history_days=history_days)


async def _act(
    request: Request,
    user: auth.ConsoleUser,
    code: str,
    version: int,
    action: str,
) -> Response:
    ctx = auth.get_ctx(request)
    data = await auth.form(request)
    comment = data.get("comment", "").strip()
    if len(comment) > 2000:
        return await _version_page(
            request, user, code, version, status_code=400, error="err_comment_long", comment=comment
        )
    try:
        if action == "submit":
            await tariffs.submit(ctx, actor=user.actor, code=code, version=version)
        elif action == "withdraw":
            await tariffs.withdraw(ctx, actor=user.actor, code=code, version=version, comment=comment or None)
        elif action == "approve":
            await tariffs.approve(
                ctx, actor=user.actor, role=user.role, code=code, version=version, comment=comment or None
            )
        else:
            if not comment:
                return await _version_page(
                    request, user, code, version, status_code=400, error="err_reject_comment"
                )
            await tariffs.reject(
                ctx, actor=user.actor, role=user.role, code=code, version=version, comment=comment
            )
    except CapExceeded as exc:
        return await _version_page(
            request,
            user,
            code,
            version,
            status_code=422,
            error=str(exc),
            breaches=exc.breaches,
            comment=comment,
        )
    except Missing:
        raise PageNotFound("tariff_not_found") from None
    except Forbidden:
        raise auth.Forbidden(user.role) from None
    except ServiceError as exc:
        return await _version_page(
            request, user, code, version, status_code=409, error=str(exc), comment=comment
        )
    return RedirectResponse(f"/console/tariffs/{code}/versions/{version}?done={action}", status_code=303)


#: the operator's steps and the municipality's decisions on a version
_OPERATOR_STEPS = frozenset({"submit", "withdraw"})


@router.post("/{code}/versions/{version}/{action}", response_class=HTMLResponse)
async def step(
    request: Request,
    code: Code,
    version: VersionNo,
    action: Literal["submit", "withdraw", "approve", "reject"],
    user: auth.ConsoleUser = Depends(auth.console(*VIEWERS)),
) -> Response:
    """Submit or withdraw (the operator), approve or reject (the municipality only)."""
    if action in _OPERATOR_STEPS:
        _must_draft(user)
    else:
        _must_decide(user)
    return await _act(request, user, code, version, action)
