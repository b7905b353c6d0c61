"""Tariffs, their approval by the municipality, and the maximum price.

The operator drafts and submits (`PUT .../draft`, `POST .../versions/{n}/submit`); only the
municipality approves or rejects (`.../approve`, `.../reject`), not even an admin for it;
`GET .../versions/{n}/comparison` shows old against new on the reference sessions, and
`GET .../history` every step with who and when.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from stekker.api.deps import CONFIGURE, READ, Caller, Role, allow, get_ctx, only
from stekker.domain.price_caps import ReferenceSession, reference_session_from_json
from stekker.services import price_caps, tariffs
from stekker.services.context import ServiceContext
from stekker.services.tariffs import CapExceeded, Draft

router = APIRouter(prefix="/api/tariffs", tags=["tariffs"])

Code = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,35}$", description="The tariff's code (OCPI id).")
]
VersionNo = Annotated[int, Path(ge=1, le=1_000_000, description="The version number.")]
_SUPPLIER = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]


class DraftIn(BaseModel):
    """A tariff version as the operator proposes it."""

    model_config = {"extra": "forbid"}

    content: dict[str, Any] = Field(
        default_factory=dict,
        description="An OCPI 2.2.1 Tariff body: elements, and optionally type, tariff_alt_text, "
        "tariff_alt_url, min_price, max_price, energy_mix. Prices exclude VAT; vat is a percentage.",
    )
    applies_to: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"all": True}],
        max_length=1000,
        description='Targets: {"all": true}, {"location_id": 3}, {"evse_uid": "NL*STK*E0001*1"} or '
        '{"evse_uid": ..., "connector": 2}.',
    )
    audience: Literal["all", "adhoc", "contract"] = "all"
    parties: list[Annotated[str, Field(pattern=r"^[A-Z]{2}-[A-Z0-9]{3}$")]] = Field(
        default_factory=list, max_length=500, description='eMSPs as "NL-ABC" (audience contract only).'
    )
    energy_suppliers: list[_SUPPLIER] = Field(default_factory=list, max_length=50)
    parking_grace_minutes: int = Field(default=0, ge=0, le=1440)
    ends_tariff: bool = Field(default=False, description="This version retires the tariff at effective_from.")
    effective_from: AwareDatetime | None = Field(default=None, description="When it takes effect (future).")
    note: str | None = Field(default=None, max_length=2000, description="Why the change, for the reviewer.")

    def to_draft(self) -> Draft:
        return Draft(
            content=self.content,
            applies_to=self.applies_to,
            audience=self.audience,
            parties=self.parties,
            energy_suppliers=self.energy_suppliers,
            parking_grace_minutes=self.parking_grace_minutes,
            ends_tariff=self.ends_tariff,
            effective_from=self.effective_from,
            note=self.note,
        )


class TariffIn(DraftIn):
    code: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,35}$", description="Its OCPI id; never changes."
    )
    name: str = Field(min_length=1, max_length=100)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")


class CommentIn(BaseModel):
    model_config = {"extra": "forbid"}

    comment: str | None = Field(default=None, max_length=2000)


class RequiredCommentIn(BaseModel):
    model_config = {"extra": "forbid"}

    comment: str = Field(min_length=1, max_length=2000, description="Why: the operator reads this.")


class CapIn(BaseModel):
    """The maximum price, incl. VAT; leave a bound out for none."""

    model_config = {"extra": "forbid"}

    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    max_per_kwh: Decimal | None = Field(default=None, ge=0, le=1000, max_digits=14, decimal_places=4)
    max_per_session: Decimal | None = Field(default=None, ge=0, le=100_000, max_digits=14, decimal_places=4)
    max_parking_per_hour: Decimal | None = Field(default=None, ge=0, le=1000, max_digits=14, decimal_places=4)
    effective_from: AwareDatetime | None = Field(default=None, description="Default: now.")
    reference_sessions: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=50,
        description="Replaces the reference sessions (default: the built-in set).",
    )
    comment: str | None = Field(default=None, max_length=2000)

    def sessions(self) -> list[ReferenceSession] | None:
        if self.reference_sessions is None:
            return None
        try:
            return [reference_session_from_json(item) for item in self.reference_sessions]
        except ValueError as exc:
            raise price_caps.InvalidCap(str(exc)) from None


def _over_cap(exc: CapExceeded) -> JSONResponse:
    return JSONResponse({"error": "over_cap", "detail": str(exc), "breaches": exc.breaches}, status_code=422)


@router.get("", summary="List tariffs")
async def list_all(
    ctx: ServiceContext = Depends(get_ctx), _: Caller = Depends(allow(*READ))
) -> list[dict[str, Any]]:
    """Every tariff with its active version, scheduled versions and open proposal."""
    return await tariffs.list_tariffs(ctx)


@router.post("", status_code=201, response_model=None, summary="Create a tariff")
async def create(
    body: TariffIn, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(allow(*CONFIGURE))
) -> dict[str, Any]:
    """A new tariff; its first version is a draft that prices nothing until approved."""
    return await tariffs.create_tariff(
        ctx, actor=caller.actor, code=body.code, name=body.name, currency=body.currency, draft=body.to_draft()
    )


@router.get("/caps", summary="The maximum price")
async def get_caps(
    ctx: ServiceContext = Depends(get_ctx), _: Caller = Depends(allow(*READ))
) -> dict[str, Any]:
    """The maximum price in force, the upcoming ones, the history and the reference sessions."""
    return await price_caps.caps(ctx)


@router.post("/caps", status_code=201, summary="Set the maximum price")
async def set_cap(
    body: CapIn, ctx: ServiceContext = Depends(get_ctx), caller: Caller = Depends(only(Role.MUNICIPALITY))
) -> dict[str, Any]:
    """The municipality sets the maximum price. `affected_tariffs` lists approved tariffs it
    would cap on a reference session (their CDRs are capped in any case)."""
    return await price_caps.set_cap(
        ctx,
        actor=caller.actor,
        role=caller.role,
        currency=body.currency,
        max_per_kwh=body.max_per_kwh,
        max_per_session=body.max_per_session,
        max_parking_per_hour=body.max_parking_per_hour,
        effective_from=body.effective_from,
        reference_sessions=body.sessions(),
        comment=body.comment,
    )


@router.get("/{code}", summary="Get a tariff")
async def get_one(
    code: Code, ctx: ServiceContext = Depends(get_ctx), _: Caller = Depends(allow(*READ))
) -> dict[str, Any]:
    return await tariffs.get_tariff(ctx, code)


@router.get("/{code}/history", summary="A tariff's history")
async def history(
    code: Code, ctx: ServiceContext = Depends(get_ctx), _: Caller = Depends(allow(*READ))
) -> list[dict[str, Any]]:
    """Every workflow step of every version, oldest first."""
    return await tariffs.history(ctx, code)


@router.put("/{code}/draft", summary="Save a tariff draft")
async def save_draft(
    code: Code,
    body: DraftIn,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any]:
    """Edit the open draft, or start the next version as a draft."""
    return await tariffs.save_draft(ctx, actor=caller.actor, code=code, draft=body.to_draft())


@router.get("/{code}/versions/{version}", summary="Get a tariff version")
async def get_version(
    code: Code, version: VersionNo, ctx: ServiceContext = Depends(get_ctx), _: Caller = Depends(allow(*READ))
) -> dict[str, Any]:
    return await tariffs.get_version(ctx, code, version)


@router.get("/{code}/versions/{version}/comparison", summary="Compare a version on the reference sessions")
async def comparison(
    code: Code,
    version: VersionNo,
    history_days: Annotated[
        int | None,
        Query(
            ge=1, le=366, description="Also reprice the real sessions this tariff billed in the last N days."
        ),
    ] = None,
    ctx: ServiceContext = Depends(get_ctx),
    _: Caller = Depends(allow(*READ)),
) -> dict[str, Any]:
    """Old against new on every reference session, with the cap; with `history_days`, the
    real sessions of that period repriced under the proposal (`history`)."""
    return await tariffs.compare(ctx, code, version, history_days)


@router.post("/{code}/versions/{version}/submit", response_model=None, summary="Submit a version")
async def submit(
    code: Code,
    version: VersionNo,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any] | JSONResponse:
    """Send a draft to the municipality. A 422 `over_cap` lists the reference sessions on which
    it would cost more than the maximum price."""
    try:
        return await tariffs.submit(ctx, actor=caller.actor, code=code, version=version)
    except CapExceeded as exc:
        return _over_cap(exc)


@router.post("/{code}/versions/{version}/withdraw", summary="Withdraw a version")
async def withdraw(
    code: Code,
    version: VersionNo,
    body: Annotated[CommentIn, Body()] = CommentIn(),
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> dict[str, Any]:
    return await tariffs.withdraw(ctx, actor=caller.actor, code=code, version=version, comment=body.comment)


@router.post("/{code}/versions/{version}/approve", response_model=None, summary="Approve a version")
async def approve(
    code: Code,
    version: VersionNo,
    body: Annotated[CommentIn, Body()] = CommentIn(),
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(only(Role.MUNICIPALITY)),
) -> dict[str, Any] | JSONResponse:
    """The municipality approves: the version takes effect at its effective_from."""
    try:
        return await tariffs.approve(
            ctx, actor=caller.actor, role=caller.role, code=code, version=version, comment=body.comment
        )
    except CapExceeded as exc:
        return _over_cap(exc)


@router.post("/{code}/versions/{version}/reject", summary="Reject a version")
async def reject(
    code: Code,
    version: VersionNo,
    body: RequiredCommentIn,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(only(Role.MUNICIPALITY)),
) -> dict[str, Any]:
    return await tariffs.reject(
        ctx, actor=caller.actor, role=caller.role, code=code, version=version, comment=body.comment
    )
