"""Who we are to OCPI partners, and where they reach us."""

from __future__ import annotations

from fastapi import Request

from stekker.config import Settings


def our_party(settings: Settings) -> tuple[str, str]:
    """Our (country_code, party_id), from the EVSE id prefix ("NL*STK" → ("NL", "STK"))."""
    return settings.party


def base_url(request: Request, settings: Settings) -> str:
    """The address partners use for us: STEKKER_PUBLIC_URL when set, else the request's."""
    if settings.public_url:
        return str(settings.public_url).rstrip("/")
    return str(request.base_url).rstrip("/")
