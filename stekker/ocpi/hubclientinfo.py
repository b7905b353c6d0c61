"""The OCPI 2.2.1 HubClientInfo module, receiver interface: a roaming hub tells us which parties
behind it it can reach (`PUT {hubclientinfo}/{country_code}/{party_id}` with a ClientInfo), and
may read back what we hold (GET of the same URL).

Only a partner that registered the HUB role may use it; any other partner gets HTTP 403 with
OCPI status 2000 (it is who it says, it just may not do this; the spec defines no code for
it). The party in the URL is the one the hub talks about, not the hub's own: a hub speaks for
many. A body whose party differs from the URL is 2001 (HTTP 400), like every client-owned
object; an unknown party on GET is HTTP 404 with 2000. A ClientInfo older than the one we hold
is acknowledged but not applied (the answer's message says so), so a late retry of an old push
cannot undo a newer status.

What we do with it: a party the hub reports as not CONNECTED gets no pushes through that hub
(`stekker.services.hub_clients.client_statuses`, for the outbox).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from stekker.api.deps import get_ctx
from stekker.db.models_ocpi import ClientStatus
from stekker.ocpi.auth import PartnerAuth, registered_partner
from stekker.ocpi.envelope import CLIENT_ERROR, INVALID_PARAMETERS, OcpiError, ocpi_response
from stekker.ocpi.token_objects import CountryCode, OcpiDateTime, PartyId
from stekker.services import hub_clients
from stekker.services.context import ServiceContext
from stekker.services.hub_clients import ClientInfo

router = APIRouter(prefix="/ocpi/2.2.1/hubclientinfo", tags=["ocpi"])

#: HTTP status for a partner that is not a hub (see the module docstring).
NOT_A_HUB_HTTP_STATUS = 403

CountryPath = Annotated[str, Path(pattern=r"^[A-Za-z]{2}$", description="the party's country code")]
PartyPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{3}$", description="the party's id")]


class OcpiRole(StrEnum):
    """OCPI Role."""

    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class OcpiClientInfo(BaseModel):
    """The OCPI ClientInfo object."""

    model_config = ConfigDict(extra="ignore")

    party_id: PartyId
    country_code: CountryCode
    role: OcpiRole
    status: ClientStatus
    last_updated: OcpiDateTime


def _wire(info: ClientInfo) -> dict[str, Any]:
    return {
        "party_id": info.party_id,
        "country_code": info.country_code,
        "role": info.role,
        "status": info.status.value,
        "last_updated": info.last_updated,
    }


def _hub(partner: PartnerAuth) -> PartnerAuth:
    if partner.role == OcpiRole.HUB or any(role == OcpiRole.HUB for _, _, role in partner.roles):
        return partner
    raise OcpiError(
        CLIENT_ERROR, "only a roaming hub (role HUB) may send ClientInfo", http_status=NOT_A_HUB_HTTP_STATUS
    )


@router.get("/{country_code}/{party_id}", summary="A ClientInfo as we hold it")
async def get_client_info(
    country_code: CountryPath,
    party_id: PartyPath,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    hub = _hub(partner)
    info = await hub_clients.get_client_info(ctx, hub.id, country_code, party_id)
    if info is None:
        raise OcpiError(
            CLIENT_ERROR, f"no ClientInfo for {country_code.upper()}/{party_id.upper()}", http_status=404
        )
    return ocpi_response(_wire(info))


@router.put("/{country_code}/{party_id}", summary="Create or replace a ClientInfo")
async def put_client_info(
    country_code: CountryPath,
    party_id: PartyPath,
    body: OcpiClientInfo,
    partner: PartnerAuth = Depends(registered_partner),
    ctx: ServiceContext = Depends(get_ctx),
) -> JSONResponse:
    hub = _hub(partner)
    if (body.country_code.upper(), body.party_id.upper()) != (country_code.upper(), party_id.upper()):
        raise OcpiError(
            INVALID_PARAMETERS,
            f"the ClientInfo is {body.country_code}/{body.party_id} "
            f"but the URL names {country_code}/{party_id}",
        )
    info = ClientInfo(body.country_code, body.party_id, body.role.value, body.status, body.last_updated)
    outcome = await hub_clients.put_client_info(ctx, hub.id, f"ocpi:{hub.name}"[:100], info)
    return ocpi_response(None, message="Success" if outcome.applied else f"Success, {outcome.note}")
