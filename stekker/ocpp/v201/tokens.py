"""Tokens as OCPP 2.0.1 spells them: an idToken with a type, and the idTokenInfo we answer."""

from __future__ import annotations

from typing import Any

from stekker.domain.timeutil import format_timestamp
from stekker.services.authorization import TokenVerdict

# Our token types (OCPI's vocabulary) → the 2.0.1 IdTokenEnumType.
_ID_TOKEN_TYPES = {"RFID": "ISO14443", "APP_USER": "Central", "AD_HOC_USER": "Central", "OTHER": "Local"}
_OCPP_TYPES = frozenset(
    {"Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "NoAuthorization"}
)


def id_token(uid: str, token_type: str | None) -> dict[str, Any]:
    """The idToken object for a uid; an OCPP type passes through, one of ours is mapped."""
    if token_type in _OCPP_TYPES:
        kind = token_type
    else:
        kind = _ID_TOKEN_TYPES.get(token_type or "RFID", "Central")
    return {"idToken": uid, "type": kind}


def id_token_info(verdict: TokenVerdict) -> dict[str, Any]:
    status = verdict.decision.status.value
    if status == "Invalid" and verdict.token_id is None:
        status = "Unknown"  # 2.0.1 tells a token we never issued from one we retired
    info: dict[str, Any] = {"status": status}
    if verdict.expires_at is not None:
        info["cacheExpiryDateTime"] = format_timestamp(verdict.expires_at)
    if verdict.group_id:
        info["groupIdToken"] = id_token(verdict.group_id, "Central")
    return info
