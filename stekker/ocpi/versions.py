"""OCPI versions and version details: where a partner finds our modules (OCPI 2.2.1)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from stekker.api.deps import get_ctx
from stekker.ocpi.auth import PartnerAuth, any_partner
from stekker.ocpi.envelope import ocpi_response
from stekker.ocpi.identity import base_url
from stekker.services.context import ServiceContext
from stekker.services.ocpi_partners import OCPI_VERSION

router = APIRouter(prefix="/ocpi", tags=["ocpi"])

#: The modules we serve, as (identifier, our role); each is at /ocpi/2.2.1/{identifier}.
MODULES: list[tuple[str, str]] = [("credentials", "SENDER"), ("credentials", "RECEIVER")]


def register_module(identifier: str, role: str) -> None:
    """Announce a module in our version details (called where its router is mounted)."""
    if (identifier, role) not in MODULES:
        MODULES.append((identifier, role))


@router.get("/versions")
async def versions(
    request: Request, ctx: ServiceContext = Depends(get_ctx), _: PartnerAuth = Depends(any_partner)
) -> JSONResponse:
    """The OCPI versions we speak (2.2.1)."""
    base = base_url(request, ctx.settings)
    return ocpi_response([{"version": OCPI_VERSION, "url": f"{base}/ocpi/{OCPI_VERSION}"}])


@router.get(f"/{OCPI_VERSION}")
async def version_details(
    request: Request, ctx: ServiceContext = Depends(get_ctx), _: PartnerAuth = Depends(any_partner)
) -> JSONResponse:
    """Our OCPI 2.2.1 modules and their URLs."""
    base = f"{base_url(request, ctx.settings)}/ocpi/{OCPI_VERSION}"
    endpoints = [{"identifier": i, "role": r, "url": f"{base}/{i}"} for i, r in MODULES]
    return ocpi_response({"version": OCPI_VERSION, "endpoints": endpoints})
