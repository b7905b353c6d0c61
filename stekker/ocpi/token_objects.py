"""The OCPI 2.2.1 Token object on the wire, and its translation to and from the token service.

An eMSP describes its drivers' tokens with OCPI's words (`valid`, `energy_contract`,
`whitelist`); the service keeps them as a token status, a supplier and contract id, and a
whitelist. Nothing here touches the database.

Field rules follow the spec's types: CiString(n) is printable ASCII of at most n characters,
string(n) printable text of at most n characters, DateTime an ISO 8601 time (no offset means
UTC). A value that breaks them is refused (OCPI 2001), never cut to fit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr

from stekker.db.models import TokenStatus
from stekker.domain.authorization import Whitelist
from stekker.services.roaming_tokens import PartnerToken


class TokenType(StrEnum):
    """OCPI TokenType: what kind of identification the driver presents."""

    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class ProfileType(StrEnum):
    """OCPI ProfileType: the driver's default charging preference."""

    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


_CI_STRING = re.compile(r"^[\x20-\x7e]*$")


def _ci_string(value: str) -> str:
    if not _CI_STRING.fullmatch(value):
        raise ValueError("only printable ASCII characters are allowed (OCPI CiString)")
    return value


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("control characters (line breaks, tabs, ...) are not allowed (OCPI string)")
    return value


def _ocpi_datetime(value: Any) -> Any:
    # pydantic would also read a number as a Unix time; OCPI DateTime is text only
    if not isinstance(value, str):
        raise ValueError("must be an OCPI DateTime text such as 2019-06-19T02:11:11Z")
    return value


def _utc(value: datetime) -> datetime:
    # OCPI: "All timestamps are formatted as string(25) ... in UTC"; no offset means UTC
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


CountryCode = Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2}$")]
PartyId = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9]{3}$")]
Uid = Annotated[StrictStr, Field(min_length=1, max_length=36), AfterValidator(_ci_string)]
CiString36 = Annotated[StrictStr, Field(min_length=1, max_length=36), AfterValidator(_ci_string)]
String64 = Annotated[StrictStr, Field(max_length=64), AfterValidator(_printable)]
Language = Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2}$")]
OcpiDateTime = Annotated[datetime, BeforeValidator(_ocpi_datetime), AfterValidator(_utc)]


class EnergyContract(BaseModel):
    """The driver's own electricity supplier and contract at that supplier."""

    model_config = ConfigDict(extra="ignore")

    supplier_name: Annotated[String64, Field(min_length=1)]
    contract_id: String64 | None = None


class OcpiToken(BaseModel):
    """A Token object as an eMSP pushes it (PUT) and as we show it back (GET)."""

    model_config = ConfigDict(extra="ignore")  # fields of later OCPI versions are no error

    country_code: CountryCode
    party_id: PartyId
    uid: Uid
    type: TokenType
    contract_id: CiString36
    visual_number: String64 | None = None
    issuer: Annotated[String64, Field(min_length=1)]
    group_id: CiString36 | None = None
    valid: StrictBool
    whitelist: Whitelist
    language: Language | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None
    last_updated: OcpiDateTime


# the fields a PATCH may leave out but never set to null: the Token object requires them
_REQUIRED = ("country_code", "party_id", "uid", "type", "contract_id", "issuer", "valid", "whitelist")


class OcpiTokenPatch(BaseModel):
    """A PATCH of a Token: only the fields that change, and always `last_updated`."""

    model_config = ConfigDict(extra="ignore")

    country_code: CountryCode | None = None
    party_id: PartyId | None = None
    uid: Uid | None = None
    type: TokenType | None = None
    contract_id: CiString36 | None = None
    visual_number: String64 | None = None
    issuer: Annotated[String64, Field(min_length=1)] | None = None
    group_id: CiString36 | None = None
    valid: StrictBool | None = None
    whitelist: Whitelist | None = None
    language: Language | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: EnergyContract | None = None
    last_updated: OcpiDateTime

    def nulled_required(self) -> list[str]:
        """Required Token fields this patch sets to null (which would break the object)."""
        return [name for name in _REQUIRED if name in self.model_fields_set and getattr(self, name) is None]


def to_partner_token(token: OcpiToken) -> PartnerToken:
    """The service's view of a pushed token."""
    contract = token.energy_contract
    return PartnerToken(
        country_code=token.country_code.upper(),
        party_id=token.party_id.upper(),
        uid=token.uid,
        type=token.type.value,
        contract_id=token.contract_id,
        issuer=token.issuer,
        status=TokenStatus.ACTIVE if token.valid else TokenStatus.BLOCKED,
        whitelist=token.whitelist,
        last_updated=token.last_updated,
        visual_number=token.visual_number,
        group_id=token.group_id,
        language=token.language,
        default_profile_type=None if token.default_profile_type is None else token.default_profile_type.value,
        energy_supplier=None if contract is None else contract.supplier_name,
        energy_contract_id=None if contract is None else contract.contract_id,
    )


def patch_changes(patch: OcpiTokenPatch) -> dict[str, Any]:
    """The service fields a PATCH changes (identity fields and last_updated excluded)."""
    sent = patch.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("contract_id", "visual_number", "issuer", "group_id", "language"):
        if name in sent:
            changes[name] = getattr(patch, name)
    if "valid" in sent:
        changes["status"] = TokenStatus.ACTIVE if patch.valid else TokenStatus.BLOCKED
    if "whitelist" in sent:
        changes["whitelist"] = patch.whitelist
    if "default_profile_type" in sent:
        profile = patch.default_profile_type
        changes["default_profile_type"] = None if profile is None else profile.value
    if "energy_contract" in sent:  # an object in a PATCH replaces the stored one whole
        contract = patch.energy_contract
        changes["energy_supplier"] = None if contract is None else contract.supplier_name
        changes["energy_contract_id"] = None if contract is None else contract.contract_id
    return changes


def to_wire(token: PartnerToken) -> dict[str, Any]:
    """The Token object for a GET: what the eMSP sent, optional fields it left out left out."""
    body: dict[str, Any] = {
        "country_code": token.country_code,
        "party_id": token.party_id,
        "uid": token.uid,
        "type": token.type,
        "contract_id": token.contract_id,
        "visual_number": token.visual_number,
        "issuer": token.issuer,
        "group_id": token.group_id,
        "valid": token.status == TokenStatus.ACTIVE,
        "whitelist": token.whitelist,
        "language": token.language,
        "default_profile_type": token.default_profile_type,
        "last_updated": token.last_updated,
    }
    if token.energy_supplier is not None:
        body["energy_contract"] = {"supplier_name": token.energy_supplier}
        if token.energy_contract_id is not None:
            body["energy_contract"]["contract_id"] = token.energy_contract_id
    body = {k: v for k, v in body.items() if v is not None}
    return body
