"""Where OCPI partners reach us (who we are to them is `Settings.party` and `business_name`)."""

from __future__ import annotations

from fastapi import Request

from stekker.config import Settings


def base_url(request: Request, settings: Settings) -> str:
    """The address partners use for us: STEKKER_PUBLIC_URL when set, else the request's."""
    if settings.public_url:
        return str(settings.public_url).rstrip("/")
    return str(request.base_url).rstrip("/")
